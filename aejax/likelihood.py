"""Bounds on a VAE's log-likelihood log p(x): the ELBO and the importance-weighted bound.

For a model with a Gaussian latent (`VAE`, model names "vae" and "conv_vae"), prior
p(z) = N(0, I), encoder q(z|x) = N(μ(x), diag σ²(x)) and a decoder likelihood p(x|z) named by
the run's loss recipe ("bce", "gaussian_nll" or "gaussian_nll_learned"):

- `elbo`: log p(x|z) − KL(q(z|x) ‖ p(z)), one z per example, with the closed-form KL
  (Kingma & Welling, 2014, eq. 10);
- `iwae_bound`: log (1/k) Σ_j p(x, z_j) / q(z_j|x) with z_1..z_k ~ q(z|x) (Burda, Grosse &
  Salakhutdinov, 2015, "Importance Weighted Autoencoders", eq. 8). It is a lower bound on
  log p(x) that does not decrease with k (their Theorem 1) and tends to log p(x).

Both are in nats per example. The bound is on the *model's* log p(x): the recipe's weights
are ignored, so a β-VAE's ELBO here is the β = 1 ELBO. With "bce" on data that are not
binary (grey-level MNIST) the Bernoulli "likelihood" is not a normalized density, so the
numbers compare with the run's test/loss but are not true log-likelihoods; binarized data
(`data.source="binarized_mnist"`) gives true ones.

Randomness (the same key always gives the same numbers):

    key_i  = fold_in(key, i)        i: the example's index (its row in the split)
    ε_ij   = normal(fold_in(key_i, j), latent_shape)      j = 0 .. k−1
    z_ij   = μ_i + σ_i · ε_ij

So each sample depends only on (key, i, j): not on the batch the example is in, the batch
size, nor the chunk size of the IWAE loop; the ELBO uses sample j = 0, the first of the
IWAE samples, so `iwae_bound(k=1)` is the ELBO with a Monte-Carlo KL on the same z.

The pure cores `elbo_from_fns` and `iwae_from_fns` take the encoder and the decoder's
log-likelihood as plain functions, so they can be checked without flax modules.
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import losses
from aejax.errors import ConfigError
from aejax.models import interface

# Loss terms that are a decoder's negative log-likelihood in nats, constants included.
LIKELIHOOD_TERMS = ("bce", "gaussian_nll", "gaussian_nll_learned")
# Loss terms that are a whole bound on −log p(x), by the likelihood term they use.
BOUND_TERMS = {"iwae_bce": "bce"}

# Samples decoded at once per example by the IWAE loop. Memory is O(batch·chunk·D): with
# the host helper's batch of 100, 10⁴ decoder rows (31 MB of MNIST logits). On a 2-core CPU
# chunks of 20 to 100 ran at the same speed for the MNIST VAE.
DEFAULT_CHUNK = 100

_LOG_2PI = math.log(2.0 * math.pi)

EncodeFn = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikFn = Callable[[jax.Array, jax.Array], jax.Array]


# --- the likelihood of a run ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """A decoder likelihood p(x|z): a loss term of `aejax.losses`, negated.

    Hashable (a static argument of the jitted bounds).

    Attributes:
      term: "bce" (Bernoulli from the logits), "gaussian_nll" (fixed variance) or
        "gaussian_nll_learned" (the model's learned `x_logvar`).
      options: the term's options as sorted (name, value) pairs, e.g. (("variance", 0.1),).
    """

    term: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def needs_x_logvar(self) -> bool:
        return self.term == "gaussian_nll_learned"

    def log_prob(
        self,
        x: jax.Array,
        *,
        x_hat: jax.Array | None = None,
        logits: jax.Array | None = None,
        x_logvar: jax.Array | None = None,
    ) -> jax.Array:
        """log p(x|z) per example, in nats, from the decoder's outputs.

        Every array is flattened to [N, D] first. The terms sum over the features anyway, but
        XLA:CPU vectorizes elementwise loops along the last axis, which is 1 for images
        shaped [N, H, W, 1]: flattened, the MNIST VAE's IWAE loop ran 2× faster with "bce"
        and 3× with "gaussian_nll" (2-core CPU).

        Args:
          x: data, [N, ...].
          x_hat: decoder means, [N, ...] (Gaussian terms).
          logits: decoder pre-activations, [N, ...] ("bce").
          x_logvar: log-variances broadcastable to x ("gaussian_nll_learned").
        Returns:
          [N] log-likelihoods (the negated loss term).
        """
        n = x.shape[0]
        flat = lambda a: None if a is None else a.reshape(n, -1)
        if x_logvar is not None:
            x_logvar = jnp.broadcast_to(x_logvar, x.shape)
        nll = losses.get_loss(self.term)(
            x=flat(x),
            x_hat=flat(x_hat),
            logits=flat(logits),
            x_logvar=flat(x_logvar),
            **dict(self.options),
        )
        return -nll


def get_likelihood(
    recipe: str | Mapping[str, float],
    options: Mapping[str, Mapping] | None = None,
    where: str = "config.loss",
) -> Likelihood:
    """The likelihood named by a loss recipe, e.g. "bce + kl_normal" -> Bernoulli.

    Args:
      recipe: a recipe string, or its parsed weights (`Experiment.weights`); a bound term
        such as "iwae_bce" names its likelihood ("bce").
      options: `config.loss_options` (or `Experiment.options`): the variance of
        "gaussian_nll" is read from it.
      where: the config field named in error messages.
    Returns:
      A `Likelihood`.
    Raises:
      ConfigError: the recipe has no likelihood term in nats (e.g. "mse + kl_normal": mse
        drops the Gaussian's normalizing constants), several, or a bad variance.
    """
    weights = losses.parse_recipe(recipe, where) if isinstance(recipe, str) else dict(recipe)
    found = [name for name in weights if name in LIKELIHOOD_TERMS or name in BOUND_TERMS]
    if len(found) != 1:
        problem = "has none" if not found else f"has several ({', '.join(found)})"
        raise ConfigError(
            f"{where}={recipe!r}: a bound on log p(x) needs exactly one likelihood term in nats "
            f"({', '.join(LIKELIHOOD_TERMS)}) or bound term ({', '.join(BOUND_TERMS)}); the "
            f"recipe {problem}. Terms such as mse are "
            "losses without the normalizing constants, not log-densities."
        )
    term = BOUND_TERMS.get(found[0], found[0])
    opts = losses.term_options(options, weights).get(term, {})  # checks the variance
    if term == "gaussian_nll":
        opts = {**opts, "variance": float(opts.get("variance", 1.0))}
    return Likelihood(term, tuple(sorted(opts.items())))


def _as_likelihood(likelihood) -> Likelihood:
    # A bare recipe string gets the terms' default options (gaussian_nll's variance 1.0);
    # a run's bounds need its options: get_likelihood(config.loss, config.loss_options).
    return likelihood if isinstance(likelihood, Likelihood) else get_likelihood(likelihood)


# --- Gaussian log densities and the samples ------------------------------------------------


def _sum_trailing(v: jax.Array, n_lead: int) -> jax.Array:
    """Sums every axis after the first `n_lead`."""
    return jnp.sum(v, axis=tuple(range(n_lead, v.ndim)))


def log_standard_normal(z: jax.Array, n_lead: int = 1) -> jax.Array:
    """log N(z; 0, I), summed over the latent axes (all after the first `n_lead`), in nats."""
    return _sum_trailing(-0.5 * (jnp.square(z) + _LOG_2PI), n_lead)


def example_keys(key: jax.Array, indices: jax.Array) -> jax.Array:
    """Per-example keys fold_in(key, i) for the example indices i, [B]."""
    return jax.vmap(jax.random.fold_in, (None, 0))(key, indices)


def sample_noise(keys: jax.Array, samples: jax.Array, latent_shape, dtype=jnp.float32):
    """ε_ij = normal(fold_in(keys[i], samples[j]), latent_shape).

    Args:
      keys: [B] per-example keys (`example_keys`).
      samples: [C] sample numbers j.
    Returns:
      [B, C, *latent_shape] standard normal noise; entry (i, j) depends only on
      (keys[i], samples[j]).
    """

    def one(k, j):
        return jax.random.normal(jax.random.fold_in(k, j), tuple(latent_shape), dtype)

    return jax.vmap(lambda k: jax.vmap(lambda j: one(k, j))(samples))(keys)


# --- the pure bounds -----------------------------------------------------------------------


def elbo_from_fns(encode_fn: EncodeFn, log_lik_fn: LogLikFn, x: jax.Array, keys: jax.Array):
    """The ELBO with one sample z = μ + σ·ε_{i0} and the closed-form KL.

    Args:
      encode_fn: x [B, ...] -> (mean, logvar), each [B, *latent_shape].
      log_lik_fn: (x [B, ...], z [B, *latent_shape]) -> log p(x|z) [B].
      x: [B, ...] data.
      keys: [B] per-example keys.
    Returns:
      (log p(x|z), KL(q(z|x) ‖ p(z))), each [B], in nats; the ELBO is their difference.
    """
    mean, logvar = encode_fn(x)
    eps = sample_noise(keys, jnp.zeros((1,), jnp.int32), mean.shape[1:], mean.dtype)[:, 0]
    z = mean + jnp.exp(0.5 * logvar) * eps
    return log_lik_fn(x, z), losses.kl_normal(mean=mean, logvar=logvar)


def iwae_from_fns(
    encode_fn: EncodeFn,
    log_lik_fn: LogLikFn,
    x: jax.Array,
    keys: jax.Array,
    k: int | jax.Array,
    chunk: int = DEFAULT_CHUNK,
) -> jax.Array:
    """The importance-weighted bound log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x) (Burda et al., 2015).

    The k samples are drawn and decoded `chunk` at a time in a loop that keeps a running
    logsumexp, so memory is O(B·chunk·D) whatever k is. Sample j of example i uses
    fold_in(keys[i], j) (see `sample_noise`), so the result does not depend on `chunk`; when
    chunk does not divide k, the last chunk's surplus samples get weight zero. k may be a
    traced integer (the loop's trip count is dynamic), so one compilation serves every k.

    Args:
      encode_fn: x [B, ...] -> (mean, logvar), each [B, *latent_shape].
      log_lik_fn: (x [B, ...], z [B, *latent_shape]) -> log p(x|z) [B]; vmapped over
        the chunk's samples.
      x: [B, ...] data.
      keys: [B] per-example keys.
      k: the number of importance samples, ≥ 1 (a Python int or an int32 scalar).
      chunk: samples per decoder call (a Python int ≥ 1; min(chunk, k) when k is an int;
        a traced k smaller than chunk still decodes a whole chunk).
    Returns:
      [B] bounds in nats.
    """
    mean, logvar = encode_fn(x)
    latent_shape = mean.shape[1:]
    if isinstance(k, int):
        chunk = min(chunk, k)
    k = jnp.asarray(k, jnp.int32)
    std = jnp.exp(0.5 * logvar)[:, None]
    log_q_const = -0.5 * (_sum_trailing(logvar, 1) + math.prod(latent_shape) * _LOG_2PI)
    # The decoder sees the chunk's samples as one batch of B·chunk codes: vmap over the sample
    # axis adds rows to its matrix multiplies without repeating x in memory.
    log_lik_chunk = jax.vmap(log_lik_fn, in_axes=(None, 1), out_axes=1)

    def body(c, total):
        samples = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        eps = sample_noise(keys, samples, latent_shape, mean.dtype)  # [B, chunk, *latent]
        z = mean[:, None] + std * eps
        # log q(z|x) from ε: (z − μ)²/σ² is ε² exactly.
        log_q = log_q_const[:, None] - 0.5 * _sum_trailing(jnp.square(eps), 2)
        log_w = log_lik_chunk(x, z) + log_standard_normal(z, 2) - log_q
        log_w = jnp.where(samples < k, log_w, -jnp.inf)
        return jnp.logaddexp(total, jax.nn.logsumexp(log_w, axis=1))

    init = jnp.full((x.shape[0],), -jnp.inf, mean.dtype)
    total = jax.lax.fori_loop(0, (k + chunk - 1) // chunk, body, init)
    return total - jnp.log(k.astype(mean.dtype))


# --- a flax VAE ----------------------------------------------------------------------------


def _model_fns(model, variables, likelihood: Likelihood) -> tuple[EncodeFn, LogLikFn]:
    """The model's encoder and decoder log-likelihood as plain functions (eval mode)."""

    def encode_fn(x):
        return model.apply(variables, x, method="encode_gaussian")

    def log_lik_fn(x, z):
        x_hat, logits = model.apply(variables, z, method="decode")
        x_logvar = variables["params"]["x_logvar"] if likelihood.needs_x_logvar else None
        return likelihood.log_prob(x, x_hat=x_hat, logits=logits, x_logvar=x_logvar)

    return encode_fn, log_lik_fn


def check_model(model, variables, likelihood) -> Likelihood:
    """Raises ConfigError unless `model` has a Gaussian latent and what `likelihood` needs."""
    likelihood = _as_likelihood(likelihood)
    if not interface.has_gaussian_posterior(model):
        raise ConfigError(
            f"a {type(model).__name__} has no Gaussian latent, so no ELBO or IWAE bound; use a "
            "model with one (config.model.name 'vae' or 'conv_vae')"
        )
    if likelihood.needs_x_logvar and "x_logvar" not in variables.get("params", {}):
        raise ConfigError(
            "likelihood 'gaussian_nll_learned' needs the model's learned x_logvar "
            "(config.model.x_logvar 'scalar' or 'pixel'); this model has none"
        )
    return likelihood


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1")
    return int(value)


def _indices(x, indices) -> np.ndarray:
    """The examples' indices, default 0..B−1, always an int32 array: then every caller
    traces (and compiles) the bounds with the same signature."""
    if indices is None:
        return np.arange(x.shape[0], dtype=np.int32)
    return indices if isinstance(indices, jax.Array) else np.asarray(indices, np.int32)


def _keys(key, indices):
    return example_keys(key, jnp.asarray(indices, jnp.int32))


@functools.partial(jax.jit, static_argnames=("model", "likelihood"))
def _log_likelihood(model, variables, x, z, likelihood):
    return _model_fns(model, variables, likelihood)[1](x, z)


@functools.partial(jax.jit, static_argnames=("model", "likelihood"))
def _elbo_parts(model, variables, x, key, indices, likelihood):
    encode_fn, log_lik_fn = _model_fns(model, variables, likelihood)
    return elbo_from_fns(encode_fn, log_lik_fn, x, _keys(key, indices))


@functools.partial(jax.jit, static_argnames=("model", "likelihood", "chunk"))
def _iwae(model, variables, x, key, indices, likelihood, k, chunk):
    encode_fn, log_lik_fn = _model_fns(model, variables, likelihood)
    return iwae_from_fns(encode_fn, log_lik_fn, x, _keys(key, indices), k, chunk)


def log_likelihood(model, variables, x: jax.Array, z: jax.Array, likelihood) -> jax.Array:
    """log p(x|z) of the decoder, per example, jitted.

    Args:
      model: a `VAE`; variables: its variables ({"params": ...}).
      x: [B, *input_shape] data; z: [B, *latent_shape] codes.
      likelihood: a `Likelihood` (`get_likelihood(config.loss, config.loss_options)`), or
        a recipe string, read with default options (a gaussian_nll variance of 1.0).
    Returns:
      [B] log-likelihoods in nats.
    """
    likelihood = check_model(model, variables, likelihood)
    return _log_likelihood(model, variables, x, z, likelihood)


def elbo(model, variables, x: jax.Array, key: jax.Array, likelihood, indices=None) -> jax.Array:
    """The evidence lower bound log p(x|z) − KL(q(z|x) ‖ p(z)), one z per example, jitted.

    The KL is the closed form (`losses.kl_normal`); z is sample j = 0 of the module's key
    scheme.

    Args:
      model: a `VAE`; variables: its variables.
      x: [B, *input_shape] data.
      key: a PRNG key.
      likelihood: a `Likelihood` (`get_likelihood(config.loss, config.loss_options)`), or
        a recipe string, read with default options (a gaussian_nll variance of 1.0).
      indices: [B] the examples' indices in their split (default 0..B−1): example i draws
        from fold_in(key, indices[i]).
    Returns:
      [B] ELBOs in nats.
    """
    likelihood = check_model(model, variables, likelihood)
    log_px, kl = _elbo_parts(model, variables, x, key, _indices(x, indices), likelihood)
    return log_px - kl


def iwae_bound(
    model,
    variables,
    x: jax.Array,
    key: jax.Array,
    k: int,
    likelihood,
    *,
    chunk: int = DEFAULT_CHUNK,
    indices=None,
) -> jax.Array:
    """The k-sample importance-weighted bound on log p(x) (Burda et al., 2015), jitted.

    log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x), z_j ~ q(z|x), by a running logsumexp over
    chunks of samples (memory O(B·chunk·D), so k in the thousands is fine). It compiles once
    per (model, likelihood, chunk, shapes): k is traced, so trying several k with the same
    chunk does not recompile (chunk = min(chunk, k), so a k below chunk compiles its own).

    Args:
      model: a `VAE`; variables: its variables.
      x: [B, *input_shape] data.
      key: a PRNG key.
      k: the number of importance samples per example.
      likelihood: a `Likelihood` (`get_likelihood(config.loss, config.loss_options)`), or
        a recipe string, read with default options (a gaussian_nll variance of 1.0).
      chunk: samples decoded at once per example; does not change the result.
      indices: [B] the examples' indices in their split (default 0..B−1).
    Returns:
      [B] bounds in nats; k = 1 is the ELBO with a one-sample Monte-Carlo KL.
    """
    likelihood = check_model(model, variables, likelihood)
    k, chunk = _check_int(k, "k"), _check_int(chunk, "chunk")
    indices = _indices(x, indices)
    return _iwae(model, variables, x, key, indices, likelihood, k, min(chunk, k))


def evaluate_bounds(
    model,
    variables,
    x: np.ndarray,
    key: jax.Array,
    likelihood,
    *,
    k: int | None = None,
    batch_size: int = 100,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, np.ndarray]:
    """The ELBO and (with k) the IWAE bound of every example of a split, in fixed batches.

    Example i (its row in `x`) draws from fold_in(key, i) whatever the batch size, so the
    numbers depend only on (key, i) and k; the last batch is padded (`map_batches`), so
    each bound compiles once.

    Args:
      model: a `VAE`; variables: its variables.
      x: [N, *input_shape] data (host memory).
      key: a PRNG key.
      likelihood: a `Likelihood` (`get_likelihood(config.loss, config.loss_options)`), or
        a recipe string, read with default options (a gaussian_nll variance of 1.0).
      k: IWAE samples per example; None for the ELBO only.
      batch_size: examples per compiled call.
      chunk: IWAE samples decoded at once per example (memory ~ batch_size·chunk·D floats).
    Returns:
      dict of [N] numpy arrays in nats: "elbo", "log_px_given_z" (its one-sample
      reconstruction term), "kl" (its closed-form KL) and, with k, "iwae".
    """
    # Imported here: evaluate.py may import this module.
    from aejax.evaluate import map_batches

    likelihood = check_model(model, variables, likelihood)
    batch_size, chunk = _check_int(batch_size, "batch_size"), _check_int(chunk, "chunk")
    if k is not None:
        k = _check_int(k, "k")
    x = np.asarray(x)

    def fn(idx):
        xb = jnp.asarray(x[idx])
        log_px, kl = _elbo_parts(model, variables, xb, key, idx, likelihood)
        out = {"elbo": log_px - kl, "log_px_given_z": log_px, "kl": kl}
        if k is not None:
            out["iwae"] = _iwae(model, variables, xb, key, idx, likelihood, k, min(chunk, k))
        return out

    return map_batches(fn, np.arange(len(x), dtype=np.int32), batch_size)
