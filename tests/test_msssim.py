"""SSIM and MS-SSIM (aejax.losses.msssim) against scikit-image and a NumPy/SciPy reference of
the same formula, by hand, their gradients, their refusals; the MSSSIM-VAE trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import ndimage

from aejax import config as config_lib
from aejax import losses, train
from aejax.errors import ConfigError
from aejax.losses import msssim as ms


def _pair(shape, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=shape)
    y = np.clip(x + rng.normal(0.0, noise, size=shape), 0.0, 1.0)
    return x.astype(np.float32), y.astype(np.float32)


def test_ssim_map_matches_scikit_image_away_from_the_border():
    # skimage's Gaussian SSIM (σ = 1.5, truncated at 3.5σ: the same 11 taps) reflects at the
    # border where ours zero-pads as pythae does; 5 pixels in, neither reaches the border.
    skimage_metrics = pytest.importorskip("skimage.metrics")
    x, y = _pair((2, 24, 20, 2))
    ours = np.asarray(ms.ssim_maps(jnp.asarray(x), jnp.asarray(y), 11)[0])
    for b in range(2):
        for c in range(2):
            _, ref = skimage_metrics.structural_similarity(
                x[b, ..., c].astype(np.float64),
                y[b, ..., c].astype(np.float64),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
                full=True,
            )
            inner = (slice(5, -5), slice(5, -5))
            np.testing.assert_allclose(ours[b][inner + (c,)], ref[inner], atol=1e-5)


def _np_maps(x, y, size):
    """SSIM and cs maps of 2-D float64 images, zero-padded, with SciPy's correlate."""
    t = np.arange(size) - size // 2
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.sum(g) ** 2
    f = lambda v: ndimage.correlate(v, w, mode="constant", cval=0.0)
    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    cs = (2 * cov + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs, cs


def _np_ms_ssim(x, y, size, weights):
    """Wang et al.'s product over scales of one [H, W, C] pair, each value v as (v + 1)/2."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    out = 1.0
    for j, w in enumerate(weights):
        maps = [_np_maps(x[..., c], y[..., c], size) for c in range(x.shape[-1])]
        ssim = np.mean([m[0] for m in maps])
        cs = np.mean([m[1] for m in maps])
        out *= (((ssim if j == len(weights) - 1 else cs) + 1) / 2) ** w
        x, y = _np_pool(x), _np_pool(y)
    return out


def _np_pool(v):
    """2x2 means of [H, W, C], an odd last row or column dropped."""
    h, w = v.shape[0] // 2, v.shape[1] // 2
    return v[: 2 * h, : 2 * w].reshape(h, 2, w, 2, -1).mean(axis=(1, 3))


@pytest.mark.parametrize(
    ("shape", "size", "scales", "expected_scales"),
    [
        ((3, 8, 8, 1), 3, 0, 3),  # the digits: pythae's rule gives 3 scales
        ((2, 28, 28, 1), 3, 0, 4),  # MNIST: 4 (28, 14, 7, 3 pixels)
        ((2, 28, 28, 1), 11, 0, 4),
        ((2, 13, 10, 2), 5, 2, 2),  # odd sizes, two channels, an explicit number of scales
        ((2, 40, 36, 1), 11, 0, 5),  # Wang's five scales and weights
    ],
)
def test_ms_ssim_matches_a_numpy_reference(shape, size, scales, expected_scales):
    x, y = _pair(shape)
    assert (scales or ms.scales_for_width(shape[2])) == expected_scales
    ours = np.asarray(ms.ms_ssim(jnp.asarray(x), jnp.asarray(y), size, scales))
    weights = ms.WEIGHTS[expected_scales]
    ref = [_np_ms_ssim(x[b], y[b], size, weights) for b in range(shape[0])]
    np.testing.assert_allclose(ours, ref, rtol=2e-5)
    term = losses.get_loss("msssim")(x=jnp.asarray(x), x_hat=jnp.asarray(y), window_size=size)
    if not scales:
        np.testing.assert_allclose(term, 1.0 - np.asarray(ref), atol=2e-5)


def test_hand_cases():
    widths = (2, 4, 7, 8, 15, 16, 28, 32, 64)
    assert [ms.scales_for_width(w) for w in widths] == [1, 2, 2, 3, 3, 4, 4, 5, 5]
    np.testing.assert_allclose(
        ms.gaussian_window(3), np.array([0.30780, 0.38440, 0.30780]), atol=1e-5
    )
    x, y = _pair((4, 8, 8, 1))
    x = jnp.asarray(x)
    np.testing.assert_allclose(ms.ssim(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(ms.ms_ssim(x, x), 1.0, atol=1e-6)
    np.testing.assert_allclose(losses.get_loss("msssim")(x=x, x_hat=x), 0.0, atol=1e-6)
    # Symmetric, and worse with more noise; an MLP's flat x̂ is read in the data's shape.
    y = jnp.asarray(y)
    np.testing.assert_allclose(ms.ms_ssim(x, y), ms.ms_ssim(y, x), rtol=1e-6)
    noisier = jnp.asarray(_pair((4, 8, 8, 1), noise=0.5)[1])
    assert np.all(np.asarray(ms.ms_ssim(x, noisier)) < np.asarray(ms.ms_ssim(x, y)))
    flat = losses.get_loss("msssim")(x=x, x_hat=y.reshape(4, -1))
    np.testing.assert_allclose(flat, 1.0 - ms.ms_ssim(x, y), rtol=1e-6)
    # One scale is the mean SSIM itself, mapped to (v + 1)/2.
    np.testing.assert_allclose(ms.ms_ssim(x, y, 11, 1), (ms.ssim(x, y) + 1) / 2, rtol=1e-6)


def test_msssim_gradients():
    x, y = (jnp.asarray(v) for v in _pair((2, 8, 8, 1), noise=0.1, seed=1))
    term = jax.jit(lambda y: losses.get_loss("msssim")(x=x, x_hat=y, window_size=3))
    check_grads(term, (y,), order=1, modes=("rev",), atol=2e-2, rtol=2e-2, eps=1e-3)


def test_refusals():
    x = jnp.zeros((2, 64))
    with pytest.raises(ConfigError, match="needs image examples"):
        losses.get_loss("msssim")(x=x, x_hat=x)
    x = jnp.zeros((2, 8, 8, 1))
    with pytest.raises(ConfigError, match="5 scales halve 8x8 images below one pixel; .* <= 4"):
        losses.get_loss("msssim")(x=x, x_hat=x, scales=5)
    weights = {"msssim": 1.0}
    for option, value, message in (
        ("window_size", 4, "an odd integer"),
        ("window_size", 2.5, "an odd integer"),
        ("scales", 6, "1..5"),
    ):
        with pytest.raises(ConfigError, match=f"msssim.{option}={value}.*{message}"):
            losses.term_options({"msssim": {option: value}}, weights)


def test_msssim_vae_trains_on_digits(tmp_path):
    config = config_lib.load_config("msssim_vae:digits")
    config.num_epochs, config.num_steps = 0, 40
    config.eval_every_steps = config.checkpoint_every_steps = 40
    config.log_every_steps = config.steps_per_dispatch = 20
    config.progress_bar = False
    exp = train.Experiment.from_config(config, str(tmp_path / "probe"))
    before = exp.evaluate(exp.init_state())
    state, after = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == 40
    assert after["test/msssim"] < 0.6 * before["test/msssim"], (before, after)
