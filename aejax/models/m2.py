"""M2, the generative semi-supervised model of Kingma, Rezende, Mohamed & Welling (2014),
"Semi-Supervised Learning with Deep Generative Models", Section 2.2.

p(y) = Cat(1/K), p(z) = N(0, I), p(x | y, z) a Bernoulli (pixels) or a Gaussian with a
learned variance per feature (M1's codes, for M1+M2); the inference model is
q(y | x) = Cat(π(x)), a classifier, and q(z | x, y) = N(μ(x, y), diag σ²(x, y)).

An example is x = (pixels, label part) [D + K] from the "partly_labelled" source
(`aejax.data.semisup`): the label part is one-hot when the label is observed and zero
otherwise. The model runs q(z | x, y) and p(x | y, z) for every class y of every example
(K times the work of a VAE) and hands the results to the loss terms
(`aejax.losses.semisup`), which take the labelled bound at the observed class and the
unlabelled one as the expectation over q(y | x). The model computes no loss.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models.interface import ModelInterface
from aejax.models.vae import reparameterize

# config.model.likelihood, a field the Hamiltonian families read too (default "bce").
LIKELIHOODS = ("bce", "gaussian_nll")
# The fields of config.model only M2 reads, with their defaults (aejax.models.FAMILY_FIELDS).
M2_FIELDS = {
    "num_classes": 10,  # m2: K, the label part's width (the last K features of an example)
    "classifier_widths": (500,),  # m2: hidden widths of q(y|x)
}


class M2(ModelInterface, nn.Module):
    """q(y|x), q(z|x,y), p(x|y,z) on examples [B, D + K] (see the module's docstring).

    Attributes:
      classifier: pixels [B, D] -> class logits [B, K].
      encoder: [B', D + K] (pixels, one-hot y) -> [B', 2·Z] means then log-variances.
      decoder: [B', Z + K] (z, one-hot y) -> logits [B', D].
      num_classes: K.
      latent_dim: Z.
      likelihood: "bce" (Bernoulli: x̂ = sigmoid of the decoder's output) or "gaussian_nll" (x̂
        the output itself, with a learned log-variance per feature, aux["m2_x_logvar"]).
      sample_at_eval: sample z at train=False when a "latent" rng is given (as `VAE`).
    """

    classifier: nn.Module
    encoder: nn.Module
    decoder: nn.Module
    num_classes: int
    latent_dim: int
    likelihood: str = "bce"
    sample_at_eval: bool = True

    def _split(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return x[:, : -self.num_classes], x[:, -self.num_classes :]

    def _mean(self, logits: jax.Array) -> jax.Array:
        return nn.sigmoid(logits) if self.likelihood == "bce" else logits

    def classify(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """x [B, D + K] (the label part is not read) -> class logits of q(y|x) [B, K]."""
        return self.classifier(self._split(x)[0], train=train)

    def _posterior(self, pixels: jax.Array, y: jax.Array, train: bool):
        """q(z|x,y): pixels [B, D], y [B, K] (one-hot or soft) -> (mean, logvar) [B, Z]."""
        h = self.encoder(jnp.concatenate([pixels, y], axis=-1), train=train)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """x [B, D + K] -> code [B, Z + K]: the mean of q(z|x,y) at y = the observed
        label, else the argmax of q(y|x), then q(y|x)'s probabilities."""
        pixels, y_obs = self._split(x)
        probs = nn.softmax(self.classify(x, train=train))
        labelled = jnp.sum(y_obs, axis=-1, keepdims=True) > 0.5
        guess = jax.nn.one_hot(jnp.argmax(probs, axis=-1), self.num_classes)
        mean, _ = self._posterior(pixels, jnp.where(labelled, y_obs, guess), train)
        return jnp.concatenate([mean, probs], axis=-1)

    def decode(self, z: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """code [B, Z + K] (z, then class probabilities or a one-hot y) -> (x̂, logits),
        each [B, D + K]: p(x|y,z)'s mean and the decoder's output, then y as given."""
        y = z[:, self.latent_dim :]
        logits = self.decoder(z, train=train)
        return (
            jnp.concatenate([self._mean(logits), y], axis=-1),
            jnp.concatenate([logits, y], axis=-1),
        )

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        """x [B, D + K] -> (x̂ [B, D + K], aux).

        aux: class_logits [B, K] (q(y|x)); m2_mean, m2_logvar, m2_z [B, K, Z] (q(z|x,y)
        and its sample for each class y); m2_x_logits [B, K, D] (p(x|y,z) for each y);
        m2_x_logvar [D] with a Gaussian likelihood; x_hat. x̂ is p(x|y,z)'s mean at the
        observed label, or averaged over q(y|x) when there is none, then q(y|x).
        """
        pixels, y_obs = self._split(x)
        b, k = x.shape[0], self.num_classes
        class_logits = self.classify(x, train=train)
        eye = jnp.broadcast_to(jnp.eye(k, dtype=x.dtype), (b, k, k))
        every = jnp.broadcast_to(pixels[:, None], (b, k, pixels.shape[-1]))
        # Every (example, class) pair as one batch of B·K rows.
        mean, logvar = self._posterior(every.reshape(b * k, -1), eye.reshape(b * k, k), train)
        if train or (self.sample_at_eval and self.has_rng("latent")):
            z = reparameterize(self.make_rng("latent"), mean, logvar)
        else:
            z = mean
        x_logits = self.decoder(jnp.concatenate([z, eye.reshape(b * k, k)], axis=-1), train=train)
        shape = lambda a: a.reshape(b, k, -1)
        mean, logvar, z, x_logits = shape(mean), shape(logvar), shape(z), shape(x_logits)
        probs = nn.softmax(class_logits)
        labelled = jnp.sum(y_obs, axis=-1, keepdims=True) > 0.5
        weights = jnp.where(labelled, y_obs, probs)
        pixels_hat = jnp.einsum("bk,bkd->bd", weights, self._mean(x_logits))
        x_hat = jnp.concatenate([pixels_hat, probs], axis=-1)
        aux = {
            "class_logits": class_logits,
            "m2_mean": mean,
            "m2_logvar": logvar,
            "m2_z": z,
            "m2_x_logits": x_logits,
            "x_hat": x_hat,
        }
        if self.likelihood == "gaussian_nll":
            aux["m2_x_logvar"] = self.param("x_logvar", nn.initializers.zeros, (pixels.shape[-1],))
        return x_hat, aux


def build(cfg, input_shape: Sequence[int], mlp_parts, field) -> M2:
    """M2 of `cfg` for examples of `input_shape` (D + K,): `encoder_widths` = (hidden...,
    Z), the decoder mirrored (or `decoder_widths`), the classifier `classifier_widths`.

    Args:
      mlp_parts: (widths, output_shape, encoder?) -> an MLP encoder or decoder with the
        config's activation and initializer (`aejax.models` passes its own).
      field: name -> config.model's value or its default.
    """
    k = field("num_classes")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"config.model.num_classes={k!r} must be an integer >= 2")
    if len(input_shape) != 1 or input_shape[0] <= k:
        raise ConfigError(
            f"config.model.name='m2' needs flat examples of D features then the {k} of the "
            f"label part (the 'partly_labelled' data source); the data's are shaped "
            f"{tuple(input_shape)}"
        )
    likelihood = field("likelihood")
    if likelihood not in LIKELIHOODS:
        raise ConfigError(
            f"config.model.likelihood={likelihood!r} is not known; valid: {', '.join(LIKELIHOODS)}"
        )
    d = input_shape[0] - k
    *hidden, latent = cfg.encoder_widths
    dec = tuple(reversed(hidden)) if cfg.decoder_widths is None else tuple(cfg.decoder_widths)
    return M2(
        classifier=mlp_parts((*field("classifier_widths"), k), None, True),
        encoder=mlp_parts((*hidden, 2 * latent), None, True),
        decoder=mlp_parts(dec, (d,), False),
        num_classes=k,
        latent_dim=latent,
        likelihood=likelihood,
        sample_at_eval=bool(field("sample_at_eval")),
    )
