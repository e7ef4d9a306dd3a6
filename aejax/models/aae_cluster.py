"""The adversarial autoencoder for unsupervised clustering (Makhzani et al., 2016,
"Adversarial Autoencoders", §6).

The encoder's last layer is split in two: K logits whose softmax is the cluster
probability vector y = q(y|x), and a continuous style z. The decoder reconstructs from the
concatenation [y, z]. Two discriminators push the aggregated posteriors to their priors:
one tells y from one-hot draws of a uniform categorical distribution (which drives each y
towards a one-hot vector, a hard cluster), the other tells z from N(0, I) draws. The model
only computes these tensors; the paper's three updates (reconstruction, both
discriminators, the encoder as generator) are `config.loss` and `config.extra_phases`
(see `aejax.configs.aae_cluster`).

Code layout: `encode(x)` returns [y, z], shape [B, K + style_dim], the first K entries a
probability vector (a test example's cluster is their argmax, `cluster_probabilities`),
the rest the style; `decode` takes the same layout.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.aae import Discriminator
from aejax.models.interface import ModelInterface
from aejax.models.layers import get_activation

# The fields of config.model this family reads beyond the MLP's, with their defaults.
CLUSTER_FIELDS = {"num_clusters": 16}  # K, the size of the categorical head


def sample_categorical_prior(key: jax.Array, n: int, num_clusters: int) -> jax.Array:
    """n one-hot vectors of a uniform categorical over `num_clusters`: [n, K] float32."""
    k = jax.random.randint(key, (n,), 0, num_clusters)
    return jax.nn.one_hot(k, num_clusters, dtype=jnp.float32)


class CategoricalAutoencoder(ModelInterface, nn.Module):
    """x -> (y = softmax(first K encoder outputs), z = the rest) -> x̂ = act(decoder([y, z])).

    Attributes:
      encoder: maps [B, *input_shape] to [B, K + style_dim] pre-activations.
      decoder: maps codes [B, K + style_dim] to output logits [B, *input_shape].
      num_clusters: K.
      output_activation: applied to the decoder's logits ("sigmoid" for images in [0, 1]).
    """

    encoder: nn.Module
    decoder: nn.Module
    num_clusters: int
    output_activation: str = "sigmoid"

    def split(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """[B, *input_shape] -> (y logits [B, K], style z [B, style_dim])."""
        h = self.encoder(x, train=train)
        return h[:, : self.num_clusters], h[:, self.num_clusters :]

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> [y, z], [B, K + style_dim]; y is a probability vector."""
        y_logits, z = self.split(x, train=train)
        return jnp.concatenate([jax.nn.softmax(y_logits, axis=-1), z], axis=-1)

    def decode(self, code: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """[y, z] [B, K + style_dim] -> (x̂, logits), both [B, *input_shape]."""
        logits = self.decoder(code, train=train)
        act = get_activation(self.output_activation, "config.model.output_activation")
        return act(logits), logits

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux): "z" the whole code [y, z] [B, K + style_dim],
        "y" [B, K], "y_logits" [B, K], "style" [B, style_dim], "logits", "x_hat"."""
        y_logits, style = self.split(x, train=train)
        y = jax.nn.softmax(y_logits, axis=-1)
        code = jnp.concatenate([y, style], axis=-1)
        x_hat, logits = self.decode(code, train=train)
        aux = {"z": code, "y": y, "y_logits": y_logits, "style": style}
        return x_hat, {**aux, "logits": logits, "x_hat": x_hat}


class DiscriminatorPair(nn.Module):
    """The two discriminators under one parameter path ("discriminators"), so one extra
    phase updates both: `style` on z [B, d], `category` on y [B, K]; each gives logits [B]."""

    style: nn.Module
    category: nn.Module

    def __call__(self, z: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(z [B, d], y [B, K]) -> (style logits [B], category logits [B])."""
        return self.style(z), self.category(y)


