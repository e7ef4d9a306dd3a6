"""Structural similarity (SSIM) and its multi-scale form (MS-SSIM) as pure functions of
image batches [B, H, W, C], and the `msssim` loss term 1 − MS-SSIM(x, x̂).

SSIM (Wang, Bovik, Sheikh & Simoncelli, 2004) compares local means, variances and the
covariance of two images under a Gaussian window; MS-SSIM (Wang, Simoncelli & Bovik, 2003,
"Multiscale structural similarity for image quality assessment") repeats the comparison on
images halved by 2x2 average pooling, M times, and combines the scales as

    MS-SSIM = Π_{j<M} cs_j^{w_j} · ssim_M^{w_M},

cs_j the mean contrast-structure term at scale j and ssim_M the mean SSIM at the coarsest.
The MSSSIM-VAE (Snell et al., 2017, "Learning to Generate Images with Perceptual Similarity
Metrics") uses 1 − MS-SSIM as its reconstruction term: the recipe "msssim + β*kl_normal".

Defaults follow pythae 0.1.2's MSSSIM_VAE: an 11-pixel window of σ = 1.5 with zero padding
(each map keeps the image's size, so 8x8 digits work), constants C1 = 0.01², C2 = 0.03²
(data range 1), each scale's value mapped to (v + 1)/2 before the powers (pythae's guard
against negative cs, which a fractional power would make NaN), and the weights of its table
for the number of scales its size rule picks: images narrower than 4, 8, 16, 32 pixels get
1, 2, 3, 4 scales, wider ones Wang's five. So 8x8 digits get 3 scales (8, 4, 2 pixels) and
MNIST 4 (28, 14, 7, 3). Two differences from pythae, both deliberate: the value is each
image's own MS-SSIM (pythae averages the SSIM maps over the whole batch before combining the
scales), and the product is Wang's (pythae's `prod(mcs[:-1] * ssim[-1])` raises the last
scale to the power (M − 1)·w_M, and for one scale returns a constant).
"""

import math

import jax
import jax.numpy as jnp

from aejax.errors import ConfigError

# pythae 0.1.2's MS-SSIM weights by number of scales (msssim_vae_utils.py); the five-scale
# row is Wang et al.'s (2003).
WEIGHTS = {
    1: (1.0,),
    2: (0.3222, 0.6778),
    3: (0.4558, 0.1633, 0.3809),
    4: (0.3117, 0.3384, 0.2675, 0.0824),
    5: (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
}
C1, C2 = 0.01**2, 0.03**2  # (K·L)² with K1 = 0.01, K2 = 0.03 and data range L = 1
SIGMA = 1.5


def scales_for_width(width: int) -> int:
    """pythae's number of MS-SSIM scales for images `width` pixels wide: 1 below 4, 2 below
    8, 3 below 16, 4 below 32, else 5."""
    return 1 + sum(width >= w for w in (4, 8, 16, 32))


def gaussian_window(size: int, sigma: float = SIGMA) -> jax.Array:
    """The normalized 1-D Gaussian window [size], centred on size // 2."""
    t = jnp.arange(size, dtype=jnp.float32) - size // 2
    g = jnp.exp(-jnp.square(t) / (2.0 * sigma**2))
    return g / jnp.sum(g)


def _filter(v: jax.Array, window: jax.Array) -> jax.Array:
    """Each channel of v [B, H, W, C] convolved with the separable window, zero-padded to
    the same size (pythae's `conv2d(padding=size // 2)`).

    Written as shifted, weighted sums rather than depthwise convolutions: XLA fuses them
    into one elementwise loop, where its CPU backend runs `feature_group_count`
    convolutions slowly. The term's value and gradient on [100, 28, 28, 1], on the 2-core
    developer CPU: 7.9 ms against 84.1 ms with pythae's MNIST window (3), 64 ms against
    181 ms with the default (11); the values agree to 3e-8 (benchmarks/msssim_filter.py,
    medians of 3 alternating rounds).
    """
    size, pad = window.shape[0], window.shape[0] // 2
    h, w = v.shape[1], v.shape[2]
    p = jnp.pad(v, ((0, 0), (pad, pad), (0, 0), (0, 0)))
    v = sum(window[i] * p[:, i : i + h] for i in range(size))
    p = jnp.pad(v, ((0, 0), (0, 0), (pad, pad), (0, 0)))
    return sum(window[i] * p[:, :, i : i + w] for i in range(size))


def ssim_maps(x: jax.Array, y: jax.Array, window_size: int = 11) -> tuple[jax.Array, jax.Array]:
    """The SSIM map and the contrast-structure map of two image batches.

    ssim = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)) and
    cs = (2 σxy + C2) / (σx² + σy² + C2), with local statistics under the Gaussian window
    (σ = 1.5, zero padding) and population (not sample) covariances.

    Args:
      x, y: [B, H, W, C] images in [0, 1].
      window_size: the window's width in pixels (odd).
    Returns:
      (ssim, cs), each [B, H, W, C].
    """
    window = gaussian_window(window_size)
    c = x.shape[-1]
    stats = _filter(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1), window)
    mx, my, xx, yy, xy = (stats[..., i * c : (i + 1) * c] for i in range(5))
    var_x, var_y, cov = xx - mx * mx, yy - my * my, xy - mx * my
    cs = (2.0 * cov + C2) / (var_x + var_y + C2)
    luminance = (2.0 * mx * my + C1) / (mx * mx + my * my + C1)
    return luminance * cs, cs


