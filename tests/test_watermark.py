"""The watermark corruption (aejax.watermark): its font and shapes drawn by hand, its draw
deterministic in the key, the stamped pixels exactly those of its mask, its range, its
options' errors, and a tiny denoising run that removes stamps."""

import functools

import jax
import numpy as np
import pytest

from aejax import config as config_lib
from aejax import corruption, train
from aejax import watermark as wm
from aejax.errors import ConfigError
from aejax.evaluate import TrainedModel


@functools.lru_cache
def _jitted(**options):
    """watermark and its stamp for these options, jitted once per test session."""
    stamp = jax.jit(functools.partial(wm.watermark_stamp, **options), static_argnums=1)
    return jax.jit(functools.partial(wm.watermark, **options)), stamp


def _images(shape, seed=0, low=0.05, high=0.95):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def test_font_has_36_distinct_inked_glyphs_and_text_is_drawn_cell_by_cell():
    assert wm.FONT.shape == (36, 7, 5) and len(wm.CHARACTERS) == 36
    flat = wm.FONT.reshape(36, -1)
    assert (flat.sum(1) >= 10).all()  # every glyph has ink
    assert len({row.tobytes() for row in flat}) == 36  # and no two are alike
    codes = np.array([wm.CHARACTERS.index(c) for c in "A7"])
    # By hand: the two glyphs with one blank column between.
    template = np.concatenate([wm.FONT[codes[0]], np.zeros((7, 1)), wm.FONT[codes[1]]], 1)
    np.testing.assert_array_equal(wm.text_template(codes), template)
    for cell, top, left in ((1.0, 3.0, 4.0), (2.0, 1.3, 0.6)):
        got = np.asarray(wm.render_text(codes, top, left, cell, 20, 30))
        want = np.zeros((20, 30), bool)
        big = np.kron(template, np.ones((int(cell), int(cell)))) > 0
        # Pixel centers i + 0.5 in [top, top + 7·cell): rows ceil(top − 0.5) onwards.
        r, c = int(np.ceil(top - 0.5)), int(np.ceil(left - 0.5))
        want[r : r + big.shape[0], c : c + big.shape[1]] = big
        np.testing.assert_array_equal(got, want)


def test_logos_cover_the_expected_share_of_their_square():
    for index, (lo, hi) in enumerate(((0.5, 0.6), (0.45, 0.57), (0.55, 0.65))):
        # ring π(1 − 0.55²)/4 = 0.548, cross 0.51, bars 0.6 of the square's area
        got = np.asarray(wm.render_logo(index, 10.0, 20.0, 40.0, 64, 64))
        assert lo < got.sum() / 40**2 < hi, wm.LOGOS[index]
        rows, cols = np.nonzero(got)
        assert rows.min() >= 10 and rows.max() < 50 and cols.min() >= 20 and cols.max() < 60


def test_draw_is_deterministic_in_its_key_and_differs_across_keys():
    stamp_fn, _ = _jitted()
    x = _images((16, 28, 28, 1))
    a, b = stamp_fn(jax.random.key(0), x), stamp_fn(jax.random.key(0), x)
    c = stamp_fn(jax.random.key(1), x)
    np.testing.assert_array_equal(a, b)
    assert (np.asarray(a) != np.asarray(c)).any(axis=(1, 2, 3)).all()
    # Each image gets a stamp of its own.
    _, mask_fn = _jitted()
    touched = np.asarray(mask_fn(jax.random.key(0), x.shape).touched)
    assert len({t.tobytes() for t in touched}) == len(touched)


