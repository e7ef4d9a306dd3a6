"""Pure per-example loss terms, the LOSSES registry (`register_loss`) and `total_loss`.

Every term is keyword-only, takes the tensors it needs by name (`x`, `x_hat`, `logits`,
`z`, ...) and ignores the rest (`**_`), and returns one value per example, shape [B].
Reconstruction terms sum over all feature axes, so that they are negative log-likelihoods
per example (up to constants) and weights such as a VAE's β mean what the papers say.
Reduction over the batch and weighting happen once, in `total_loss`.
"""

import dataclasses
import inspect
import math
import re
import zlib
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from aejax.contractive import contractive
from aejax.errors import ConfigError
from aejax.registry import resolve


def _sum_features(v: jax.Array) -> jax.Array:
    """[B, ...] -> [B]: sums every axis but the first."""
    return jnp.sum(v.reshape(v.shape[0], -1), axis=1)


def mse(*, x: jax.Array, x_hat: jax.Array, **_) -> jax.Array:
    """Squared reconstruction error summed over features: Σ_i (x̂_i − x_i)².

    This is the per-image squared error of Hinton & Salakhutdinov (2006) and, up to a
    constant, the negative log-likelihood of a unit-variance Gaussian decoder.

    Args:
      x: clean targets, [B, ...].
      x_hat: reconstructions, same shape.
    Returns:
      [B] per-example squared error.
    """
    return _sum_features(jnp.square(x_hat - x))


def bce(*, x: jax.Array, logits: jax.Array, **_) -> jax.Array:
    """Binary cross-entropy from logits, summed over features.

    −Σ_i [x_i log σ(l_i) + (1 − x_i) log(1 − σ(l_i))], computed stably from the logits l,
    for targets x in [0, 1] (a Bernoulli decoder's negative log-likelihood when x ∈ {0, 1}).

    Args:
      x: targets in [0, 1], [B, ...].
      logits: decoder outputs before the sigmoid, same shape.
    Returns:
      [B] per-example cross-entropy in nats.
    """
    return _sum_features(optax.sigmoid_binary_cross_entropy(logits, x))


_LOG_2PI = 1.8378770664093453  # log(2π)


def gaussian_nll(*, x: jax.Array, x_hat: jax.Array, variance: float = 1.0, **_) -> jax.Array:
    """Negative log-likelihood of x under N(x̂, variance·I), summed over features.

    ½ Σ_i [(x_i − x̂_i)² / v + log(2π v)] with a fixed variance v (an option:
    `config.loss_options.gaussian_nll.variance`). Unlike `mse` it keeps the constants, so
    that as a VAE's likelihood term the total is a true negative ELBO in nats (Kingma &
    Welling, 2014, "Auto-Encoding Variational Bayes", eq. 10 with a Gaussian decoder).

    Args:
      x: targets, [B, ...].
      x_hat: the decoder's means, same shape.
      variance: the fixed variance v > 0.
    Returns:
      [B] per-example negative log-likelihood in nats.
    """
    logvar = jnp.log(jnp.asarray(variance, x_hat.dtype))
    return _sum_features(0.5 * (jnp.square(x - x_hat) / variance + logvar + _LOG_2PI))


def gaussian_nll_learned(*, x: jax.Array, x_hat: jax.Array, x_logvar: jax.Array, **_):
    """Negative log-likelihood of x under N(x̂, diag(exp(s))) with a learned log-variance s.

    ½ Σ_i [(x_i − x̂_i)² e^{−s_i} + s_i + log 2π], summed over features (Kingma & Welling,
    2014). s comes from the model (`config.model.x_logvar`: "scalar" or "pixel"), so the
    decoder learns how noisy the data is; this is `gaussian_nll` with v learned, and a
    separate term so that a model without s fails at start-up rather than silently using
    a fixed variance. A per-pixel s can shrink without bound on pixels that are constant in
    the data (MNIST's borders): prefer "scalar" there.

    Args:
      x: targets, [B, ...].
      x_hat: the decoder's means, same shape.
      x_logvar: log-variances, broadcastable to x ([B, ...] as the VAE gives it).
    Returns:
      [B] per-example negative log-likelihood in nats.
    """
    x_logvar = jnp.broadcast_to(x_logvar, x.shape)
    return _sum_features(0.5 * (jnp.square(x - x_hat) * jnp.exp(-x_logvar) + x_logvar + _LOG_2PI))


