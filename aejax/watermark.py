"""Watermarks stamped on image batches: a corruption of (key, x), and the mask of its draw.

Each image of a batch [B, H, W, C] gets its own stamp, drawn from the key: a text of
`length` random characters (digits and uppercase letters of a built-in 5x7 bitmap font) or a
logo (a ring, a cross or three bars), at a random position and size, blended toward a value
(white, black or a random color) with a random opacity. The pixels a stamp touches are
x̃ = (1 − α)·x + α·v, every other pixel is left as it is.

`watermark(key, x, **options)` is the corruption (registered as `watermark`); with the same
key and options `watermark_stamp(key, x.shape, **options)` gives the same draw: which pixels
were touched, their α and the value v, so a method may be handed the true mask.
Both are pure functions of (key, x) and jit; options are Python values, checked by
`check_options` (`config.corruption.<option>` in a config).
"""

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError

# The 5x7 glyphs of 0-9 and A-Z, rows top to bottom ("#" ink, "." blank).
_GLYPHS = (
    ".###. #...# #..## #.#.# ##..# #...# .###.",  # 0
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",  # 1
    ".###. #...# ....# ...#. ..#.. .#... #####",  # 2
    "##### ...#. ..#.. ...#. ....# #...# .###.",  # 3
    "...#. ..##. .#.#. #..#. ##### ...#. ...#.",  # 4
    "##### #.... ####. ....# ....# #...# .###.",  # 5
    "..##. .#... #.... ####. #...# #...# .###.",  # 6
    "##### ....# ...#. ..#.. .#... .#... .#...",  # 7
    ".###. #...# #...# .###. #...# #...# .###.",  # 8
    ".###. #...# #...# .#### ....# ...#. .##..",  # 9
    ".###. #...# #...# ##### #...# #...# #...#",  # A
    "####. #...# #...# ####. #...# #...# ####.",  # B
    ".###. #...# #.... #.... #.... #...# .###.",  # C
    "###.. #..#. #...# #...# #...# #..#. ###..",  # D
    "##### #.... #.... ####. #.... #.... #####",  # E
    "##### #.... #.... ####. #.... #.... #....",  # F
    ".###. #...# #.... #.### #...# #...# .####",  # G
    "#...# #...# #...# ##### #...# #...# #...#",  # H
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",  # I
    "..### ...#. ...#. ...#. ...#. #..#. .##..",  # J
    "#...# #..#. #.#.. ##... #.#.. #..#. #...#",  # K
    "#.... #.... #.... #.... #.... #.... #####",  # L
    "#...# ##.## #.#.# #.#.# #...# #...# #...#",  # M
    "#...# #...# ##..# #.#.# #..## #...# #...#",  # N
    ".###. #...# #...# #...# #...# #...# .###.",  # O
    "####. #...# #...# ####. #.... #.... #....",  # P
    ".###. #...# #...# #...# #.#.# #..#. .##.#",  # Q
    "####. #...# #...# ####. #.#.. #..#. #...#",  # R
    ".#### #.... #.... .###. ....# ....# ####.",  # S
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",  # T
    "#...# #...# #...# #...# #...# #...# .###.",  # U
    "#...# #...# #...# #...# #...# .#.#. ..#..",  # V
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",  # W
    "#...# #...# .#.#. ..#.. .#.#. #...# #...#",  # X
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",  # Y
    "##### ....# ...#. ..#.. .#... #.... #####",  # Z
)
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# FONT[i] is the bitmap of CHARACTERS[i]: [36, 7, 5], 1 where the glyph has ink.
FONT = np.array([[[c == "#" for c in row] for row in g.split()] for g in _GLYPHS], np.float32)
FONT.setflags(write=False)
LOGOS = ("ring", "cross", "bars")
KINDS = ("text", "logo", "either", "both")
VALUES = ("white", "black", "random")
# The defaults of the options (`config.corruption.<option>`).
DEFAULTS = {
    "opacity": (0.3, 0.7),  # α, uniform in this range per image
    "scale": (0.3, 0.6),  # text: its height / H (shrunk to fit W); logo: its side / min(H, W)
    "kind": "either",  # text | logo | either (one of the two per image) | both (text and logo)
    "value": "white",  # what the stamp blends toward: white (1) | black (0) | random (per channel)
    "length": 3,  # characters of a text
}


