"""Colour arithmetic for colorization: luminance, YUV chroma, and a colourfulness measure.

- `luminance(x)`: ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (the Y of YUV and YIQ;
  scikit-image's `rgb2yuv` and `rgb2yiq` use these weights, while its `rgb2gray` uses
  BT.709's 0.2125, 0.7154, 0.0721).
- `rgb_to_yuv`, `yuv_to_rgb`: the analogue YUV of BT.601 (U = 0.492 (B − Y),
  V = 0.877 (R − Y), scikit-image's matrix), so chroma can be swapped while the luminance
  is kept.
- `colourfulness(x)`: Hasler & Süsstrunk (2003), "Measuring colourfulness in natural
  images", the metric M_(3) of their eq. 3, on their 0..255 scale.

Pure `jax.numpy` functions of images [..., H, W, 3] (RGB last), values in [0, 1].
"""

import jax
import jax.numpy as jnp

from aejax.errors import AejaxError

# ITU-R BT.601 luma weights of R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# RGB -> YUV (rows Y, U, V), BT.601 with the analogue U and V scales; scikit-image's
# `yuv_from_rgb`.
YUV_FROM_RGB = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)


def _check_rgb(x: jax.Array, what: str) -> None:
    if x.ndim < 1 or x.shape[-1] != 3:
        raise AejaxError(
            f"{what} needs RGB images with 3 channels last; got an array of shape {x.shape}"
        )


def luminance(x: jax.Array) -> jax.Array:
    """BT.601 luma of RGB images: [..., 3] -> [..., 1] (the channel axis kept)."""
    x = jnp.asarray(x)
    _check_rgb(x, "luminance")
    w = jnp.asarray(LUMA_WEIGHTS, x.dtype)
    return jnp.sum(x * w, axis=-1, keepdims=True)


def rgb_to_yuv(x: jax.Array) -> jax.Array:
    """RGB [..., 3] -> YUV [..., 3]: Y in [0, 1], U in ±0.436, V in ±0.615 for RGB in [0, 1]."""
    x = jnp.asarray(x)
    _check_rgb(x, "rgb_to_yuv")
    return x @ jnp.asarray(YUV_FROM_RGB, x.dtype).T


def yuv_to_rgb(yuv: jax.Array) -> jax.Array:
    """YUV [..., 3] -> RGB [..., 3], the inverse of `rgb_to_yuv` (not clipped)."""
    yuv = jnp.asarray(yuv)
    _check_rgb(yuv, "yuv_to_rgb")
    inv = jnp.linalg.inv(jnp.asarray(YUV_FROM_RGB, jnp.float32)).astype(yuv.dtype)
    return yuv @ inv.T


def with_chroma(luma: jax.Array, chroma: jax.Array) -> jax.Array:
    """RGB images with the luminance `luma` [..., 1] and the YUV chroma `chroma` [..., 2]
    (broadcast against each other, e.g. one mean chroma for all pixels), clipped to [0, 1].
    [..., 1] and [..., 2] -> [..., 3]."""
    luma, chroma = jnp.asarray(luma), jnp.asarray(chroma)
    shape = jnp.broadcast_shapes(luma.shape[:-1], chroma.shape[:-1])
    yuv = jnp.concatenate(
        [jnp.broadcast_to(luma, (*shape, 1)), jnp.broadcast_to(chroma, (*shape, 2))], axis=-1
    )
    return jnp.clip(yuv_to_rgb(yuv), 0.0, 1.0)


def colourfulness(x: jax.Array, peak: float = 1.0) -> jax.Array:
    """Hasler & Süsstrunk's (2003) colourfulness of each image, on their 0..255 scale.

    With rg = R − G and yb = (R + G)/2 − B over an image's pixels (scaled by 255/peak),
    M = sqrt(σ_rg² + σ_yb²) + 0.3·sqrt(μ_rg² + μ_yb²), σ and μ the standard deviation and
    mean over the pixels. 0 for a gray image; the paper's scale reads 15 "slightly", 33
    "moderately", 45 "averagely", 59 "quite", 82 "highly", 109 "extremely colourful".

    Args:
      x: RGB images [..., H, W, 3] with values in [0, peak].
      peak: the value of full intensity (1 for [0, 1] images, 255 for bytes).
    Returns:
      M of each image, [...]. (Its gradient is infinite at a gray image, where both
      square roots are 0.)
    """
    x = jnp.asarray(x)
    _check_rgb(x, "colourfulness")
    if x.ndim < 3:
        raise AejaxError(f"colourfulness needs images [..., H, W, 3]; got shape {x.shape}")
    x = x * (255.0 / peak)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    axes = (-2, -1)
    mean_rg, mean_yb = rg.mean(axis=axes), yb.mean(axis=axes)
    var_rg = jnp.mean((rg - mean_rg[..., None, None]) ** 2, axis=axes)
    var_yb = jnp.mean((yb - mean_yb[..., None, None]) ** 2, axis=axes)
    return jnp.sqrt(var_rg + var_yb) + 0.3 * jnp.sqrt(mean_rg**2 + mean_yb**2)