def kl_normal(*, mean: jax.Array, logvar: jax.Array, **_) -> jax.Array:
    """KL(N(μ, diag σ²) ‖ N(0, I)) of a Gaussian encoder, summed over latent dimensions.

    ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), the closed form of Kingma & Welling (2014),
    Appendix B. With a likelihood term it makes the VAE's negative ELBO; its recipe weight is
    the β of β-VAE (Higgins et al., 2017, "β-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework"), e.g. "bce + 4.0*kl_normal".

    Args:
      mean: encoder means μ, [B, ...latent].
      logvar: encoder log-variances log σ², same shape.
    Returns:
      [B] per-example KL in nats.
    """
    return _sum_features(0.5 * (jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar))


def iwae_bce(
    *,
    x: jax.Array,
    logits_samples: jax.Array,
    z_samples: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    **_,
) -> jax.Array:
    """Negative importance-weighted bound of a Bernoulli VAE, from its k latent samples.

    −log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x), with z_1..z_k ~ q(z|x) = N(μ, diag σ²) and
    p(z) = N(0, I) (Burda, Grosse & Salakhutdinov, 2015, "Importance Weighted
    Autoencoders", eq. 8). As a training objective (the recipe "iwae_bce" with
    config.model.num_samples = k) it is the IWAE: a tighter bound than the ELBO, which it
    equals in expectation at k = 1 (there with a Monte-Carlo KL). Its gradient is the
    reparameterized one of the bound, whose importance weights are normalized by the
    logsumexp.

    Args:
      x: binary targets, [B, ...].
      logits_samples: decoder logits of each sample, [B, k, ...].
      z_samples: the samples, [B, k, *latent].
      mean, logvar: the encoder's μ and log σ², [B, *latent].
    Returns:
      [B] per-example bounds in nats (an upper bound on −log p(x)).
    """
    b, k = logits_samples.shape[:2]
    x_k = jnp.broadcast_to(x[:, None], logits_samples.shape)
    log_lik = -bce(x=x_k.reshape(b * k, -1), logits=logits_samples.reshape(b * k, -1))
    z = z_samples.reshape(b, k, -1)
    mean, logvar = mean.reshape(b, 1, -1), logvar.reshape(b, 1, -1)
    # log p(z) − log q(z|x); the log 2π of the two Gaussians cancel.
    log_prior_over_q = 0.5 * jnp.sum(
        jnp.square(z - mean) * jnp.exp(-logvar) + logvar - jnp.square(z), axis=-1
    )
    log_w = log_lik.reshape(b, k) + log_prior_over_q
    return jnp.log(k) - jax.nn.logsumexp(log_w, axis=1)


def l1_activity(*, z: jax.Array, **_) -> jax.Array:
    """L1 activity penalty of a sparse autoencoder: Σ_j |z_j| over the code units.

    The sparsity regularizer of e.g. Goodfellow, Bengio & Courville (2016), "Deep Learning",
    §14.2.1, Ω(h) = λ Σ_j |h_j|; the λ is the recipe weight ("mse + 1e-3*l1_activity").

    Args:
      z: codes, [B, ...].
    Returns:
      [B] per-example L1 norms of the code.
    """
    return _sum_features(jnp.abs(z))


def kl_sparsity(*, z: jax.Array, rho: float = 0.05, eps: float = 1e-6, **_) -> jax.Array:
    """KL sparsity penalty of a sparse autoencoder: Σ_j KL(ρ ‖ ρ̂_j).

    KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), with ρ̂_j the mean activation
    of code unit j over the batch (Ng, 2011, "Sparse autoencoder", CS294A lecture notes,
    §2.3); the recipe weight is Ng's β. The code units must be in (0, 1) (a sigmoid code);
    ρ̂ is clipped to [eps, 1 − eps] so that a dead or saturated unit gives a large but finite
    penalty. Options: `config.loss_options.kl_sparsity.rho` (the target rate) and `.eps`.

    Args:
      z: codes in (0, 1), [B, ...].
      rho: the target mean activation ρ, in (0, 1).
      eps: the clipping margin of ρ̂.
    Returns:
      [B]: the batch-level penalty repeated for every example, so that the batch mean that
      `total_loss` takes is the penalty itself.
    """
    rho_hat = jnp.clip(jnp.mean(z.reshape(z.shape[0], -1), axis=0), eps, 1.0 - eps)
    kl = rho * jnp.log(rho / rho_hat) + (1.0 - rho) * jnp.log((1.0 - rho) / (1.0 - rho_hat))
    return jnp.broadcast_to(jnp.sum(kl), z.shape[:1])


