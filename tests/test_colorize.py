"""Colorization: the grayscale corruption (BT.601, against hand numbers and scikit-image),
the YUV chroma swap, Hasler & Süsstrunk's colourfulness by hand, the colour-patch source's
whole-photo split, the row's colorings, a tiny training run and the cifar10 preset on
mocked TFDS data."""

import math
import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import color, corruption, losses
from aejax import config as config_lib
from aejax.data import SOURCES, load_dataset, photos
from aejax.errors import AejaxError, ConfigError
from aejax.losses import chroma

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments"))
import app_colorize  # noqa: E402

skcolor = pytest.importorskip("skimage.color")


def rand_rgb(shape, seed=0):
    return np.random.default_rng(seed).random((*shape, 3)).astype(np.float32)


# --------------------------------------------------------------------------- grayscale


def test_luminance_is_bt601_by_hand_and_scikit_images_yuv_not_its_rgb2gray():
    x = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.4, 0.6]]])
    want = [0.299, 0.587, 0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]  # 0.3630
    np.testing.assert_allclose(color.luminance(x)[0, :, 0], want, rtol=1e-6)
    x = rand_rgb((2, 5, 7))
    np.testing.assert_allclose(color.luminance(x)[..., 0], skcolor.rgb2yuv(x)[..., 0], atol=1e-6)
    np.testing.assert_allclose(color.luminance(x)[..., 0], skcolor.rgb2yiq(x)[..., 0], atol=1e-6)
    # rgb2gray weighs with BT.709 (0.2125, 0.7154, 0.0721): pure red is 0.2125 there.
    assert skcolor.rgb2gray(np.array([[[1.0, 0.0, 0.0]]]))[0, 0] == pytest.approx(0.2125)


def test_grayscale_corruption_replicates_luminance_deterministically():
    fn = corruption.get("grayscale")
    assert fn is corruption.grayscale
    x = jnp.asarray(rand_rgb((3, 4, 4)))
    a = jax.jit(fn)(jax.random.key(0), x)
    b = fn(jax.random.key(1), x)  # the key is not used
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_allclose(a, b, rtol=1e-6)  # jitted and not: the last bit may differ
    np.testing.assert_array_equal(b, fn(jax.random.key(2), x))
    np.testing.assert_array_equal(a[..., 0], a[..., 1])
    np.testing.assert_array_equal(a[..., 0], a[..., 2])
    np.testing.assert_allclose(a[..., 0], x @ jnp.array([0.299, 0.587, 0.114]), rtol=1e-6)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    # A gray image stays itself; a config builds it with no level to set.
    gray = jnp.broadcast_to(x[..., :1], x.shape)
    np.testing.assert_allclose(fn(None, gray), gray, atol=1e-6)
    cfg = config_lib.base_config().corruption
    cfg.name = "grayscale"
    np.testing.assert_array_equal(corruption.get_corruption(cfg)(None, x), b)


def test_grayscale_refuses_images_without_three_channels():
    with pytest.raises(ConfigError, match="needs RGB images .* shape \\(4, 4, 1\\)"):
        corruption.grayscale(None, jnp.zeros((2, 4, 4, 1)))


def test_yuv_matches_scikit_image_and_chroma_swap_keeps_luminance():
    x = rand_rgb((2, 6, 6), seed=1)
    yuv = color.rgb_to_yuv(x)
    np.testing.assert_allclose(yuv, skcolor.rgb2yuv(x), atol=1e-6)
    np.testing.assert_allclose(color.yuv_to_rgb(yuv), x, atol=1e-5)
    np.testing.assert_allclose(color.with_chroma(yuv[..., :1], yuv[..., 1:]), x, atol=1e-5)
    # One chroma for every pixel: the luminance is the given one wherever nothing clips.
    out = color.with_chroma(yuv[..., :1], jnp.array([0.02, -0.03]))
    inside = np.all((np.asarray(out) > 0) & (np.asarray(out) < 1), axis=-1)
    np.testing.assert_allclose(
        np.asarray(color.luminance(out))[inside], np.asarray(yuv[..., :1])[inside], atol=1e-5
    )


# --------------------------------------------------------------------------- colourfulness


def colourfulness_numpy(x):
    x = np.asarray(x, np.float64) * 255.0
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    axes = (-2, -1)
    return np.hypot(rg.std(axes), yb.std(axes)) + 0.3 * np.hypot(rg.mean(axes), yb.mean(axes))


