"""The adversarial autoencoder (Makhzani et al., 2015, "Adversarial Autoencoders").

An autoencoder of any family plus a discriminator on its code. The model only computes:
the codes of the batch, as many samples of the prior, and the discriminator's logits on
both. The three updates of the paper (reconstruction, discriminator, generator) are loss
recipes of `config.phases`, each applied to its own part of the parameters with its own
optimizer state (see `aejax.train.make_train_step`).

The code is deterministic with an autoencoder ("mlp", "conv"), or drawn from a Gaussian
posterior with a VAE ("vae", "conv_vae": z = μ + σ·ε, the second of the paper's §2 choices and
pythae's default, `deterministic_posterior=False`); the discriminator judges that draw,
and `encode` gives μ.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.interface import ModelInterface
from aejax.models.layers import DenseStack, flatten

PRIORS = ("gaussian", "mixture")


def sample_code_prior(
    key: jax.Array, n: int, latent_dim: int, prior: str = "gaussian", components: int = 10
) -> jax.Array:
    """n codes from the AAE's prior: [n, latent_dim] float32.

    "gaussian": N(0, I). "mixture": an equal mixture of `components` Gaussians with standard
    deviation 0.5 whose means lie on a circle of radius 4 in the first two code dimensions
    (Makhzani et al.'s mixture of 10 2-D Gaussians; further dimensions are N(0, 0.5²)).
    """
    if prior == "gaussian":
        return jax.random.normal(key, (n, latent_dim))
    which_key, noise_key = jax.random.split(key)
    k = jax.random.randint(which_key, (n,), 0, components)
    angle = 2 * math.pi * k / components
    means = jnp.zeros((n, latent_dim)).at[:, 0].set(4.0 * jnp.cos(angle))
    if latent_dim > 1:
        means = means.at[:, 1].set(4.0 * jnp.sin(angle))
    return means + 0.5 * jax.random.normal(noise_key, (n, latent_dim))


class Discriminator(nn.Module):
    """An MLP from codes [B, ...] to one logit per code, [B] (log-odds of "from the prior")."""

    widths: tuple[int, ...] = (64, 64)
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        stack = DenseStack((*self.widths, 1), self.activation)
        return stack(flatten(z))[:, 0]


class AdversarialAE(ModelInterface, nn.Module):
    """x -> (x̂, aux) of `autoencoder`, plus the discriminator's view of the code.

    Randomness: the prior samples come from the "latent" rng (a fixed key when none is
    given, so evaluation is deterministic).

    Attributes:
      autoencoder: an `Autoencoder`, or a `VAE`, whose code (aux["z"]; a VAE's sampled
        code) is a vector [B, latent_dim].
      discriminator: maps codes to logits [B].
      latent_dim: the code size.
      prior: "gaussian" or "mixture" (see `sample_code_prior`).
    """

    autoencoder: nn.Module
    discriminator: nn.Module
    latent_dim: int
    prior: str = "gaussian"

    def latent_prior(self) -> str:
        """ "standard_normal" (the Gaussian prior) or "mixture"."""
        return "standard_normal" if self.prior == "gaussian" else self.prior

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> codes [B, latent_dim]."""
        return self.autoencoder.encode(x, train=train)

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """codes [B, latent_dim] -> (x̂, logits), both [B, *input_shape]."""
        return self.autoencoder.decode(z, train=train)

    def generate(self, n: int) -> jax.Array:
        """n samples: codes from the prior ("latent" rng), decoded. [n, *input_shape]."""
        z = sample_code_prior(self.make_rng("latent"), n, self.latent_dim, self.prior)
        return self.decode(z)[0]

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux): the autoencoder's aux plus "z_prior" (prior
        samples [B, latent_dim]), "d_fake" (logits on the codes, [B]) and "d_real" (logits
        on the prior samples, [B])."""
        x_hat, aux = self.autoencoder(x, train=train)
        key = self.make_rng("latent") if self.has_rng("latent") else jax.random.key(0)
        z_prior = sample_code_prior(key, x.shape[0], self.latent_dim, self.prior)
        aux = dict(aux, z_prior=z_prior)
        aux["d_fake"] = self.discriminator(aux["z"])
        aux["d_real"] = self.discriminator(z_prior)
        return x_hat, aux