def adv_discriminator(*, d_real: jax.Array, d_fake: jax.Array, **_) -> jax.Array:
    """The adversarial autoencoder's discriminator loss: −log D(z') − log(1 − D(z)).

    D = σ(logit) is the discriminator's probability that a code came from the prior; z' is
    a prior sample, z = q(x) the encoder's code (Makhzani et al., 2015, "Adversarial
    Autoencoders", §2; Goodfellow et al., 2014). Computed stably from logits:
    softplus(−l') + softplus(l). In the AAE's config it updates only the discriminator.

    Args:
      d_real: discriminator logits on prior samples, [B].
      d_fake: discriminator logits on the codes of the batch, [B].
    Returns:
      [B] per-example binary cross-entropies in nats.
    """
    return jax.nn.softplus(-d_real) + jax.nn.softplus(d_fake)


def adv_generator(*, d_fake: jax.Array, **_) -> jax.Array:
    """The adversarial autoencoder's generator (encoder) loss: −log D(z), z = q(x).

    The non-saturating form of Goodfellow et al. (2014), as used for the AAE's
    regularization phase (Makhzani et al., 2015): the encoder is updated to make the
    discriminator take its codes for prior samples. Computed as softplus(−l).

    Args:
      d_fake: discriminator logits on the codes of the batch, [B].
    Returns:
      [B] per-example losses in nats.
    """
    return jax.nn.softplus(-d_fake)


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
    """

    fn: Callable[..., jax.Array]
    batch: bool = False
    domains: Mapping[str, tuple[Callable[[float], bool], str]] = dataclasses.field(
        default_factory=dict
    )

    def __call__(self, **kwargs) -> jax.Array:
        return self.fn(**kwargs)


def loss_term(*, batch: bool = False, domains=None):
    """Declares what a term is, where it is defined, for `register_loss` and for terms named
    as `module:function` in a recipe:

        @loss_term(batch=True, domains={"bandwidth": (lambda v: v > 0, "> 0")})
        def mmd(*, z, key, bandwidth=1.0, **_): ...
    """

    def declare(fn):
        fn.aejax_term = Term(fn, batch, dict(domains or {}))
        return fn

    return declare


LOSSES: dict[str, Term] = {}


def register_loss(name: str, fn=None, *, batch: bool | None = None, domains=None):
    """Adds a loss term to LOSSES, from your own code (aejax is not edited).

    Use as `register_loss("code_l2", fn)` or as a decorator `@register_loss("code_l2")`. The
    term follows the conventions of this module: keyword-only tensors by name (`x`, `x_hat`,
    `z`, ..., and `key`, a PRNG key of its own for terms that draw random numbers), `**_`
    for the rest, one value per example ([B]). `batch` and `domains` are as in `Term`;
    unset, they are read from the function's `loss_term` declaration. Recipes then name it
    like any other term. A recipe can also name a term as `module:function` (a module on
    the Python path), which imports and registers it when the config is read, so a script
    run needs no registration code.
    """

    def add(fn):
        if not callable(fn):
            raise ConfigError(f"loss term {name!r} must be a function, not {type(fn).__name__}")
        declared = getattr(fn, "aejax_term", Term(fn))
        term = Term(
            fn,
            declared.batch if batch is None else batch,
            declared.domains if domains is None else dict(domains),
        )
        if name in LOSSES and LOSSES[name].fn is not fn:
            raise ConfigError(f"a loss term named {name!r} is registered already")
        LOSSES[name] = term
        return fn

    return add if fn is None else add(fn)


register_loss("mse", mse)
register_loss("bce", bce)
register_loss("gaussian_nll", gaussian_nll, domains={"variance": (lambda v: v > 0.0, "> 0")})
register_loss("gaussian_nll_learned", gaussian_nll_learned)
register_loss("kl_normal", kl_normal)
register_loss("iwae_bce", iwae_bce)
register_loss("l1_activity", l1_activity)
register_loss(
    "kl_sparsity",
    kl_sparsity,
    batch=True,
    domains={
        "rho": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
        "eps": (lambda v: 0.0 < v < 0.5, "in (0, 0.5)"),
    },
)
register_loss("contractive", contractive)
register_loss("adv_discriminator", adv_discriminator)
register_loss("adv_generator", adv_generator)


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
