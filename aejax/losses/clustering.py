"""The clustering AAE's terms on its categorical head (Makhzani et al., 2016, "Adversarial
Autoencoders", §6): the GAN losses of `adv_discriminator` and `adv_generator`, on the
logits of the discriminator that tells the softmax outputs y = q(y|x) from one-hot draws
of the categorical prior (`aejax.models.aae_cluster`). The style's discriminator uses the
AAE's own terms, which read "d_real" and "d_fake"."""

import jax

from aejax.losses.terms import adv_discriminator, adv_generator


def adv_cat_discriminator(*, d_real_y: jax.Array, d_fake_y: jax.Array, **_) -> jax.Array:
    """The category discriminator's loss: −log D(y') − log(1 − D(y)), in nats.

    D = σ(logit) is its probability that y came from the prior; y' is a one-hot draw, y the
    encoder's softmax output. softplus(−l') + softplus(l), stable at any logit.

    Args:
      d_real_y: logits on one-hot prior draws, [B].
      d_fake_y: logits on the encoder's softmax outputs, [B].
    Returns:
      [B] per-example binary cross-entropies.
    """
    return adv_discriminator(d_real=d_real_y, d_fake=d_fake_y)


def adv_cat_generator(*, d_fake_y: jax.Array, **_) -> jax.Array:
    """The encoder's loss against the category discriminator: −log D(y), y = q(y|x), the
    non-saturating GAN loss, softplus(−l), in nats.

    Args:
      d_fake_y: logits on the encoder's softmax outputs, [B].
    Returns:
      [B] per-example losses.
    """
    return adv_generator(d_fake=d_fake_y)