def _per_image(v: jax.Array) -> jax.Array:
    return jnp.mean(v.reshape(v.shape[0], -1), axis=1)


def ssim(x: jax.Array, y: jax.Array, window_size: int = 11) -> jax.Array:
    """Mean SSIM of each image pair: [B, H, W, C] x2 -> [B] (1 for identical images)."""
    return _per_image(ssim_maps(x, y, window_size)[0])


def _pool(v: jax.Array) -> jax.Array:
    """2x2 average pooling, an odd last row or column dropped (torch's avg_pool2d)."""
    b, h, w, c = v.shape
    v = v[:, : h // 2 * 2, : w // 2 * 2]
    return v.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def ms_ssim(x: jax.Array, y: jax.Array, window_size: int = 11, scales: int = 0) -> jax.Array:
    """MS-SSIM of each image pair, with each scale's value v taken as (v + 1)/2 (pythae).

    Π_{j<M} ((cs_j + 1)/2)^{w_j} · ((ssim_M + 1)/2)^{w_M}, scale j+1 the 2x2 average pool of
    scale j; the weights w are `WEIGHTS[M]`.

    Args:
      x, y: [B, H, W, C] images in [0, 1].
      window_size: the Gaussian window's width (odd).
      scales: M in 1..5; 0 picks pythae's number for the image width (`scales_for_width`).
    Returns:
      [B] values in [0, 1], 1 for identical images.
    """
    m = scales or scales_for_width(x.shape[2])
    if min(x.shape[1:3]) < 2 ** (m - 1):
        raise ConfigError(
            f"msssim: {m} scales halve {x.shape[1]}x{x.shape[2]} images below one pixel; "
            f"use config.loss_options.msssim.scales <= {1 + int(math.log2(min(x.shape[1:3])))}"
        )
    out = jnp.ones(x.shape[:1], x.dtype)
    for j, w in enumerate(WEIGHTS[m]):
        ssim_map, cs_map = ssim_maps(x, y, window_size)
        value = ssim_map if j == m - 1 else cs_map
        out = out * ((_per_image(value) + 1.0) / 2.0) ** w
        x, y = _pool(x), _pool(y)
    return out


def _check_images(x: jax.Array) -> None:
    if x.ndim != 4:
        raise ConfigError(
            f"loss term 'msssim' needs image examples [H, W, C]; the data's are shaped "
            f"{tuple(x.shape[1:])}"
        )


# Option domains, registered with the term in `aejax.losses`.
DOMAINS = {
    "window_size": (
        lambda v: float(v).is_integer() and v >= 1 and int(v) % 2 == 1,
        "an odd integer >= 1",
    ),
    "scales": (lambda v: v in (0, 1, 2, 3, 4, 5), "0 (by the image width) or 1..5"),
}


def msssim(*, x: jax.Array, x_hat: jax.Array, window_size: int = 11, scales: int = 0, **_):
    """1 − MS-SSIM(x, x̂) of each example: the MSSSIM-VAE's reconstruction term.

    Any model whose reconstructions have the data's image shape can use it (an MLP's x̂ is
    reshaped to the examples' [H, W, C] by its decoder). Options (`config.loss_options.
    msssim`): `window_size` (pythae's default 11; odd) and `scales` (0: pythae's number for
    the image width, 3 for 8x8 digits, 4 for MNIST).

    Args:
      x: clean images in [0, 1], [B, H, W, C].
      x_hat: reconstructions, same shape.
    Returns:
      [B] dissimilarities in [0, 1], 0 for a perfect reconstruction.
    """
    _check_images(x)
    return 1.0 - ms_ssim(x, x_hat.reshape(x.shape), int(window_size), int(scales))
