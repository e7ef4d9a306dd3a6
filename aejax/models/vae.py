"""The Gaussian latent of a VAE (Kingma & Welling, 2014), written once for every family.

`VAE` wraps any encoder whose last axis holds 2·c numbers (the means, then the
log-variances of c latent units) and any decoder of codes shaped `latent_shape`: an MLP
encoder gives a latent vector, a conv encoder a latent vector (dense bottleneck) or a
latent feature map. The model only samples; the ELBO is the recipe "bce + kl_normal" (or a
Gaussian likelihood), and β-VAE is a weight in that recipe.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.interface import ModelInterface
from aejax.models.layers import get_activation

X_LOGVAR = ("none", "scalar", "pixel")


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """z = μ + σ·ε with ε ~ N(0, I) drawn from `key`, σ = exp(½·logvar).

    Writing the sample as a function of (μ, logvar) and independent noise is what lets
    gradients flow to the encoder (the reparameterization trick, Kingma & Welling, 2014).

    Args:
      key: a PRNG key.
      mean, logvar: [B, ...latent].
    Returns:
      z, same shape.
    """
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * logvar) * eps


class VAE(ModelInterface, nn.Module):
    """x -> q(z|x) = N(μ, diag σ²) -> z -> x̂ = output_act(decoder(z)).

    Randomness: with train=True, z = μ + σ·ε with ε from the "latent" rng (required). With
    train=False, z is sampled too when `sample_at_eval` is set and the caller passes a
    "latent" rng (the trainer's eval step does, with a fixed key, so that test/loss is an
    unbiased single-sample estimate of the negative ELBO and not the optimistic value at
    z = μ); otherwise z = μ, which makes the model deterministic (reconstruction figures,
    `encode`, shape tracing).

    Attributes:
      encoder: maps [B, *input_shape] to [B, *latent_shape[:-1], 2·latent_shape[-1]]:
        means, then log-variances, along the last axis.
      decoder: maps codes [B, *latent_shape] to logits [B, *input_shape].
      latent_shape: the shape of one code, e.g. (20,) or (7, 7, 8); the prior is N(0, I) on it.
      output_activation: name of the activation giving x̂ from the logits (the mean of a
        Gaussian likelihood; for "bce" the logits are used directly).
      x_logvar: "none", or a learned log-variance of a Gaussian likelihood, one "scalar"
        or one per "pixel", returned in aux["x_logvar"] (for `gaussian_nll_learned`).
      sample_at_eval: sample z at train=False when a "latent" rng is given (see above).
      num_samples: k, the latent samples drawn per example whenever z is sampled. All k
        are decoded and returned in aux["z_samples"] [B, k, *latent_shape] and
        aux["logits_samples"] [B, k, *input_shape] (for the importance-weighted bound,
        `losses.iwae_bce`); z, x̂ and the logits are those of the first sample, so terms
        such as "bce + kl_normal" see the same single-sample ELBO as with k = 1.
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_shape: Sequence[int]
    output_activation: str = "sigmoid"
    x_logvar: str = "none"
    sample_at_eval: bool = True
    num_samples: int = 1

    posterior = "gaussian"

    def latent_prior(self) -> str:
        """N(0, I) on the latent."""
        return "standard_normal"

    def encode_gaussian(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (mean, logvar), each [B, *latent_shape]."""
        mean, logvar = jnp.split(self.encoder(x, train=train), 2, axis=-1)
        return mean, logvar

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> the posterior mean μ, the VAE's deterministic code."""
        return self.encode_gaussian(x, train=train)[0]

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """code z [B, *latent_shape] -> (x̂, logits), both [B, *input_shape]."""
        logits = self.decoder(z, train=train)
        act = get_activation(self.output_activation, "config.model.output_activation")
        return act(logits), logits

    def generate(self, n: int) -> jax.Array:
        """n samples from the model: z ~ N(0, I) from the "latent" rng, then x̂ = decode(z).

        Returns:
          [n, *input_shape] decoder means (probabilities for a Bernoulli decoder).
        """
        z = jax.random.normal(self.make_rng("latent"), (n, *self.latent_shape))
        return self.decode(z, train=False)[0]

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux {z, mean, logvar, logits, x_hat, z_samples,
        logits_samples[, x_logvar]})."""
        mean, logvar = self.encode_gaussian(x, train=train)
        k = self.num_samples
        if not (train or (self.sample_at_eval and self.has_rng("latent"))):
            z_samples = mean[:, None]
        elif k == 1:
            z_samples = reparameterize(self.make_rng("latent"), mean, logvar)[:, None]
        else:
            # k draws per example: [B, k, *latent], decoded as one batch of B·k codes.
            shape = (mean.shape[0], k, *mean.shape[1:])
            mean_k = jnp.broadcast_to(mean[:, None], shape)
            logvar_k = jnp.broadcast_to(logvar[:, None], shape)
            z_samples = reparameterize(self.make_rng("latent"), mean_k, logvar_k)
        n = z_samples.shape[1]
        x_hats, logits_samples = self.decode(
            z_samples.reshape(-1, *z_samples.shape[2:]), train=train
        )
        logits_samples = logits_samples.reshape(-1, n, *logits_samples.shape[1:])
        x_hat = x_hats.reshape(logits_samples.shape)[:, 0]
        z, logits = z_samples[:, 0], logits_samples[:, 0]
        aux = {"z": z, "mean": mean, "logvar": logvar, "logits": logits, "x_hat": x_hat}
        aux.update(z_samples=z_samples, logits_samples=logits_samples)
        if self.x_logvar != "none":
            shape = x_hat.shape[1:] if self.x_logvar == "pixel" else ()
            s = self.param("x_logvar", nn.initializers.zeros, shape)
            aux["x_logvar"] = jnp.broadcast_to(s, x_hat.shape)
        return x_hat, aux
