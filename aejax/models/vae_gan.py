"""The VAE-GAN (Larsen, Sønderby, Larochelle & Winther, 2016, "Autoencoding beyond pixels
using a learned similarity metric").

A VAE whose decoder is also a GAN's generator, and a discriminator on images whose hidden
layer l gives the reconstruction error: the Gaussian NLL of the discriminator's features
of x under those of x̂ (`aejax.losses.vaegan`). The model only computes: the VAE's outputs,
decodings of as many prior draws, and the discriminator's features and logits on the real
images, their reconstructions and the prior's decodings. The paper's three updates (encoder,
decoder, discriminator) are loss recipes of `config.loss` and `config.extra_phases`, each on
its own part of the parameters ("vae/encoder", "vae/decoder", "discriminator").
"""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.interface import ModelInterface
from aejax.models.layers import Conv, Dense, flatten, get_activation, get_initializer

_LAYER = re.compile(r"^(dense|conv):([1-9][0-9]*)(?::([a-z_]+))?$")


def parse_discriminator_layers(spec, input_shape, where="config.model.discriminator_layers"):
    """Reads the discriminator's hidden layers, e.g. ("conv:128:relu", "dense:256:relu").

    "conv:C[:act]" is a 4x4 convolution of stride 2 and padding 1 (pythae's MNIST
    discriminator: it halves the map), "dense:N[:act]" a dense layer on the flattened input;
    the activation defaults to relu. Convolutions come first and need image examples whose
    map is at least 2 pixels wide before each. A final dense layer to one logit follows.

    Returns:
      ((kind, width, activation), ...). Raises ConfigError naming `where`.
    """
    if isinstance(spec, str) or not isinstance(spec, tuple | list) or not spec:
        raise ConfigError(f"{where}={spec!r} must be a non-empty list such as ('dense:256',)")
    out, hw = [], list(input_shape[:2]) if len(input_shape) == 3 else None
    for item in spec:
        m = _LAYER.match(item) if isinstance(item, str) else None
        if m is None:
            raise ConfigError(
                f"{where}: cannot read {item!r}; write 'conv:C[:act]' or 'dense:N[:act]'"
            )
        kind, width, act = m[1], int(m[2]), m[3] or "relu"
        get_activation(act, where)
        if kind == "conv":
            if out and out[-1][0] == "dense":
                raise ConfigError(
                    f"{where}={tuple(spec)!r}: conv layers must come before dense ones"
                )
            if hw is None:
                raise ConfigError(
                    f"{where}: {item!r} needs image examples (H, W, C); the data's are shaped "
                    f"{tuple(input_shape)}"
                )
            if min(hw) < 2:
                raise ConfigError(f"{where}={tuple(spec)!r}: {item!r} gets a 1-pixel map")
            hw = [n // 2 for n in hw]
        out.append((kind, width, act))
    return tuple(out)


class FeatureDiscriminator(nn.Module):
    """Images [B, ...] -> (features of layer `feature_layer`, logits [B]).

    Layers are numbered from 1 as in pythae: 1..len(layers) are the hidden layers (after
    their activations), len(layers) + 1 the output, whose "features" are then the
    probability σ(logit), [B, 1] (pythae's default reconstruction_layer = −1).

    Attributes:
      layers: (kind, width, activation) of each hidden layer (`parse_discriminator_layers`).
      feature_layer: l in 1..len(layers) + 1.
      kernel_init: name of the kernel initializer (`aejax.models.layers.INITIALIZERS`).
    """

    layers: tuple[tuple[str, int, str], ...]
    feature_layer: int
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h, features = x, None
        init = get_initializer(self.kernel_init)
        for i, (kind, width, act) in enumerate(self.layers, start=1):
            if kind == "conv":
                conv = Conv(width, (4, 4), strides=2, padding=((1, 1), (1, 1)), kernel_init=init)
                h = conv(h)
            else:
                h = Dense(width, kernel_init=init)(flatten(h))
            h = get_activation(act, "config.model.discriminator_layers")(h)
            if i == self.feature_layer:
                features = h
        logits = Dense(1, kernel_init=init)(flatten(h))[:, 0]
        if features is None:
            features = nn.sigmoid(logits)[:, None]
        return features, logits


class VAEGAN(ModelInterface, nn.Module):
    """x -> the VAE's (x̂, aux), plus prior decodings and the discriminator's view of all.

    Randomness: the VAE samples z from the "latent" rng; the prior draws come from it too
    (a fixed key when none is given, so evaluation is deterministic).

    Attributes:
      vae: a `VAE` (Gaussian posterior, N(0, I) prior) of one latent sample.
      discriminator: a `FeatureDiscriminator`.
    """

    vae: nn.Module
    discriminator: nn.Module

    posterior = "gaussian"

    def latent_prior(self) -> str:
        """N(0, I) on the VAE's latent."""
        return "standard_normal"

    def encode_gaussian(self, x: jax.Array, *, train: bool = False):
        """[B, *input_shape] -> (mean, logvar), each [B, *latent_shape]."""
        return self.vae.encode_gaussian(x, train=train)

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """[B, *input_shape] -> the posterior mean."""
        return self.vae.encode(x, train=train)

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """codes [B, *latent_shape] -> (x̂, logits), both [B, *input_shape]."""
        return self.vae.decode(z, train=train)

    def generate(self, n: int) -> jax.Array:
        """n decoded draws of N(0, I) ("latent" rng): [n, *input_shape]."""
        return self.vae.generate(n)

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """[B, *input_shape] -> (x̂, aux): the VAE's aux plus "z_prior" (N(0, I) draws,
        [B, *latent]), "x_prior" (their decodings), "feat_real", "feat_recon" (the
        discriminator's features of x and x̂, [B, ...]) and "d_real", "d_recon", "d_prior"
        (its logits on x, x̂ and x_prior, [B])."""
        x_hat, aux = self.vae(x, train=train)
        key = self.make_rng("latent") if self.has_rng("latent") else jax.random.key(0)
        z_prior = jax.random.normal(key, aux["z"].shape, aux["z"].dtype)
        x_prior = self.vae.decode(z_prior, train=train)[0]
        b = x.shape[0]
        # One pass over the three batches: the discriminator has no batch statistics.
        features, logits = self.discriminator(jnp.concatenate([x, x_hat, x_prior]))
        aux = dict(aux, z_prior=z_prior, x_prior=x_prior)
        aux.update(feat_real=features[:b], feat_recon=features[b : 2 * b])
        aux.update(d_real=logits[:b], d_recon=logits[b : 2 * b], d_prior=logits[2 * b :])
        return x_hat, aux