class ClusterAAE(ModelInterface, nn.Module):
    """The clustering AAE: a `CategoricalAutoencoder` and its `DiscriminatorPair`.

    Randomness: the prior draws come from the "latent" rng (a fixed key when none is given,
    so evaluation is deterministic).

    Attributes:
      autoencoder: a `CategoricalAutoencoder`.
      discriminators: a `DiscriminatorPair`.
      num_clusters: K.
      style_dim: the size of z.
    """

    autoencoder: nn.Module
    discriminators: nn.Module
    num_clusters: int
    style_dim: int

    def latent_prior(self) -> str:
        """ "categorical_gaussian": y one-hot uniform over K, z ~ N(0, I), independent."""
        return "categorical_gaussian"

    def sample_prior(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """n draws of the prior: (one-hot y [n, K], z [n, style_dim])."""
        k_y, k_z = jax.random.split(key)
        y = sample_categorical_prior(k_y, n, self.num_clusters)
        return y, jax.random.normal(k_z, (n, self.style_dim))

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> [y, z], [B, K + style_dim] (y: cluster probabilities)."""
        return self.autoencoder.encode(x, train=train)

    def cluster_probabilities(self, x: jax.Array) -> jax.Array:
        """[B, *input_shape] -> q(y|x), [B, K]; the cluster of x is its argmax."""
        return self.encode(x)[:, : self.num_clusters]

    def decode(self, code: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """[y, z] [B, K + style_dim] -> (x̂, logits), both [B, *input_shape]."""
        return self.autoencoder.decode(code, train=train)

    def generate(self, n: int) -> jax.Array:
        """n samples: a one-hot y and z ~ N(0, I) ("latent" rng), decoded. [n, *input_shape]."""
        y, z = self.sample_prior(self.make_rng("latent"), n)
        return self.decode(jnp.concatenate([y, z], axis=-1))[0]

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux): the autoencoder's aux plus the discriminators'
        logits, each [B]: "d_fake" / "d_real" (style: codes / N(0, I) draws, the names the
        AAE's `adv_discriminator` and `adv_generator` read) and "d_fake_y" / "d_real_y"
        (category: softmax outputs / one-hot draws)."""
        x_hat, aux = self.autoencoder(x, train=train)
        key = self.make_rng("latent") if self.has_rng("latent") else jax.random.key(0)
        y_prior, z_prior = self.sample_prior(key, x.shape[0])
        aux["d_fake"], aux["d_fake_y"] = self.discriminators(aux["style"], aux["y"])
        aux["d_real"], aux["d_real_y"] = self.discriminators(z_prior, y_prior)
        return x_hat, {**aux, "z_prior": z_prior, "y_prior": y_prior}


def build_cluster_aae(cfg, ae: nn.Module, discriminator_widths: tuple[int, ...]) -> ClusterAAE:
    """The clustering AAE around an MLP `Autoencoder` built from `cfg` (config.model):
    its `encoder_widths` are (hidden..., style size); the encoder's last layer gets
    `num_clusters` more units, the softmax head; the decoder is the MLP's (from [y, z])."""
    k = cfg.get("num_clusters", CLUSTER_FIELDS["num_clusters"])
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"config.model.num_clusters={k!r} must be an integer >= 2")
    if ae.top_k or ae.code_activation != "linear":
        raise ConfigError(
            "config.model.top_k must be 0 and code_activation 'linear' for aae_cluster: its "
            "code is a softmax head beside a linear style"
        )
    *hidden, style_dim = ae.encoder.widths
    autoencoder = CategoricalAutoencoder(
        ae.encoder.clone(widths=(*hidden, k + style_dim)),
        ae.decoder,
        num_clusters=k,
        output_activation=ae.output_activation,
    )
    widths = tuple(discriminator_widths)
    pair = DiscriminatorPair(Discriminator(widths), Discriminator(widths))
    return ClusterAAE(autoencoder, pair, num_clusters=k, style_dim=style_dim)
