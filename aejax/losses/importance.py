"""MIWAE and CIWAE (Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh, 2018, "Tighter
Variational Bounds are Not Necessarily Better", ICML, §5): bounds on log p(x) between the
ELBO and the IWAE's, from the same k log importance weights as `iwae_bce`.

With log w_1..w_k = log p(x|z_j) + log p(z_j) − log q(z_j|x), z_j ~ q(z|x):

    ELBO          = (1/k) Σ_j log w_j
    IWAE_k        = log (1/k) Σ_j w_j
    MIWAE_{M,K}   = (1/M) Σ_m log (1/K) Σ_{j in group m} w_j        (k = M·K)
    CIWAE_β       = β·ELBO + (1 − β)·IWAE_k

ELBO ≤ MIWAE_{M,K} ≤ IWAE_{M·K} for every draw (Jensen's inequality, within and across the
groups), and CIWAE moves from the IWAE (β = 0) to the ELBO (β = 1). The paper's third
estimator, PIWAE (IWAE_{M·K} for the decoder, MIWAE_{M,K} for the encoder), is not a term
of its own: it is two updates of these terms on their parts of the parameters
(aejax/configs/piwae.py). The pure bounds take the log weights; the terms read a Gaussian
VAE's k samples (config.model.num_samples = k) and return the negated bounds, in nats.
"""

import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.losses.terms import importance_log_weights


def iwae_bound(log_w: jax.Array) -> jax.Array:
    """log (1/k) Σ_j w_j from log weights [B, k]: [B] (Burda et al., 2015, eq. 8)."""
    return jax.nn.logsumexp(log_w, axis=1) - jnp.log(log_w.shape[1])


def miwae_bound(log_w: jax.Array, groups: int) -> jax.Array:
    """The average over M groups of the K-sample IWAE bound (Rainforth et al., 2018, §5).

    The k = M·K samples are split into M groups of K consecutive ones, each its own
    IWAE_K estimate: (1/M) Σ_m log (1/K) Σ_{j=mK}^{mK+K−1} w_j. M = 1 is the IWAE_k,
    M = k (K = 1) the ELBO.

    Args:
      log_w: log importance weights, [B, k].
      groups: M, a divisor of k.
    Returns:
      [B] bounds in nats.
    Raises:
      ConfigError: M does not divide k.
    """
    b, k = log_w.shape
    if k % groups:
        raise ConfigError(
            f"config.loss_options.miwae_bce.groups={groups} must divide the {k} latent samples "
            "the model decoded (config.model.num_samples = M·K; with "
            "config.model.sample_at_eval=False evaluation decodes one, the mean)"
        )
    return jnp.mean(iwae_bound(log_w.reshape(b * groups, k // groups)).reshape(b, groups), 1)


def ciwae_bound(log_w: jax.Array, beta: float) -> jax.Array:
    """β·ELBO + (1 − β)·IWAE_k on the same k samples (Rainforth et al., 2018, §5), the ELBO
    the mean of the k single-sample log weights.

    Args:
      log_w: log importance weights, [B, k].
      beta: β in [0, 1]; 0 gives the IWAE_k, 1 the ELBO.
    Returns:
      [B] bounds in nats.
    """
    return beta * jnp.mean(log_w, axis=1) + (1.0 - beta) * iwae_bound(log_w)


def miwae_bce(
    *,
    x: jax.Array,
    logits_samples: jax.Array,
    z_samples: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    groups: int = 1,
    **_,
) -> jax.Array:
    """Negative MIWAE bound of a Bernoulli VAE: −(1/M) Σ_m IWAE_K(group m) of its M·K
    latent samples (Rainforth et al., 2018, "Tighter Variational Bounds are Not
    Necessarily Better", §5).

    The recipe "miwae_bce" with config.model.num_samples = M·K and
    config.loss_options.miwae_bce.groups = M. Its reparameterized gradient averages M
    independent IWAE_K gradient estimates, which raises the encoder's gradient
    signal-to-noise ratio over the IWAE_{M·K}'s (the paper's point). groups = 1 is
    `iwae_bce`; groups = num_samples is the ELBO averaged over the samples.

    Args:
      x: binary targets, [B, ...].
      logits_samples: decoder logits of each sample, [B, k, ...].
      z_samples: the samples, [B, k, *latent].
      mean, logvar: the encoder's μ and log σ², [B, *latent].
      groups: M, a divisor of k.
    Returns:
      [B] per-example negated bounds in nats (upper bounds on −log p(x)).
    """
    log_w = importance_log_weights(
        x=x, logits_samples=logits_samples, z_samples=z_samples, mean=mean, logvar=logvar
    )
    return -miwae_bound(log_w, groups)


def ciwae_bce(
    *,
    x: jax.Array,
    logits_samples: jax.Array,
    z_samples: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    beta: float = 0.5,
    **_,
) -> jax.Array:
    """Negative CIWAE bound of a Bernoulli VAE: −(β·ELBO + (1 − β)·IWAE_k) on its k latent
    samples (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily
    Better", §5).

    The recipe "ciwae_bce" with config.model.num_samples = k and
    config.loss_options.ciwae_bce.beta = β; the ELBO is the mean of the k single-sample
    log weights (a Monte-Carlo KL), so β = 1 is the k-sample ELBO and β = 0 `iwae_bce`.

    Args:
      x: binary targets, [B, ...].
      logits_samples: decoder logits of each sample, [B, k, ...].
      z_samples: the samples, [B, k, *latent].
      mean, logvar: the encoder's μ and log σ², [B, *latent].
      beta: β in [0, 1].
    Returns:
      [B] per-example negated bounds in nats (upper bounds on −log p(x)).
    """
    log_w = importance_log_weights(
        x=x, logits_samples=logits_samples, z_samples=z_samples, mean=mean, logvar=logvar
    )
    return -ciwae_bound(log_w, beta)
