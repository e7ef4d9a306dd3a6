"""Loss terms: the LOSSES registry (`register_loss`), recipes and `total_loss`.

A recipe such as "bce + 0.5*kl_normal" names registered terms (the built-ins of
`aejax.losses.terms`, the exact `contractive` penalty, or your own as `module:function`)
with their weights. Each term is a pure function of tensors by name returning one value
per example, shape [B]; reduction over the batch and weighting happen once, in
`total_loss`. What a term is (computed over the whole batch; the domains of its options)
is declared where it is defined (`loss_term`) or registered (`register_loss`), never in a
side table.
"""

import dataclasses
import inspect
import math
import re
import zlib
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from aejax.contractive import contractive
from aejax.errors import ConfigError
from aejax.losses import builtin
from aejax.losses.terms import (
    adv_discriminator,
    adv_generator,
    bce,
    bce_mean,
    gaussian_nll,
    gaussian_nll_learned,
    iwae_bce,
    kl_normal,
    kl_sample,
    kl_sparsity,
    l1_activity,
    mse,
    mse_mean,
)
from aejax.losses.vmf import kl_vmf
from aejax.losses.vq import vq_codebook, vq_commitment, vq_perplexity, vq_usage
from aejax.registry import resolve

__all__ = [
    "LOSSES",
    "Term",
    "adv_discriminator",
    "adv_generator",
    "bce",
    "bce_mean",
    "contractive",
    "gaussian_nll",
    "gaussian_nll_learned",
    "get_loss",
    "get_term",
    "is_batch_term",
    "iwae_bce",
    "kl_normal",
    "kl_sample",
    "kl_sparsity",
    "kl_vmf",
    "l1_activity",
    "loss_term",
    "loss_units",
    "mse",
    "mse_mean",
    "parse_recipe",
    "per_example_terms",
    "register_loss",
    "term_key",
    "term_options",
    "total_loss",
    "vq_codebook",
    "vq_commitment",
    "vq_perplexity",
    "vq_usage",
]


@dataclasses.dataclass(frozen=True)
class Term:
    """A registered loss term: the function and what it declares about itself.

    Attributes:
      fn: the pure term, keyword-only tensors by name, returning [B].
      batch: True when the value is computed over the whole batch rather than per example
        (a mean activation, a kernel between codes); the trainer refuses such terms under
        `pmap` on several devices, where each device would see only its share.
      domains: option name -> (test, description) of the values it accepts (outside them
        the loss would be NaN); `term_options` checks them before training.
      features: how a reconstruction term reduces over an example's features, "sum" or
        "mean" (None for terms of other tensors): the units `loss_units` prints.
    """

    fn: Callable[..., jax.Array]
    batch: bool = False
    domains: Mapping[str, tuple[Callable[[float], bool], str]] = dataclasses.field(
        default_factory=dict
    )
    features: str | None = None

    def __call__(self, **kwargs) -> jax.Array:
        return self.fn(**kwargs)


def loss_term(*, batch: bool = False, domains=None, features: str | None = None):
    """Declares what a term is, where it is defined, for `register_loss` and for terms named
    as `module:function` in a recipe (`features`: "sum" or "mean" for a reconstruction
    term, the units the progress lines state):

        @loss_term(batch=True, domains={"bandwidth": (lambda v: v > 0, "> 0")})
        def mmd(*, z, key, bandwidth=1.0, **_): ...
    """

    def declare(fn):
        fn.aejax_term = Term(fn, batch, dict(domains or {}), features)
        return fn

    return declare


LOSSES: dict[str, Term] = {}


