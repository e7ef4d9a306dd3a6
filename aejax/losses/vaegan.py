"""The VAE-GAN's terms (Larsen, Sønderby, Larochelle & Winther, 2016, "Autoencoding beyond
pixels using a learned similarity metric"), with pythae 0.1.2's choices (`VAEGAN`).

The model (`aejax.models.vae_gan`) hands over the discriminator's features of x and x̂ at
its reconstruction layer and its logits on x, x̂ and decoded prior draws x_p. With
D = σ(logit) the discriminator's probability that an image is real:

- `feature_nll`: L_llike = ½ Σ_i (f(x)_i − f(x̂)_i)², the negative log-likelihood of the
  real features under a unit-variance Gaussian centred on the reconstruction's, without its
  constant (pythae: 0.5 · mse_loss(...).sum(-1)). The encoder's recipe is
  "kl_normal + feature_nll".
- `gan_discriminator`: L_GAN = −log D(x) − log(1 − D(x_p)) − r·log(1 − D(x̂)), the
  discriminator's cross-entropy. r = `reconstructed` (default 1) weighs the reconstructions
  as fakes, as in the paper; pythae 0.1.2 leaves them out (r = 0).
- `gan_decoder`: −L_GAN, the decoder's side of the minimax game (pythae's decoder loss is
  (1 − s)·L_llike − s·L_GAN with s = adversarial_loss_scale, the recipe
  "(1−s)*feature_nll_decoder + s*gan_decoder"; the paper's γ is (1 − s)/s).
- `feature_nll_decoder`: `feature_nll` again, for the decoder's phase (a term is named in
  one update only, so each logs under its own name).

pythae's equilibrium and margin: with the batch means b_r = −log D(x) and b_p =
−log(1 − D(x_p)), the discriminator is not updated when either is below equilibrium −
margin (it wins too easily), the decoder not when either is above equilibrium + margin (it
is losing), and both are when both would stop. Here a stopped update is a zero gradient of
its gated terms (the three above but `feature_nll`), not a skipped optimizer step: Adam's
momentum still moves the parameters a little. The gates read the whole batch, so these
terms are batch-level. A margin above any cross-entropy (say 1e6) turns the gates off.
"""

import jax
import jax.numpy as jnp

EQUILIBRIUM, MARGIN = 0.68, 0.4  # pythae 0.1.2's VAEGANConfig defaults
_NONNEG = (lambda v: v >= 0, ">= 0")
# Option domains, registered with the terms in `aejax.losses`.
GATE_DOMAINS = {"equilibrium": _NONNEG, "margin": _NONNEG}
GAN_DOMAINS = {**GATE_DOMAINS, "reconstructed": (lambda v: 0 <= v <= 1, "in [0, 1]")}
# The gated terms (batch-level) with their option domains.
GATED = {
    "feature_nll_decoder": GATE_DOMAINS,
    "gan_discriminator": GAN_DOMAINS,
    "gan_decoder": GAN_DOMAINS,
}


def feature_nll(*, feat_real: jax.Array, feat_recon: jax.Array, **_) -> jax.Array:
    """½ Σ (f(x) − f(x̂))² over an example's discriminator features.

    Args:
      feat_real: features of the real images, [B, ...].
      feat_recon: features of their reconstructions, same shape.
    Returns:
      [B] per-example negative log-likelihoods (without ½·log 2π per feature), in nats.
    """
    d = (feat_real - feat_recon).reshape(feat_real.shape[0], -1)
    return 0.5 * jnp.sum(jnp.square(d), axis=1)


def gates(
    d_real: jax.Array, d_prior: jax.Array, equilibrium: float, margin: float
) -> tuple[jax.Array, jax.Array]:
    """pythae's update flags from the batch: (update_discriminator, update_decoder), each a
    float32 scalar 1.0 or 0.0 (see the module's docstring).

    Args:
      d_real: logits on real images, [B].
      d_prior: logits on decoded prior draws, [B].
    """
    real = jnp.mean(jax.nn.softplus(-d_real))
    prior = jnp.mean(jax.nn.softplus(d_prior))
    low, high = equilibrium - margin, equilibrium + margin
    discriminator = ~((real < low) | (prior < low))
    decoder = ~((real > high) | (prior > high))
    neither = ~(discriminator | decoder)
    as_float = lambda b: jax.lax.stop_gradient((b | neither).astype(jnp.float32))
    return as_float(discriminator), as_float(decoder)


def _gated(value: jax.Array, gate: jax.Array) -> jax.Array:
    """`value` unchanged, its gradient times `gate` (0 or 1)."""
    return gate * value + jax.lax.stop_gradient((1.0 - gate) * value)


def _gan(d_real, d_recon, d_prior, reconstructed):
    """L_GAN per example: softplus(−l_real) + softplus(l_prior) + r·softplus(l_recon)."""
    fakes = jax.nn.softplus(d_prior) + reconstructed * jax.nn.softplus(d_recon)
    return jax.nn.softplus(-d_real) + fakes


def gan_discriminator(
    *,
    d_real: jax.Array,
    d_recon: jax.Array,
    d_prior: jax.Array,
    reconstructed: float = 1.0,
    equilibrium: float = EQUILIBRIUM,
    margin: float = MARGIN,
    **_,
) -> jax.Array:
    """L_GAN, the discriminator's binary cross-entropy, gated by pythae's equilibrium.

    −log D(x) − log(1 − D(x_p)) − r·log(1 − D(x̂)), computed from logits.

    Args:
      d_real, d_recon, d_prior: logits on x, x̂ and decoded prior draws, each [B].
      reconstructed: r, the weight of the reconstructions as fakes (0: pythae).
      equilibrium, margin: the gates' centre and half-width (`gates`).
    Returns:
      [B] per-example cross-entropies in nats (2·log 2 + r·log 2 at chance).
    """
    update, _ = gates(d_real, d_prior, equilibrium, margin)
    return _gated(_gan(d_real, d_recon, d_prior, reconstructed), update)


def gan_decoder(
    *,
    d_real: jax.Array,
    d_recon: jax.Array,
    d_prior: jax.Array,
    reconstructed: float = 1.0,
    equilibrium: float = EQUILIBRIUM,
    margin: float = MARGIN,
    **_,
) -> jax.Array:
    """−L_GAN (see `gan_discriminator`), gated by the decoder's flag: the decoder raises the
    discriminator's loss on its decodings (the saturating minimax form, as pythae and the
    paper; the −log D(x) part carries no gradient to the decoder).

    Returns:
      [B] per-example values in nats (negative).
    """
    _, update = gates(d_real, d_prior, equilibrium, margin)
    return _gated(-_gan(d_real, d_recon, d_prior, reconstructed), update)


def feature_nll_decoder(
    *,
    feat_real: jax.Array,
    feat_recon: jax.Array,
    d_real: jax.Array,
    d_prior: jax.Array,
    equilibrium: float = EQUILIBRIUM,
    margin: float = MARGIN,
    **_,
) -> jax.Array:
    """`feature_nll` for the decoder's update, gated by the decoder's flag.

    Returns:
      [B] per-example values in nats.
    """
    _, update = gates(d_real, d_prior, equilibrium, margin)
    return _gated(feature_nll(feat_real=feat_real, feat_recon=feat_recon), update)
