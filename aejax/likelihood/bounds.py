"""The likelihood of a run and the pure bounds: ELBO and importance-weighted bound as
functions of an encoder and a decoder log-likelihood (see `aejax.likelihood`)."""

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from aejax import losses
from aejax.errors import ConfigError

# Loss terms that are a decoder's negative log-likelihood in nats, constants included.
LIKELIHOOD_TERMS = ("bce", "gaussian_nll", "gaussian_nll_learned")
# Loss terms that are a whole bound on −log p(x), by the likelihood term they use.
BOUND_TERMS = {"iwae_bce": "bce", "miwae_bce": "bce", "ciwae_bce": "bce"}

# Samples decoded at once per example by the IWAE loop. Memory is O(batch·chunk·D): with
# the host helper's batch of 100, 10⁴ decoder rows (31 MB of MNIST logits). On a 2-core CPU
# chunks of 20 to 100 ran at the same speed for the MNIST VAE.
DEFAULT_CHUNK = 100

_LOG_2PI = math.log(2.0 * math.pi)

EncodeFn = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikFn = Callable[[jax.Array, jax.Array], jax.Array]
LogPriorFn = Callable[[jax.Array], jax.Array]
SampleFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


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


def _log_prior_standard(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) of samples z [B, C, *latent_shape]: [B, C]."""
    return log_standard_normal(z, 2)


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

    normal = lambda k: jax.random.normal(k, tuple(latent_shape), dtype)
    return jax.vmap(jax.vmap(normal))(sample_keys(keys, samples))


def sample_keys(keys: jax.Array, samples: jax.Array) -> jax.Array:
    """The keys fold_in(keys[i], samples[j]), [B, C]: sample j of example i."""
    return jax.vmap(lambda k: jax.vmap(lambda j: jax.random.fold_in(k, j))(samples))(keys)


def gaussian_sampler(encode_fn: EncodeFn) -> SampleFn:
    """The sampler of a diagonal Gaussian posterior: z = μ + σ·ε, with log q(z|x).

    ε of sample (i, j) is normal(keys[i, j], latent_shape), the draws of `sample_noise`,
    and log q is computed from ε ((z − μ)²/σ² is ε² exactly).

    Args:
      encode_fn: x [B, ...] -> (mean, logvar), each [B, *latent_shape].
    Returns:
      (x, keys [B, C]) -> (z [B, C, *latent_shape], log q(z|x) [B, C]).
    """

    def sample(x, keys):
        mean, logvar = encode_fn(x)
        latent_shape = mean.shape[1:]
        normal = lambda k: jax.random.normal(k, latent_shape, mean.dtype)
        eps = jax.vmap(jax.vmap(normal))(keys)  # the draws of `sample_noise`
        z = mean[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
        log_q_const = -0.5 * (_sum_trailing(logvar, 1) + math.prod(latent_shape) * _LOG_2PI)
        return z, log_q_const[:, None] - 0.5 * _sum_trailing(jnp.square(eps), 2)

    return sample


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
    log_prior_fn: LogPriorFn | None = None,
) -> jax.Array:
    """The importance-weighted bound log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x) (Burda et al., 2015)
    of a Gaussian posterior.

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
      log_prior_fn: z [B, C, *latent_shape] -> log p(z) [B, C]; None for N(0, I).
    Returns:
      [B] bounds in nats.
    """
    # The encoder runs once, outside the loop; each chunk only draws and decodes.
    posterior = encode_fn(x)
    sample_fn = gaussian_sampler(lambda _: posterior)
    return iwae_from_sampler(sample_fn, log_lik_fn, x, keys, k, chunk, log_prior_fn)


def iwae_from_sampler(
    sample_fn: SampleFn,
    log_lik_fn: LogLikFn,
    x: jax.Array,
    keys: jax.Array,
    k: int | jax.Array,
    chunk: int = DEFAULT_CHUNK,
    log_prior_fn: LogPriorFn | None = None,
) -> jax.Array:
    """The importance-weighted bound of any posterior that draws samples with their log q.

    As `iwae_from_fns` (the same running logsumexp over chunks, the same per-sample keys),
    with the posterior given as a sampler: log w_j = log p(x|z_j) + log p(z_j) − log q_j.

    Args:
      sample_fn: (x [B, ...], keys [B, C]) -> (z [B, C, *latent_shape], log q [B, C]);
        sample (i, j) drawn from keys[i, j] alone.
      log_lik_fn: (x [B, ...], z [B, *latent_shape]) -> log p(x|z) [B].
      x: [B, ...] data.
      keys: [B] per-example keys; sample j of example i uses fold_in(keys[i], j).
      k, chunk: as in `iwae_from_fns`.
      log_prior_fn: z [B, C, *latent_shape] -> log p(z) [B, C]; None for N(0, I).
    Returns:
      [B] bounds in nats.
    """
    log_prior_fn = log_prior_fn or _log_prior_standard
    if isinstance(k, int):
        chunk = min(chunk, k)
    k = jnp.asarray(k, jnp.int32)
    # The decoder sees the chunk's samples as one batch of B·chunk codes: vmap over the sample
    # axis adds rows to its matrix multiplies without repeating x in memory.
    log_lik_chunk = jax.vmap(log_lik_fn, in_axes=(None, 1), out_axes=1)

    def body(c, total):
        samples = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        z, log_q = sample_fn(x, sample_keys(keys, samples))
        log_w = log_lik_chunk(x, z) + log_prior_fn(z) - log_q
        log_w = jnp.where(samples < k, log_w, -jnp.inf)
        return jnp.logaddexp(total, jax.nn.logsumexp(log_w, axis=1))

    dtype = jnp.result_type(x.dtype, jnp.float32)
    init = jnp.full((x.shape[0],), -jnp.inf, dtype)
    total = jax.lax.fori_loop(0, (k + chunk - 1) // chunk, body, init)
    return total - jnp.log(k.astype(dtype))


def elbo_from_sampler(
    sample_fn: SampleFn,
    log_lik_fn: LogLikFn,
    x: jax.Array,
    keys: jax.Array,
    log_prior_fn: LogPriorFn | None = None,
):
    """The ELBO with sample j = 0 and a one-sample KL, log q(z|x) − log p(z).

    For a posterior or prior whose KL has no closed form; the sample is the IWAE loop's
    first, so `iwae_from_sampler(k=1)` equals log p(x|z) − KL here.

    Returns:
      (log p(x|z), the one-sample KL), each [B], in nats.
    """
    log_prior_fn = log_prior_fn or _log_prior_standard
    z, log_q = sample_fn(x, sample_keys(keys, jnp.zeros((1,), jnp.int32)))
    return log_lik_fn(x, z[:, 0]), (log_q - log_prior_fn(z))[:, 0]