class Stamp(NamedTuple):
    """One draw of watermarks for a batch.

    touched: [B, H, W] bool, the pixels a stamp covers.
    alpha: [B, H, W] float32, the opacity where touched, 0 elsewhere.
    value: [B, C] float32, the value the touched pixels are blended toward.
    """

    touched: jax.Array
    alpha: jax.Array
    value: jax.Array


def _range(v, where: str, low_open: bool) -> tuple[float, float]:
    """(low, high) from a pair of numbers in [0, 1] (low > 0 when low_open)."""
    op = "<" if low_open else "<="
    text = f"{where}={v!r} must be a pair (low, high) with 0 {op} low <= high <= 1"
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise ConfigError(text)
    lo, hi = v
    for e in (lo, hi):
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not np.isfinite(e):
            raise ConfigError(text)
    if not (0 <= lo <= hi <= 1) or (low_open and lo == 0):
        raise ConfigError(text)
    return float(lo), float(hi)


def check_options(options: Mapping, where: str = "config.corruption") -> dict:
    """The watermark's options with the defaults filled in; ConfigError (one line, naming
    `where.<option>`) for an unknown option or a bad value."""
    unknown = sorted(set(options) - set(DEFAULTS) - {"sigma", "fraction", "clip", "name"})
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]} is not an option of the watermark corruption; valid: "
            + ", ".join(DEFAULTS)
        )
    o = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
    out = {
        "opacity": _range(o["opacity"], f"{where}.opacity", False),
        "scale": _range(o["scale"], f"{where}.scale", True),
    }
    for name, valid in (("kind", KINDS), ("value", VALUES)):
        if o[name] not in valid:
            raise ConfigError(f"{where}.{name}={o[name]!r} is not known; valid: {', '.join(valid)}")
        out[name] = o[name]
    n = o["length"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
        raise ConfigError(f"{where}.length={n!r} must be an integer in [1, 16]")
    out["length"] = n
    return out


def _centers(size: int) -> jax.Array:
    return jnp.arange(size, dtype=jnp.float32) + 0.5


def text_template(codes: jax.Array) -> jax.Array:
    """The bitmap of a text: glyphs FONT[codes] side by side, one blank column between.

    codes [n] int (indices into CHARACTERS) -> [7, 6n − 1] float32.
    """
    glyphs = jnp.asarray(FONT)[codes]  # [n, 7, 5]
    spaced = jnp.pad(glyphs, ((0, 0), (0, 0), (0, 1)))  # [n, 7, 6]
    return jnp.transpose(spaced, (1, 0, 2)).reshape(7, -1)[:, :-1]


def render_text(codes, top, left, cell, height: int, width: int) -> jax.Array:
    """The pixels of an [height, width] image covered by the text `codes` drawn with its
    top-left corner at (top, left) and cells of `cell` pixels (floats): a pixel is covered
    when its center falls in an ink cell. -> [height, width] bool."""
    t = text_template(codes)
    u = (_centers(height)[:, None] - top) / cell  # the template's row of each pixel
    v = (_centers(width)[None, :] - left) / cell
    inside = (u >= 0) & (u < t.shape[0]) & (v >= 0) & (v < t.shape[1])
    ui = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, t.shape[0] - 1)
    vi = jnp.clip(jnp.floor(v).astype(jnp.int32), 0, t.shape[1] - 1)
    return inside & (t[ui, vi] > 0)


def render_logo(shape_index, top, left, side, height: int, width: int) -> jax.Array:
    """The pixels covered by logo LOGOS[shape_index] in the square of `side` pixels with
    its top-left corner at (top, left): a ring (radii 0.55 to 1 of the half side), a cross
    (arms 0.6 of the side wide) or three horizontal bars (a fifth of the side each).
    -> [height, width] bool."""
    half = side / 2
    a = (_centers(height)[:, None] - top - half) / half  # [-1, 1] across the square
    b = (_centers(width)[None, :] - left - half) / half
    box = (jnp.abs(a) <= 1) & (jnp.abs(b) <= 1)
    r = jnp.sqrt(a**2 + b**2)
    ring = (r >= 0.55) & (r <= 1)
    cross = box & ((jnp.abs(a) < 0.3) | (jnp.abs(b) < 0.3))
    bars = box & (jnp.floor((a + 1) * 2.5) % 2 == 0)
    return jnp.stack([ring, cross, bars])[shape_index]


