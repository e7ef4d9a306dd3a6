"""The jitted sprites renderer (aejax.data.sprites) against an independent numpy
rendering of the same factors: the library's earlier renderer, kept here as the
reference."""

import itertools

import numpy as np

from aejax.data import sprites

SIZE = sprites.SIZE


def numpy_render(factors: np.ndarray) -> np.ndarray:
    """Pixel centres inside each sprite, all in numpy float32: float32 [N, 64, 64]."""
    v = sprites.factor_values(factors)
    pixels = np.arange(SIZE, dtype=np.float32) + 0.5
    px, py = pixels[None, None, :], (SIZE - pixels)[None, :, None]
    out = np.zeros((len(v["shape"]), SIZE, SIZE), np.float32)
    for shape, inside in enumerate((_square, _ellipse, _heart)):
        rows = np.flatnonzero(v["shape"] == shape)
        if not len(rows):
            continue
        col = lambda name: v[name][rows].astype(np.float32)[:, None, None]  # noqa: B023, E731
        cx, cy = 12.0 + 40.0 * col("position_x"), 12.0 + 40.0 * col("position_y")
        c, s, unit = np.cos(col("orientation")), np.sin(col("orientation")), 10.0 * col("scale")
        u = (c * (px - cx) + s * (py - cy)) / unit
        w = (c * (py - cy) - s * (px - cx)) / unit
        out[rows] = inside(u, w)
    return out


def _square(u, w):
    return np.maximum(np.abs(u), np.abs(w)) <= 0.95


def _ellipse(u, w):
    return np.square(u) + np.square(2.0 * w) <= 1.0


def _heart(u, w):
    x, y = 1.1 * u, 1.1 * w + 0.1
    return (np.square(x) + np.square(y) - 1.0) ** 3 <= np.square(x) * y**3


def extremes() -> np.ndarray:
    """Every shape at the smallest and largest scale, at every orientation, in the four
    corners and the centre: int [3·2·40·5, 5]."""
    places = [(0, 0), (0, 31), (31, 0), (31, 31), (16, 16)]
    return np.array(
        [
            (shape, scale, o, x, y)
            for shape, scale, o, (x, y) in itertools.product(range(3), (0, 5), range(40), places)
        ]
    )


def test_the_jitted_renderer_draws_numpy_s_images():
    factors = np.concatenate(
        [extremes(), sprites.RenderedSprites().sample_factors(2000, np.random.default_rng(0))]
    )
    want = numpy_render(factors)
    # A small chunk: several calls, the last one padded.
    got = sprites.RenderedSprites().images(factors, chunk=512)
    assert got.shape == (len(factors), SIZE, SIZE, 1) and got.dtype == np.float32
    differ = got[..., 0] != want
    # The squares and ellipses are the same pixels. The heart's cubes may differ in their
    # last bit: XLA computes x³ as x·x·x, numpy float32 `**3` with its own SIMD power
    # (which differs from x·x·x in about 30% of values, and from libm's powf), so a
    # pixel whose two sides of ≤ are within a rounding error of each other may flip. On
    # 24,000 random hearts, 1 pixel of 98 million flipped (2-core CPU with AVX-512); at
    # this test's ~1,100 hearts that allows at most one.
    assert not differ[factors[:, 0] != 2].any()
    assert differ.sum() <= 1, f"{differ.sum()} pixels differ in {differ.any((1, 2)).sum()} images"


def test_chunking_and_order_do_not_change_the_images():
    factors = sprites.RenderedSprites().sample_factors(300, np.random.default_rng(1))
    data = sprites.RenderedSprites()
    whole = data.images(factors)
    assert np.array_equal(data.images(factors, chunk=256), whole)
    order = np.random.default_rng(2).permutation(len(factors))
    assert np.array_equal(data.images(factors[order]), whole[order])
    assert data.images(factors[:0]).shape == (0, SIZE, SIZE, 1)