def test_colourfulness_by_hand():
    # Red and blue pixels: rg = (255, 0), yb = (127.5, −255).
    x = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    sigma = math.sqrt(127.5**2 + 191.25**2)  # σ_rg = 127.5; σ_yb = (127.5 + 255) / 2
    mu = math.sqrt(127.5**2 + 63.75**2)  # μ_rg = 127.5; μ_yb = −63.75
    assert float(color.colourfulness(x)) == pytest.approx(sigma + 0.3 * mu, rel=1e-6)
    # One flat colour: no spread, only the mean term: 0.3·|(rg, yb)| of pure red.
    red = np.broadcast_to(np.array([1.0, 0, 0], np.float32), (3, 3, 3))
    assert float(color.colourfulness(red)) == pytest.approx(0.3 * math.hypot(255, 127.5))
    # The same image in bytes.
    assert float(color.colourfulness(x * 255, peak=255)) == pytest.approx(sigma + 0.3 * mu)


def test_colourfulness_is_zero_for_gray_images_and_matches_numpy():
    gray = np.asarray(corruption.grayscale(None, jnp.asarray(rand_rgb((4, 8, 8)))))
    np.testing.assert_array_equal(color.colourfulness(gray), 0.0)
    # Jitted, XLA may reassociate the sums: zero to float rounding on the 0..255 scale.
    np.testing.assert_allclose(jax.jit(color.colourfulness)(gray), 0.0, atol=1e-4)
    x = rand_rgb((5, 8, 8), seed=2)
    got = jax.jit(color.colourfulness)(x)
    assert got.shape == (5,)
    np.testing.assert_allclose(got, colourfulness_numpy(x), rtol=1e-5)
    # More saturated, more colourful.
    grey_mix = 0.5 * x + 0.5 * np.asarray(corruption.grayscale(None, jnp.asarray(x)))
    assert np.all(color.colourfulness(grey_mix) < got)
    with pytest.raises(AejaxError, match="3 channels last"):
        color.colourfulness(np.zeros((2, 4, 4, 1)))


def test_colourfulness_gradients():
    x = jnp.asarray(rand_rgb((2, 3, 3), seed=3))
    f = jax.jit(lambda v: color.colourfulness(v).sum())
    check_grads(f, (x,), order=1, eps=1e-2, rtol=2e-2)


# --------------------------------------------------------------------------- the data source


def patch_config(**fields):
    cfg = config_lib.base_config().data
    cfg.source = "color_patches"
    cfg.max_train, cfg.max_test = 120, 40
    for k, v in fields.items():
        cfg[k] = v
    return cfg


def test_color_patches_split_whole_photos_deterministically():
    assert SOURCES["color_patches"] is photos.load_color_patches
    ds = load_dataset(patch_config(valid_fraction=0.25))
    assert ds.train_x.shape == (90, 32, 32, 3) and ds.valid_x.shape == (30, 32, 32, 3)
    assert ds.test_x.shape == (40, 32, 32, 3)
    assert 0.0 <= ds.train_x.min() and ds.train_x.max() <= 1.0
    held_out = [list(photos.PHOTOS).index(n) for n in photos.DEFAULT_TEST]
    assert set(ds.test_y.tolist()) == set(held_out)
    assert not set(ds.train_y.tolist()) & set(held_out)
    assert not set(ds.valid_y.tolist()) & set(held_out)
    assert len(set(ds.train_y.tolist())) == len(photos.PHOTOS) - len(held_out)
    again = load_dataset(patch_config(valid_fraction=0.25))
    np.testing.assert_array_equal(again.train_x, ds.train_x)
    other = load_dataset(patch_config(split_seed=1))
    assert not np.array_equal(other.test_x, ds.test_x)
    named = load_dataset(patch_config(name="rocket, flower"))
    assert set(named.test_y.tolist()) == {5, 1}  # rocket, flower


