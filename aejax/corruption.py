"""Pure input corruptions for denoising autoencoders: functions of (key, x, **params).

Each takes a PRNG key and the whole batch x [B, ...] and returns an array of x's shape
and dtype; the loss still compares with the clean x. They receive the config's levels as
keywords (`sigma`, `fraction`) and ignore what they do not use (`**_`). Your own: a
function named in the config as `module:function`, or `register_corruption(name, fn)`.
Any other field of `config.corruption` is an option of the named corruption, passed as a
keyword too (the watermark's `opacity`, `scale`, `kind`, `value`, `length`), and checked
before training by the `options` function registered with it.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from aejax import color
from aejax import watermark as watermark_lib
from aejax.errors import ConfigError
from aejax.registry import add, resolve


def none(key: jax.Array, x: jax.Array, **_) -> jax.Array:
    """The identity: no corruption."""
    del key
    return x


def gaussian(key: jax.Array, x: jax.Array, *, sigma: float, clip: bool = False, **_) -> jax.Array:
    """Additive isotropic Gaussian noise: x + σ·ε, ε ~ N(0, I) (Vincent et al., 2010).

    With `clip` (`config.corruption.clip`) the result is clipped to [0, 1], the pixel
    range, as Keras' denoising tutorial does: `np.clip(x + 0.5 * noise, 0, 1)`.
    [B, ...] -> same shape and dtype.
    """
    noisy = x + sigma * jax.random.normal(key, x.shape, x.dtype)
    return jnp.clip(noisy, 0.0, 1.0) if clip else noisy


def masking(key: jax.Array, x: jax.Array, *, fraction: float, **_) -> jax.Array:
    """Masking noise: each entry is set to 0 independently with probability `fraction`."""
    keep = jax.random.bernoulli(key, 1.0 - fraction, x.shape)
    return jnp.where(keep, x, jnp.zeros_like(x))


def salt_and_pepper(key: jax.Array, x: jax.Array, *, fraction: float, **_) -> jax.Array:
    """Salt-and-pepper noise: each entry is, with probability `fraction`, set to 0 or 1
    with equal probability (Vincent et al., 2010)."""
    k_hit, k_value = jax.random.split(key)
    hit = jax.random.bernoulli(k_hit, fraction, x.shape)
    value = jax.random.bernoulli(k_value, 0.5, x.shape).astype(x.dtype)
    return jnp.where(hit, value, x)


def grayscale(key: jax.Array, x: jax.Array, **_) -> jax.Array:
    """RGB images turned into their BT.601 luminance, Y = 0.299 R + 0.587 G + 0.114 B,
    replicated over the 3 channels, so that a colorization autoencoder's input and output
    have one shape. Deterministic (the key is unused). [B, H, W, 3] -> same shape and dtype.
    """
    del key
    if x.shape[-1] != 3:
        raise ConfigError(
            f"config.corruption.name='grayscale' needs RGB images (3 channels last); the "
            f"data has examples of shape {tuple(x.shape[1:])}"
        )
    return jnp.broadcast_to(color.luminance(x), x.shape).astype(x.dtype)


CORRUPTIONS: dict[str, Callable[..., jax.Array]] = {
    "none": none,
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
    "grayscale": grayscale,
}
# The level each built-in corruption reads (a level of 0 would leave the input unchanged).
LEVELS = {"gaussian": "sigma", "masking": "fraction", "salt_and_pepper": "fraction"}
# The built-ins above take no options of their own (config.corruption.<field> is refused).
_NO_OPTIONS = frozenset(CORRUPTIONS)
# The fields of config.corruption every corruption gets; the others are its own options.
COMMON_FIELDS = ("name", "sigma", "fraction", "clip")
# Corruption name -> `check(options, where) -> options`, which raises ConfigError.
OPTION_CHECKS: dict[str, Callable[[dict, str], dict]] = {}


def register_corruption(
    name: str,
    fn: Callable[..., jax.Array] | None = None,
    *,
    options: Callable[[dict, str], dict] | None = None,
):
    """Adds a corruption `fn(key, x, *, sigma, fraction, **_)` under `name` (also as a
    decorator, `@register_corruption("stamp")`); configs then name it in
    `config.corruption.name`. `options(fields, where)`, if given, checks the corruption's
    own fields of config.corruption (a dict of them) and returns them with its defaults
    filled in, raising a one-line ConfigError that names `where.<field>`."""

    def _add(f):
        add(CORRUPTIONS, name, f, "corruption")
        if options is not None:
            OPTION_CHECKS[name] = options
        return f

    return _add if fn is None else _add(fn)


register_corruption("watermark", watermark_lib.watermark, options=watermark_lib.check_options)


def get(name: str, where: str = "config.corruption.name") -> Callable[..., jax.Array]:
    """The corruption called `name` (registered, or `module:function`)."""
    return resolve(CORRUPTIONS, name, what="corruption", where=where)


def get_corruption(config) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Builds `corrupt(key, x)` from `config.corruption` (name, sigma, fraction, and the
    named corruption's own options)."""
    name = config.name
    fn = get(name)
    if config.sigma < 0:
        raise ConfigError(f"config.corruption.sigma={config.sigma} must be >= 0")
    if not 0.0 <= config.fraction <= 1.0:
        raise ConfigError(f"config.corruption.fraction={config.fraction} must be in [0, 1]")
    level = LEVELS.get(name)
    if level and config[level] == 0:  # a denoising AE fed clean inputs, silently
        raise ConfigError(
            f"config.corruption.name={name!r} with config.corruption.{level}=0 leaves the "
            f"input unchanged; set {level} > 0, or name='none'"
        )
    clip = config.get("clip", False)
    if not isinstance(clip, bool):
        raise ConfigError(f"config.corruption.clip={clip!r} must be true or false")
    sigma, fraction = float(config.sigma), float(config.fraction)
    extra = {k: config[k] for k in config.keys() if k not in COMMON_FIELDS}
    if name in OPTION_CHECKS:
        extra = OPTION_CHECKS[name](extra, "config.corruption")
    elif extra and name in _NO_OPTIONS:
        first = sorted(extra)[0]
        raise ConfigError(
            f"config.corruption.{first}={extra[first]!r} is not an option of the {name!r} "
            "corruption"
        )
    if clip:
        # Only gaussian takes it: the others keep [0, 1] data in [0, 1] already, and a
        # corruption of the user's would ignore it silently (its **_).
        if name != "gaussian":
            raise ConfigError(
                f"config.corruption.clip=True applies to the gaussian corruption, not {name!r}"
            )
        return lambda key, x: fn(key, x, sigma=sigma, fraction=fraction, clip=True)
    if extra:  # the options of the named corruption (the option-less built-ins refused them)
        return lambda key, x: fn(key, x, sigma=sigma, fraction=fraction, **extra)
    return lambda key, x: fn(key, x, sigma=sigma, fraction=fraction)