def _check_signature(name: str, fn) -> None:
    """A term takes its tensors by keyword: every parameter keyword-only or `**_`."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin such as os.getcwd
        params = None
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
    bad = (
        params is None
        or not any(p.kind in keyword for p in params)
        or any(
            p.kind not in keyword
            and not (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)
            for p in params
        )
    )
    if bad:
        raise ConfigError(
            f"{name!r} is not a loss term: a term takes tensors by keyword, "
            "def term(*, x, x_hat, ..., **_), and returns one value per example"
        )


def register_loss(
    name: str, fn=None, *, batch: bool | None = None, domains=None, features: str | None = None
):
    """Adds a loss term to LOSSES, from your own code (aejax is not edited).

    Use as `register_loss("code_sq", fn)` or as a decorator `@register_loss("code_sq")`. The
    term follows the conventions of this module: keyword-only tensors by name (`x`, `x_hat`,
    `z`, ..., and `key`, a PRNG key of its own for terms that draw random numbers), `**_`
    for the rest, one value per example ([B]). `batch` and `domains` are as in `Term`;
    unset, they are read from the function's `loss_term` declaration; so is `features`,
    the reduction over features that the progress lines state. Recipes then name it
    like any other term. A recipe can also name a term as `module:function` (a module on
    the Python path), which imports and registers it when the config is read, so a script
    run needs no registration code.
    """

    def add(fn):
        if not callable(fn):
            raise ConfigError(f"loss term {name!r} must be a function, not {type(fn).__name__}")
        _check_signature(name, fn)
        declared = getattr(fn, "aejax_term", Term(fn))
        reduction = features if features is not None else declared.features
        if reduction not in (None, "sum", "mean"):
            raise ConfigError(f"loss term {name!r}: features={reduction!r} must be 'sum' or 'mean'")
        term = Term(
            fn,
            declared.batch if batch is None else batch,
            declared.domains if domains is None else dict(domains),
            reduction,
        )
        if name in LOSSES and LOSSES[name].fn is not fn:
            raise ConfigError(f"a loss term named {name!r} is registered already")
        LOSSES[name] = term
        return fn

    return add if fn is None else add(fn)


# Every built-in term, registered where their table is (aejax.losses.builtin).
builtin.register_all(register_loss)


def get_term(name: str, where: str = "config.loss") -> Term:
    """The registered term `name` (or `module:function`, imported); ConfigError listing the
    valid names otherwise."""
    return resolve(LOSSES, name, what="loss term", where=where, register=register_loss)


def get_loss(name: str, where: str = "config.loss") -> Callable[..., jax.Array]:
    """The function of the loss term called `name` (see `get_term`)."""
    return get_term(name, where).fn


def is_batch_term(name: str) -> bool:
    """Whether the term `name` computes over the whole batch (see `Term.batch`)."""
    return get_term(name).batch


def required_inputs(term: Callable[..., jax.Array]) -> tuple[str, ...]:
    """The keyword-only arguments without defaults that `term` needs (its tensors; options
    such as a target rate have defaults)."""
    params = inspect.signature(term).parameters.values()
    return tuple(
        p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    )


_TERM = re.compile(r"^\s*(?:(?P<w>[0-9.eE+-]+)\s*\*\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_.:]*)\s*$")
# A '+' joins terms unless it is a number's exponent sign ("1e+3*mse").
_JOIN = re.compile(r"(?<![0-9.][eE])\+")


def parse_recipe(recipe: str, where: str = "config.loss") -> dict[str, float]:
    """Parses a loss recipe such as "bce + 0.5*kl_normal" into {"bce": 1.0, "kl_normal": 0.5}.

    Every name must be a registered term (or `module:function`); weights are plain numbers
    ("1e+3*mse" too: a '+' inside a number's exponent does not split terms). Raises
    ConfigError.
    """
    weights: dict[str, float] = {}
    if not isinstance(recipe, str) or not recipe.strip():
        raise ConfigError(f"{where}={recipe!r} must be a recipe such as 'mse' or 'bce + 0.1*l1'")
    for part in _JOIN.split(recipe):
        m = _TERM.match(part)
        if m is None:
            raise ConfigError(
                f"{where}={recipe!r}: cannot read {part.strip()!r}; write terms as 'name' or "
                "'weight*name' joined by '+'"
            )
        name = m["name"]
        try:
            w = float(m["w"]) if m["w"] else 1.0
        except ValueError:
            raise ConfigError(f"{where}={recipe!r}: {m['w']!r} is not a number") from None
        if not math.isfinite(w):
            raise ConfigError(f"{where}={recipe!r}: the weight of {name!r} is not finite")
        get_term(name, where)
        if name in weights:
            raise ConfigError(f"{where}={recipe!r} names {name!r} twice")
        weights[name] = w
    return weights


def loss_units(weights: Mapping[str, float], num_features: int) -> str:
    """What one unit of the logged loss is, for the progress lines: every loss is a batch
    mean of per-example values, and each reconstruction term either sums or averages over
    the example's features (`Term.features`). E.g. "per example; bce summed over 784
    features" or "per example; bce_mean averaged over 784 features"."""
    by = {"sum": [], "mean": []}
    for name in weights:
        reduction = get_term(name).features
        if reduction in by:
            by[reduction].append(name)
    parts = [
        f"{', '.join(names)} {verb} over {num_features} features"
        for names, verb in ((by["sum"], "summed"), (by["mean"], "averaged"))
        if names
    ]
    return "; ".join(["per example", *parts])


def check_inputs(weights: Mapping[str, float], available: set[str], where: str = "config.loss"):
    """Raises ConfigError if a term of `weights` needs a tensor that is not `available`."""
    for name in weights:
        missing = [k for k in required_inputs(get_loss(name, where)) if k not in available]
        if missing:
            raise ConfigError(
                f"{where}: term {name!r} needs {', '.join(missing)}, which this model does not "
                f"provide (it provides {', '.join(sorted(available))})"
            )


def term_key(key: jax.Array, name: str) -> jax.Array:
    """The key of term `name` (`key` folded with a hash of the name): terms that draw get
    independent numbers, and adding a term changes no other term's draws."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def per_example_terms(
    weights: Mapping[str, float], options: Mapping[str, Mapping] | None, tensors: Mapping
) -> dict[str, jax.Array]:
    """Each term of `weights` on `tensors`: name -> [B]. A term that asks for `key` gets
    its own (`term_key` of tensors["key"])."""
    check_inputs(weights, set(tensors))
    options = options or {}
    out = {}
    for name in weights:
        fn = get_loss(name)
        args = dict(tensors)
        if "key" in args and "key" in inspect.signature(fn).parameters:
            args["key"] = term_key(args["key"], name)
        out[name] = fn(**args, **options.get(name, {}))
    return out


def total_loss(
    weights: Mapping[str, float],
    options: Mapping[str, Mapping] | None = None,
    **tensors: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Weighted sum of loss terms, averaged over the batch.

    Args:
      weights: term name -> weight, e.g. from `parse_recipe`.
      options: term name -> extra keyword arguments of that term (e.g. {"kl_sparsity":
        {"rho": 0.05}}), from `config.loss_options`.
      **tensors: everything the terms may need: x (clean input, [B, ...]), x_in (the
        corrupted input the model saw), x_hat, logits, z, encode (the encoder as a function
        of x), key (the step's key for terms that draw), ... Each term picks what it needs
        by keyword.
    Returns:
      (total, metrics): the scalar loss Σ_t w_t · mean_b term_t[b], and a dict with each
      term's unweighted batch mean under its own name plus "loss" for the total.
    """
    metrics = {}
    total = jnp.zeros((), jnp.float32)
    for name, per_example in per_example_terms(weights, options, tensors).items():
        value = jnp.mean(per_example)
        metrics[name] = value
        total = total + weights[name] * value
    metrics["loss"] = total
    return total, metrics


def term_options(config_options, weights: Mapping[str, float]) -> dict[str, dict]:
    """`config.loss_options` as plain dicts, checked against the recipe and the terms.

    Raises ConfigError for options of a term that is not in the recipe, an option the term
    does not take, or a value outside its declared domain (`Term.domains`).
    """
    out = {}
    for name, opts in (config_options or {}).items():
        opts = dict(opts)
        if name not in weights:
            if name in LOSSES:
                continue  # options of a term the recipe does not use: harmless defaults
            raise ConfigError(f"config.loss_options.{name}: {name!r} is not a known loss term")
        term = get_term(name)
        params = inspect.signature(term.fn).parameters
        for key in opts:
            if key not in params or params[key].kind is not params[key].KEYWORD_ONLY:
                raise ConfigError(
                    f"config.loss_options.{name}.{key}: term {name!r} takes no option {key!r}"
                )
            test, domain = term.domains.get(key, (None, ""))
            value = opts[key]
            if test and not (isinstance(value, int | float) and not isinstance(value, bool)):
                raise ConfigError(f"config.loss_options.{name}.{key}={value!r} must be a number")
            if test and not test(value):
                raise ConfigError(f"config.loss_options.{name}.{key}={value!r} must be {domain}")
        out[name] = opts
    return out
