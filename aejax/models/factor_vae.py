"""FactorVAE (Kim & Mnih, 2018, "Disentangling by Factorising", ICML).

A VAE plus a discriminator that tells codes z ~ q(z) from codes whose dimensions were
each shuffled across the batch (samples of Π_j q(z_j)). Its logit estimates the total
correlation, log q(z) / Π_j q(z_j) (the density-ratio trick), which the VAE's update
penalizes with weight γ: the recipe "bce + kl_normal + γ*factor_tc". The discriminator
is trained by an extra phase, "factor_discriminator @ discriminator", like the
adversarial autoencoder's (`aejax.train.make_train_step`).

The shuffled codes are the batch's own, permuted per dimension, as disentanglement_lib
does (the paper draws them from a second batch); the permutation draws from the "latent"
rng, so `factor_discriminator` couples the batch's examples and is a batch-level term.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models.interface import ModelInterface


def permute_dims(key: jax.Array, z: jax.Array) -> jax.Array:
    """Each column of z [B, D] permuted independently across the batch (argsort of uniform
    draws, one column per key)."""
    order = jnp.argsort(jax.random.uniform(key, z.shape), axis=0)
    return jnp.take_along_axis(z, order, axis=0)


class FactorVAE(ModelInterface, nn.Module):
    """A Gaussian `vae` whose code a `discriminator` judges.

    Attributes:
      vae: a `VAE` (MLP or conv) with a latent vector.
      discriminator: codes [B, D] -> logits [B], log-odds of "from q(z)".
    """

    vae: nn.Module
    discriminator: nn.Module

    posterior = "gaussian"

    def latent_prior(self) -> str:
        return self.vae.latent_prior()

    def encode_gaussian(self, x, *, train: bool = False):
        """[B, *input_shape] -> (mean, logvar), each [B, D]."""
        return self.vae.encode_gaussian(x, train=train)

    def encode(self, x, *, train: bool = False):
        return self.vae.encode(x, train=train)

    def decode(self, z, *, train: bool = False):
        return self.vae.decode(z, train=train)

    def generate(self, n: int):
        return self.vae.generate(n)

    def __call__(self, x, *, train: bool = False):
        """[B, *input_shape] -> (x̂, aux): the VAE's aux plus "d_joint" (logits on the
        codes z, [B]) and "d_permuted" (logits on the dimension-shuffled, stopped codes, [B])."""
        x_hat, aux = self.vae(x, train=train)
        key = self.make_rng("latent") if self.has_rng("latent") else jax.random.key(0)
        z = aux["z"].reshape(x.shape[0], -1)
        permuted = permute_dims(jax.random.fold_in(key, 1), jax.lax.stop_gradient(z))
        aux = dict(aux, d_joint=self.discriminator(z), d_permuted=self.discriminator(permuted))
        return x_hat, aux