@pytest.mark.parametrize("value", wm.VALUES)
def test_stamped_pixels_are_exactly_the_mask_blend_toward_the_value_and_stay_in_range(value):
    stamp_fn, mask_fn = _jitted(value=value, opacity=(0.2, 1.0))
    key, x = jax.random.key(3), _images((12, 32, 32, 3))
    out = np.asarray(stamp_fn(key, x))
    s = mask_fn(key, x.shape)
    touched, alpha, v = (np.asarray(a) for a in s)
    assert touched.shape == (12, 32, 32) and alpha.shape == (12, 32, 32) and v.shape == (12, 3)
    np.testing.assert_array_equal((out != x).any(-1), touched)
    np.testing.assert_array_equal(alpha > 0, touched)
    assert ((alpha[touched] >= 0.2) & (alpha[touched] <= 1.0)).all()
    a = alpha[..., None]
    want = np.where(touched[..., None], (1 - a) * x + a * v[:, None, None, :], x)
    np.testing.assert_allclose(out, want, atol=1e-6)
    if value == "random":  # a color per image: channels differ
        assert (np.ptp(v, axis=1) > 0.01).mean() > 0.9
    else:
        assert (v == (1.0 if value == "white" else 0.0)).all()
    # The whole range [0, 1], its ends included, stays in it.
    full = _images(x.shape, low=0.0, high=1.0)
    full[:, ::3] = 1.0
    full[:, 1::3] = 0.0
    out = np.asarray(stamp_fn(key, full))
    assert out.min() >= 0 and out.max() <= 1 and out.dtype == np.float32


def test_mask_area_and_kinds():
    shape, key = (64, 28, 64, 1), jax.random.key(5)
    kinds = {
        kind: np.asarray(_jitted(kind=kind, scale=(0.5, 0.5))[1](key, shape).touched)
        for kind in wm.KINDS
    }
    t, g = kinds["text"], kinds["logo"]
    area = g.sum((1, 2)) / 14**2  # the logo's square is 0.5·28 = 14 pixels a side
    assert ((area > 0.4) & (area < 0.7)).all(), area
    # Text of cells 2 pixels a side (height 14 of 28, width 34 of 64): whole cells only.
    ink = t.sum((1, 2))
    assert (ink % 4 == 0).all()
    bits = wm.FONT.reshape(36, -1).sum(1)
    assert ((ink >= 4 * 3 * bits.min()) & (ink <= 4 * 3 * bits.max())).all()
    rows, cols = t.any(2), t.any(1)
    height = [np.ptp(np.nonzero(r)[0]) + 1 for r in rows]
    width = [np.ptp(np.nonzero(c)[0]) + 1 for c in cols]
    assert max(height) <= 14 and max(width) <= 34 and min(width) > 14
    # The same key draws the same text and logo whatever the kind: both is their union,
    # either one of the two per image.
    np.testing.assert_array_equal(kinds["both"], t | g)
    is_text = (kinds["either"] == t).all((1, 2))
    assert (is_text | (kinds["either"] == g).all((1, 2))).all() and 0 < is_text.mean() < 1


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("opacity", (0.5, 0.2), "config.corruption.opacity=(0.5, 0.2) must be a pair"),
        ("opacity", (0.1, 1.5), "config.corruption.opacity"),
        ("scale", (0.0, 0.5), "config.corruption.scale=(0.0, 0.5) must be a pair (low, high) "),
        ("scale", 0.5, "config.corruption.scale=0.5 must be a pair"),
        ("kind", "stamp", "config.corruption.kind='stamp' is not known; valid: text, logo"),
        ("value", "gray", "config.corruption.value='gray' is not known"),
        ("length", 0, "config.corruption.length=0 must be an integer in [1, 16]"),
        ("angle", 3, "config.corruption.angle is not an option of the watermark corruption"),
    ],
)
def test_bad_options_give_one_line_config_errors(field, value, words):
    with pytest.raises(ConfigError) as e:
        wm.check_options({field: value}, "config.corruption")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_options_reach_the_corruption_opacity_zero_is_the_identity_and_others_refuse_them():
    config = config_lib.load_config("watermark:digits")
    config.corruption.opacity = (0.0, 0.0)
    x = _images((4, 8, 8, 1), low=-2.0, high=3.0)  # the identity even outside [0, 1]
    np.testing.assert_array_equal(
        corruption.get_corruption(config.corruption)(jax.random.key(0), x), x
    )
    config.corruption.kind = "stamp"  # checked before training, through the config
    with pytest.raises(ConfigError, match="config.corruption.kind='stamp' is not known"):
        corruption.get_corruption(config.corruption)
    config.corruption.kind = "logo"
    config.corruption.name = "gaussian"
    config.corruption.sigma = 0.1
    with pytest.raises(ConfigError, match="is not an option of the 'gaussian' corruption"):
        corruption.get_corruption(config.corruption)
    with pytest.raises(ConfigError, match=r"needs image batches \[B, H, W, C\]"):
        wm.watermark(jax.random.key(0), x.reshape(4, 64))


