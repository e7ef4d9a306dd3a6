"""Bounds on a VAE's log-likelihood log p(x): the ELBO and the importance-weighted bound.

For a model that declares a posterior (`aejax.models.interface`): a Gaussian latent
(`VAE`, model names "vae" and "conv_vae") with encoder q(z|x) = N(μ(x), diag σ²(x)), or a
"sampled" posterior that draws z with its log q(z|x) (flows, von Mises-Fisher,
Hamiltonian); a prior, N(0, I) or the model's own `log_prior`; and a decoder likelihood
p(x|z) named by the run's loss recipe ("bce", "gaussian_nll" or "gaussian_nll_learned"):

- `elbo`: log p(x|z) − KL(q(z|x) ‖ p(z)), one z per example, with the closed-form KL
  (Kingma & Welling, 2014, eq. 10) for a Gaussian posterior and an N(0, I) prior, the
  one-sample log q(z|x) − log p(z) otherwise (`analytic_kl` says which);
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
    z_ij   = μ_i + σ_i · ε_ij        (a "sampled" posterior draws z_ij from fold_in(key_i, j))

So each sample depends only on (key, i, j): not on the batch the example is in, the batch
size, nor the chunk size of the IWAE loop; the ELBO uses sample j = 0, the first of the
IWAE samples, so `iwae_bound(k=1)` is the ELBO with a Monte-Carlo KL on the same z.

The pure cores `elbo_from_fns`, `iwae_from_fns` (a Gaussian encoder), `elbo_from_sampler`
and `iwae_from_sampler` (any sampler) take the posterior, the prior and the decoder's
log-likelihood as plain functions, so they can be checked without flax modules.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.likelihood.bounds import (
    BOUND_TERMS,
    DEFAULT_CHUNK,
    LIKELIHOOD_TERMS,
    EncodeFn,
    Likelihood,
    LogLikFn,
    SampleFn,
    _as_likelihood,
    elbo_from_fns,
    elbo_from_sampler,
    example_keys,
    gaussian_sampler,
    get_likelihood,
    iwae_from_fns,
    iwae_from_sampler,
    log_standard_normal,
    sample_keys,
    sample_noise,
)
from aejax.models import interface

__all__ = [
    "BOUND_TERMS",
    "DEFAULT_CHUNK",
    "LIKELIHOOD_TERMS",
    "Likelihood",
    "analytic_kl",
    "check_model",
    "elbo",
    "elbo_from_fns",
    "elbo_from_sampler",
    "evaluate_bounds",
    "example_keys",
    "gaussian_sampler",
    "get_likelihood",
    "iwae_bound",
    "iwae_from_fns",
    "iwae_from_sampler",
    "log_likelihood",
    "log_standard_normal",
    "sample_keys",
    "sample_noise",
]


# --- a flax VAE ----------------------------------------------------------------------------


def _log_lik_fn(model, variables, likelihood: Likelihood) -> LogLikFn:
    """The decoder's log p(x|z) as a plain function (eval mode)."""

    def log_lik_fn(x, z):
        x_hat, logits = model.apply(variables, z, method="decode")
        x_logvar = variables["params"]["x_logvar"] if likelihood.needs_x_logvar else None
        return likelihood.log_prob(x, x_hat=x_hat, logits=logits, x_logvar=x_logvar)

    return log_lik_fn


def _encode_fn(model, variables) -> EncodeFn:
    return lambda x: model.apply(variables, x, method="encode_gaussian")


def _sample_fn(model, variables) -> SampleFn:
    """The posterior's sampler: (x, keys [B, C]) -> (z [B, C, ...], log q [B, C])."""
    if interface.has_gaussian_posterior(model):
        return gaussian_sampler(_encode_fn(model, variables))
    return lambda x, keys: model.apply(variables, x, keys, method="posterior_samples")


def _log_prior_fn(model, variables):
    """log p(z) for z [B, C, *latent]: the model's own, or the standard normal's."""
    if interface.has_log_prior(model):
        return lambda z: model.apply(variables, z, method="log_prior")
    return lambda z: log_standard_normal(z, 2)


def analytic_kl(model) -> bool:
    """Whether the ELBO's KL has the closed form: a Gaussian posterior and an N(0, I) prior
    (else it is the one-sample log q(z|x) − log p(z))."""
    return interface.has_gaussian_posterior(model) and not interface.has_log_prior(model)


def check_model(model, variables, likelihood) -> Likelihood:
    """Raises ConfigError unless `model` has a posterior, a prior density and what
    `likelihood` needs."""
    likelihood = _as_likelihood(likelihood)
    if not interface.has_posterior(model):
        raise ConfigError(
            f"a {type(model).__name__} declares no posterior q(z|x), so no ELBO or IWAE bound; "
            "use a model with one (a VAE family; see aejax.models.interface)"
        )
    prior = interface.prior_of(model)
    if prior != "standard_normal" and not interface.has_log_prior(model):
        raise ConfigError(
            f"a {type(model).__name__} with the prior {prior!r} has no log_prior(z), so no "
            "ELBO or IWAE bound; see aejax.models.interface"
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
    return _log_lik_fn(model, variables, likelihood)(x, z)


@functools.partial(jax.jit, static_argnames=("model", "likelihood"))
def _elbo_parts(model, variables, x, key, indices, likelihood):
    log_lik_fn, keys = _log_lik_fn(model, variables, likelihood), _keys(key, indices)
    if analytic_kl(model):
        return elbo_from_fns(_encode_fn(model, variables), log_lik_fn, x, keys)
    sample_fn, log_prior_fn = _sample_fn(model, variables), _log_prior_fn(model, variables)
    return elbo_from_sampler(sample_fn, log_lik_fn, x, keys, log_prior_fn)


@functools.partial(jax.jit, static_argnames=("model", "likelihood", "chunk"))
def _iwae(model, variables, x, key, indices, likelihood, k, chunk):
    log_lik_fn, keys = _log_lik_fn(model, variables, likelihood), _keys(key, indices)
    log_prior_fn = _log_prior_fn(model, variables)
    if interface.has_gaussian_posterior(model):  # the encoder once, outside the sample loop
        encode_fn = _encode_fn(model, variables)
        return iwae_from_fns(encode_fn, log_lik_fn, x, keys, k, chunk, log_prior_fn)
    sample_fn = _sample_fn(model, variables)
    return iwae_from_sampler(sample_fn, log_lik_fn, x, keys, k, chunk, log_prior_fn)


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

    The KL is the closed form (`losses.kl_normal`) for a Gaussian posterior and an N(0, I)
    prior, else the one-sample log q(z|x) − log p(z) (`analytic_kl`); z is sample j = 0 of
    the module's key scheme.

    Args:
      model: a model with a posterior (a `VAE`); variables: its variables.
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
      model: a model with a posterior (a `VAE`); variables: its variables.
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
      model: a model with a posterior (a `VAE`); variables: its variables.
      x: [N, *input_shape] data (host memory).
      key: a PRNG key.
      likelihood: a `Likelihood` (`get_likelihood(config.loss, config.loss_options)`), or
        a recipe string, read with default options (a gaussian_nll variance of 1.0).
      k: IWAE samples per example; None for the ELBO only.
      batch_size: examples per compiled call.
      chunk: IWAE samples decoded at once per example (memory ~ batch_size·chunk·D floats).
    Returns:
      dict of [N] numpy arrays in nats: "elbo", "log_px_given_z" (its one-sample
      reconstruction term), "kl" (its KL, closed-form or one-sample: `analytic_kl`) and,
      with k, "iwae".
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