def test_random_patches_are_crops_of_the_photo():
    image = rand_rgb((40, 50), seed=4)
    got = photos.random_patches(image, 6, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    top, left = rng.integers(0, 9, 6), rng.integers(0, 19, 6)
    for p, t, s in zip(got, top, left, strict=True):
        np.testing.assert_array_equal(p, image[t : t + 32, s : s + 32])


@pytest.mark.parametrize(
    "name, message",
    [
        ("rocket,chelsey", "unknown photo 'chelsey'.*did you mean 'chelsea'"),
        ("rocket,rocket", "names a photo twice"),
        (",".join(photos.PHOTOS), "holds out every photo"),
    ],
)
def test_bad_held_out_photos_are_one_line_config_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(patch_config(name=name))


# --------------------------------------------------------------------------- the row's colorings


def test_colorings_of_an_oracle_and_of_a_gray_model():
    x = load_dataset(patch_config()).test_x[:8]
    chroma = np.array([0.01, 0.02], np.float32)
    oracle = app_colorize.colorings(lambda g: x, x, chroma)
    assert app_colorize.mean_psnr(x, oracle[app_colorize.AE_LUMA]) > 60
    gray = app_colorize.colorings(lambda g: g, x, chroma)
    np.testing.assert_allclose(gray[app_colorize.AE_LUMA], gray[app_colorize.GRAY], atol=1e-5)
    assert app_colorize.colourfulness(gray[app_colorize.GRAY]) < 1e-3
    # The mean chroma keeps the luminance (no pixel of these patches clips much).
    np.testing.assert_allclose(
        color.luminance(gray[app_colorize.MEAN]), color.luminance(x), atol=0.02
    )


# --------------------------------------------------------------------------- training


def test_chroma_mse_by_hand_against_scikit_image_and_its_gradient():
    x = jnp.asarray(rand_rgb((2, 3, 3), seed=5))
    x_hat = jnp.asarray(rand_rgb((2, 3, 3), seed=6))
    want = np.sum((skcolor.rgb2yuv(x_hat)[..., 1:] - skcolor.rgb2yuv(x)[..., 1:]) ** 2, (1, 2, 3))
    np.testing.assert_allclose(chroma.chroma_mse(x=x, x_hat=x_hat), want, rtol=1e-5)
    # A gray shift of every channel changes only the luminance: no chroma error.
    np.testing.assert_allclose(chroma.chroma_mse(x=x, x_hat=x + 0.1), 0.0, atol=1e-10)
    # One pixel off by pure blue 0.1: U = 0.436·0.1, V = −0.100·0.1.
    one = jnp.zeros((1, 1, 1, 3))
    got = chroma.chroma_mse(x=one, x_hat=one.at[..., 2].set(0.1))
    assert float(got[0]) == pytest.approx((0.043601035**2 + 0.010001026**2), rel=1e-5)
    assert losses.get_term("chroma_mse").fn is chroma.chroma_mse
    f = jax.jit(lambda v: chroma.chroma_mse(x=x, x_hat=v).sum())
    check_grads(f, (x_hat,), order=2, eps=1e-2)


def test_tiny_run_colours_validation_patches_better_than_gray_and_untrained(tmp_path):
    import dataclasses

    from aejax.evaluate import TrainedModel
    from aejax.train import train_and_evaluate

    config = config_lib.load_config("colorize:tiny")
    config.progress_bar = False
    train_and_evaluate(config, str(tmp_path))
    m = TrainedModel.load(str(tmp_path))
    x = m.dataset.valid_x
    untrained = dataclasses.replace(m, variables=m.model.init(jax.random.key(0), x[:1]))
    error = lambda out: float(np.mean(chroma.chroma_mse(x=x, x_hat=out)))
    gray = np.asarray(corruption.grayscale(None, x))
    trained = error(m.reconstruct(gray))
    # The gray input is the chroma-0 guess; the untrained model's guess is its start.
    assert trained < 0.9 * error(gray), (trained, error(gray))
    assert trained < 0.9 * error(untrained.reconstruct(gray))


def test_cifar10_preset_trains_on_mocked_tfds(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from aejax.train import train_and_evaluate

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # each mock call leaves an empty temp dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = config_lib.load_config("colorize:cifar10")
    assert (config.data.source, config.data.name) == ("tfds", "cifar10")
    config.data.data_dir = str(tmp_path)
    config.data.max_train, config.data.max_test = 80, 16
    config.model.features = (4,)
    config.batch_size, config.num_epochs, config.num_steps = 16, 0, 2
    config.progress_bar = False
    with tfds.testing.mock_data(num_examples=80):
        _, metrics = train_and_evaluate(config, str(tmp_path / "run"))
    assert metrics["step"] == 2 and np.isfinite(metrics["valid/loss"])