def test_a_short_run_removes_stamps_better_than_leaving_them(tmp_path):
    config = config_lib.load_config("watermark:digits")
    config.corruption.opacity = (0.8, 1.0)
    config.num_epochs, config.num_steps = 0, 100
    config.eval_every_steps = config.checkpoint_every_steps = 100
    config.log_every_steps = config.steps_per_dispatch = 50
    config.progress_bar = False
    train.train_and_evaluate(config, str(tmp_path))
    m = TrainedModel.load(str(tmp_path))
    x = m.dataset.test_x
    options = {k: v for k, v in config.corruption.items() if k in wm.DEFAULTS}
    stamped = np.asarray(jax.jit(functools.partial(wm.watermark, **options))(jax.random.key(9), x))
    mse = lambda y: float(np.mean((y - x) ** 2))
    # Better than the stamped input by more than 1 dB of PSNR on the whole test set (a run
    # measured 2.2 dB on this 2-core CPU).
    assert mse(m.reconstruct(stamped)) < 10 ** (-1 / 10) * mse(stamped)


def test_the_rows_biharmonic_baseline_fills_the_true_mask_of_a_stamp():
    import app_watermark

    # Biharmonic inpainting reproduces a linear ramp inside any hole (its Laplacian's
    # Laplacian is 0), so a stamp on a ramp is undone; pixels outside the mask are kept.
    ramp = np.linspace(0.1, 0.9, 20, dtype=np.float32)
    x = np.broadcast_to(ramp[None, :, None] + 0.0 * ramp[:, None, None], (20, 20, 1))
    x = np.stack([x, x[::-1, ::-1]]).astype(np.float32)
    stamp_fn, mask_fn = _jitted(kind="logo", opacity=(1.0, 1.0))
    key = jax.random.key(6)
    stamped = np.asarray(stamp_fn(key, x))
    touched = np.asarray(mask_fn(key, x.shape).touched)
    out = app_watermark.biharmonic(stamped, touched)
    np.testing.assert_allclose(out, x, atol=1e-3)
    np.testing.assert_array_equal(out[~touched], stamped[~touched])
    assert np.abs(stamped - x).max() > 0.05


def test_a_registered_corruption_gets_its_own_checked_options():
    def check(fields, where):
        if fields.get("shift", 0) < 0:
            raise ConfigError(f"{where}.shift={fields['shift']!r} must be >= 0")
        return {"shift": 1.0, **fields}

    corruption.register_corruption(
        "test_shift", lambda key, x, *, shift, **_: x + shift, options=check
    )
    try:
        config = config_lib.base_config()
        config.corruption.name = "test_shift"
        np.testing.assert_array_equal(corruption.get_corruption(config.corruption)(None, 0.0), 1.0)
        with config.corruption.unlocked():
            config.corruption.shift = 2.5
        np.testing.assert_array_equal(corruption.get_corruption(config.corruption)(None, 0.0), 2.5)
        config.corruption.shift = -1.0
        with pytest.raises(ConfigError, match=r"^config.corruption.shift=-1.0 must be >= 0$"):
            corruption.get_corruption(config.corruption)
    finally:
        del corruption.CORRUPTIONS["test_shift"], corruption.OPTION_CHECKS["test_shift"]