def _lerp(u, bounds):
    return bounds[0] + u * (bounds[1] - bounds[0])


def _draw_one(u, height: int, width: int, o: dict):
    """One image's stamp from its uniform numbers u [8 + length + C + 1] (one draw for the
    whole batch compiles far faster than a key per quantity): (touched [H, W] bool,
    opacity, value [C])."""
    n = o["length"]
    # Text: its height is scale·H unless the text would be wider than the image.
    cell = jnp.minimum(_lerp(u[0], o["scale"]) * height / 7, width / (6 * n - 1))
    codes = jnp.minimum(jnp.floor(u[8 : 8 + n] * len(CHARACTERS)), len(CHARACTERS) - 1)
    top = u[1] * (height - 7 * cell)
    left = u[2] * (width - (6 * n - 1) * cell)
    text = render_text(codes.astype(jnp.int32), top, left, cell, height, width)
    # Logo: a square of side scale·min(H, W) anywhere inside the image.
    side = _lerp(u[3], o["scale"]) * min(height, width)
    shape_index = jnp.minimum(jnp.floor(u[4] * len(LOGOS)), len(LOGOS) - 1).astype(jnp.int32)
    logo = render_logo(
        shape_index, u[5] * (height - side), u[6] * (width - side), side, height, width
    )
    if o["kind"] == "text":
        touched = text
    elif o["kind"] == "logo":
        touched = logo
    elif o["kind"] == "both":
        touched = text | logo
    else:  # either: a fair coin per image
        touched = jnp.where(u[7] < 0.5, text, logo)
    opacity = _lerp(u[-1], o["opacity"])
    value = {"white": jnp.ones_like(u[8 + n : -1]), "black": jnp.zeros_like(u[8 + n : -1])}
    return touched, opacity, value.get(o["value"], u[8 + n : -1])


def watermark_stamp(key: jax.Array, shape, **options) -> Stamp:
    """The watermarks `watermark(key, x, **options)` stamps on a batch of this shape.

    Args:
      key: a PRNG key; each image's stamp is drawn from its own row of one uniform draw.
      shape: the batch's shape [B, H, W, C].
      **options: those of DEFAULTS (checked; `sigma`, `fraction`, `clip` are ignored).
    Returns:
      Stamp(touched [B, H, W] bool, alpha [B, H, W], value [B, C]).
    """
    o = check_options(options, "watermark")
    if len(shape) != 4:
        raise ConfigError(
            f"the watermark corruption needs image batches [B, H, W, C], not shape {tuple(shape)}"
        )
    b, h, w, c = (int(d) for d in shape)
    # Per image: scale, text position (2), logo side, shape, position (2), coin, the
    # characters, the value's channels and the opacity.
    u = jax.random.uniform(key, (b, 8 + o["length"] + c + 1))
    touched, opacity, value = jax.vmap(lambda row: _draw_one(row, h, w, o))(u)
    alpha = jnp.where(touched, opacity[:, None, None], 0.0).astype(jnp.float32)
    return Stamp(touched, alpha, value.astype(jnp.float32))


def watermark_mask(key: jax.Array, shape, **options) -> tuple[jax.Array, jax.Array]:
    """The mask of the draw of `watermark(key, x, **options)` for x of `shape` [B, H, W, C]:
    (touched [B, H, W] bool, alpha [B, H, W] float32, the opacity where touched)."""
    s = watermark_stamp(key, shape, **options)
    return s.touched, s.alpha


def watermark(key: jax.Array, x: jax.Array, **options) -> jax.Array:
    """Stamps a watermark on each image: x̃ = (1 − α)·x + α·v on the touched pixels
    (clipped to [0, 1]), x elsewhere; the draw is `watermark_stamp(key, x.shape, **options)`.
    [B, H, W, C] -> same shape and dtype."""
    s = watermark_stamp(key, x.shape, **options)
    alpha = s.alpha[..., None].astype(x.dtype)
    value = s.value[:, None, None, :].astype(x.dtype)
    stamped = jnp.clip((1 - alpha) * x + alpha * value, 0.0, 1.0)
    # Where α = 0 (opacity 0) the input is returned as it is, even outside [0, 1].
    return jnp.where(s.alpha[..., None] > 0, stamped, x)
