"""The built-in loss terms: pure per-example functions, each returning shape [B].

Every term is keyword-only, takes the tensors it needs by name (`x`, `x_hat`, `logits`,
`z`, ...) and ignores the rest (`**_`). Reconstruction terms sum over all feature axes, so
that they are negative log-likelihoods per example (up to constants) and weights such as
a VAE's β mean what the papers say; `mse_mean` and `bce_mean` average over the features
instead, as Keras' `mse` and `binary_crossentropy` do. Reduction over the batch and
weighting happen once, in `aejax.losses.total_loss`; what each term declares (batch-level,
option domains, the reduction over features) is in its registration there.
"""

import jax
import jax.numpy as jnp
import optax


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


def _mean_features(v: jax.Array) -> jax.Array:
    """[B, ...] -> [B]: averages every axis but the first."""
    return jnp.mean(v.reshape(v.shape[0], -1), axis=1)


def mse_mean(*, x: jax.Array, x_hat: jax.Array, **_) -> jax.Array:
    """Squared reconstruction error averaged over features: (1/D) Σ_i (x̂_i − x_i)².

    Keras' `mse` loss: `mse` divided by the D features of an example (784 for MNIST), so
    that a Keras model's loss value, its weights beside regularizers and (with optimizers
    whose ε is not negligible) its learning dynamics carry over unchanged.

    Args:
      x: clean targets, [B, ...].
      x_hat: reconstructions, same shape.
    Returns:
      [B] per-example mean squared error per feature.
    """
    return _mean_features(jnp.square(x_hat - x))


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


def bce_mean(*, x: jax.Array, logits: jax.Array, **_) -> jax.Array:
    """Binary cross-entropy from logits averaged over features: `bce` divided by the D
    features of an example. Keras' `binary_crossentropy` loss (there from probabilities,
    clipped at 1e-7; here from the logits, which needs no clipping).

    Args:
      x: targets in [0, 1], [B, ...].
      logits: decoder outputs before the sigmoid, same shape.
    Returns:
      [B] per-example cross-entropy in nats per feature.
    """
    return _mean_features(optax.sigmoid_binary_cross_entropy(logits, x))


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


def kl_sample(*, log_q: jax.Array, log_prior: jax.Array, **_) -> jax.Array:
    """The one-sample KL estimate log q(z|x) − log p(z) at the model's sample z.

    For posteriors or priors whose KL has no closed form (flows, a VampPrior, a von
    Mises-Fisher posterior): the model returns both log-densities of its z in aux, and
    "bce + kl_sample" is the negative ELBO's one-sample estimate, unbiased for the KL.

    Args:
      log_q: log q(z|x) of the model's sample, [B] (aux "log_q").
      log_prior: log p(z) of the same sample, [B] (aux "log_prior").
    Returns:
      [B] per-example estimates in nats (single ones may be negative).
    """
    return log_q - log_prior


def importance_log_weights(
    *,
    x: jax.Array,
    logits_samples: jax.Array,
    z_samples: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    **_,
) -> jax.Array:
    """The log importance weights log w_j = log p(x|z_j) + log p(z_j) − log q(z_j|x) of a
    Bernoulli VAE's k latent samples, with q(z|x) = N(μ, diag σ²) and p(z) = N(0, I).

    The bounds of the importance-weighted family (`iwae_bce`, and MIWAE and CIWAE in
    `aejax.losses.importance`) are functions of these.

    Args:
      x: binary targets, [B, ...].
      logits_samples: decoder logits of each sample, [B, k, ...].
      z_samples: the samples, [B, k, *latent].
      mean, logvar: the encoder's μ and log σ², [B, *latent].
    Returns:
      [B, k] log weights in nats.
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
    return log_lik.reshape(b, k) + log_prior_over_q


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
    log_w = importance_log_weights(
        x=x, logits_samples=logits_samples, z_samples=z_samples, mean=mean, logvar=logvar
    )
    return jnp.log(log_w.shape[1]) - jax.nn.logsumexp(log_w, axis=1)


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
