"""The loss terms of M2 (Kingma, Rezende, Mohamed & Welling, 2014, "Semi-Supervised
Learning with Deep Generative Models", Section 3.1.2, Eqs. 6-9), on partly labelled
examples x [B, D + K] (`aejax.data.semisup`) and the tensors of `aejax.models.m2`.

For one example and one class y, the negative labelled bound is

    −L(x, y) = −log p(x | y, z) + KL(q(z | x, y) ‖ N(0, I)) − log p(y),   z ~ q(z | x, y)

with p(y) = 1/K. A labelled example (its label part one-hot) scores −L at its label; an
unlabelled one (its label part zero) scores the negative unlabelled bound

    −U(x) = Σ_y q(y | x) · (−L(x, y)) − H(q(y | x)).

`m2_elbo` (Bernoulli p(x|y,z)) and `m2_elbo_gaussian` (Gaussian with the model's learned
log-variance per feature, for M1's codes) return that per example; `m2_classify` returns
−log q(y | x) on labelled examples and 0 on the others, the classification term the paper
adds with weight α (Eq. 9): the recipe "m2_elbo + α*m2_classify".
"""

import math

import jax
import jax.numpy as jnp
import optax


def _label_part(x: jax.Array, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """(pixels [B, D], observed label part [B, K]) of x [B, D + K]."""
    return x[:, :-num_classes], x[:, -num_classes:]


def m2_bound(
    nll: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    class_logits: jax.Array,
    y_obs: jax.Array,
) -> jax.Array:
    """The per-example negative bound of M2 from each class's reconstruction NLL.

    Args:
      nll: −log p(x | y, z) for each class y, [B, K].
      mean, logvar: q(z | x, y) for each class, [B, K, Z].
      class_logits: q(y | x)'s logits, [B, K].
      y_obs: the label part, one-hot (labelled) or zero (unlabelled), [B, K].
    Returns:
      [B] nats: −L(x, y_obs) where labelled, −U(x) where not.
    """
    k = class_logits.shape[-1]
    kl = 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar, axis=-1)
    neg_l = nll + kl + math.log(k)  # −log p(y) = log K for the uniform prior
    log_q = jax.nn.log_softmax(class_logits)
    q = jnp.exp(log_q)
    neg_u = jnp.sum(q * neg_l, axis=-1) + jnp.sum(q * log_q, axis=-1)  # − H(q) = Σ q log q
    labelled = jnp.sum(y_obs, axis=-1) > 0.5
    return jnp.where(labelled, jnp.sum(y_obs * neg_l, axis=-1), neg_u)


def m2_elbo(
    *,
    x: jax.Array,
    class_logits: jax.Array,
    m2_mean: jax.Array,
    m2_logvar: jax.Array,
    m2_x_logits: jax.Array,
    **_,
) -> jax.Array:
    """M2's negative bound with a Bernoulli p(x | y, z) (pixels in [0, 1]).

    Args:
      x: [B, D + K] partly labelled examples.
      class_logits: [B, K]; m2_mean, m2_logvar: [B, K, Z]; m2_x_logits: [B, K, D], the
        decoder's logits for each class (`aejax.models.m2`).
    Returns:
      [B] nats: −L(x, y) for labelled examples, −U(x) for the others.
    """
    k = class_logits.shape[-1]
    pixels, y_obs = _label_part(x, k)
    nll = jnp.sum(optax.sigmoid_binary_cross_entropy(m2_x_logits, pixels[:, None]), axis=-1)
    return m2_bound(nll, m2_mean, m2_logvar, class_logits, y_obs)


def m2_elbo_gaussian(
    *,
    x: jax.Array,
    class_logits: jax.Array,
    m2_mean: jax.Array,
    m2_logvar: jax.Array,
    m2_x_logits: jax.Array,
    m2_x_logvar: jax.Array,
    **_,
) -> jax.Array:
    """M2's negative bound with a Gaussian p(x | y, z) = N(decoder output, diag exp(s)),
    s [D] learned (`model.likelihood="gaussian_nll"`), for real-valued x such as M1's codes.

    Args:
      as `m2_elbo`, and m2_x_logvar: [D] the log-variance per feature.
    Returns:
      [B] nats.
    """
    k = class_logits.shape[-1]
    pixels, y_obs = _label_part(x, k)
    sq = jnp.square(pixels[:, None] - m2_x_logits) * jnp.exp(-m2_x_logvar)
    nll = 0.5 * jnp.sum(sq + m2_x_logvar + math.log(2 * math.pi), axis=-1)
    return m2_bound(nll, m2_mean, m2_logvar, class_logits, y_obs)


def m2_classify(*, x: jax.Array, class_logits: jax.Array, **_) -> jax.Array:
    """−log q(y | x) at the observed label of labelled examples, 0 for unlabelled ones.

    Args:
      x: [B, D + K] partly labelled examples; class_logits: [B, K] q(y | x)'s logits.
    Returns:
      [B] nats.
    """
    _, y_obs = _label_part(x, class_logits.shape[-1])
    return -jnp.sum(y_obs * jax.nn.log_softmax(class_logits), axis=-1)


def m2_labelled(*, x: jax.Array, class_logits: jax.Array, **_) -> jax.Array:
    """1 for a labelled example, 0 for the others (a measurement: its batch mean, logged
    with weight 0, is the fraction of labelled rows the run sees), [B]."""
    return jnp.sum(_label_part(x, class_logits.shape[-1])[1], axis=-1)
