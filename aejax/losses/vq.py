"""The VQ-VAE's loss terms (van den Oord et al., 2017, eq. 3) and its codebook diagnostics.

The model (`aejax.models.vq`) returns the encoder's code vectors z_e and the chosen codebook
vectors z_q (which carry the codebook's gradient); the paper's loss is the recipe

    mse + vq_codebook + 0.25*vq_commitment      (β = 0.25, the paper's and pythae's)

and with the EMA codebook (`config.model.codebook_ema`) the codebook term is dropped:
"mse + 0.25*vq_commitment". Like the reconstruction terms, both sum over the code's
entries, so they are per-example squared distances (pythae averages them over entries
instead, which with its summed reconstruction error weighs them far less).

`vq_perplexity` and `vq_usage` are no losses but measurements of the batch, logged like a
term when the recipe names them with weight 0 ("... + 0*vq_perplexity + 0*vq_usage"):
the run then logs train/vq_perplexity and test/vq_perplexity. They read only the codes'
indices, so they add no gradient. Evaluation computes them per batch of
`config.eval_batch_size` and averages over the batches, weighted by their sizes.
"""

import jax
import jax.numpy as jnp


def _sum_entries(v: jax.Array) -> jax.Array:
    """[B, ...] -> [B]: sums every axis but the first."""
    return jnp.sum(v.reshape(v.shape[0], -1), axis=1)


def vq_codebook(*, z_e: jax.Array, z_q: jax.Array, **_) -> jax.Array:
    """The codebook term ‖sg[z_e] − e‖²: moves the chosen codebook vectors towards the
    encoder's outputs (van den Oord et al., 2017, eq. 3, second term).

    Args:
      z_e: the encoder's code vectors [B, ..., D] (no gradient flows to them here).
      z_q: the chosen codebook vectors, same shape.
    Returns:
      [B] squared distances summed over the code's positions and dimensions.
    """
    return _sum_entries(jnp.square(jax.lax.stop_gradient(z_e) - z_q))


def vq_commitment(*, z_e: jax.Array, z_q: jax.Array, **_) -> jax.Array:
    """The commitment term ‖z_e − sg[e]‖²: keeps the encoder's outputs near the codes they
    chose (eq. 3, third term; its weight is the paper's β).

    Args:
      z_e: the encoder's code vectors [B, ..., D].
      z_q: the chosen codebook vectors, same shape (no gradient flows to them here).
    Returns:
      [B] squared distances summed over the code's positions and dimensions.
    """
    return _sum_entries(jnp.square(z_e - jax.lax.stop_gradient(z_q)))


def code_frequencies(indices: jax.Array, num_codes: int) -> jax.Array:
    """The fraction of the code vectors that chose each code: [...] ints -> [K], sums to 1."""
    onehot = jax.nn.one_hot(indices.reshape(-1), num_codes, dtype=jnp.float32)
    return jnp.mean(onehot, axis=0)


def perplexity(indices: jax.Array, num_codes: int) -> jax.Array:
    """exp of the entropy (nats) of the codes' frequencies: K when every code is used
    equally, 1 when one code takes every vector. [...] ints -> scalar."""
    p = code_frequencies(indices, num_codes)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy)


def vq_perplexity(*, code_indices: jax.Array, codebook: jax.Array, **_) -> jax.Array:
    """The perplexity of the batch's codes (`perplexity`), for every example.

    Args:
      code_indices: [B, ...] ints, the code of each code vector.
      codebook: [K, D] (its K is read).
    Returns:
      [B], the batch's perplexity repeated (a batch-level measurement).
    """
    value = perplexity(code_indices, codebook.shape[0])
    return jnp.broadcast_to(value, code_indices.shape[:1])


def vq_usage(*, code_indices: jax.Array, codebook: jax.Array, **_) -> jax.Array:
    """The fraction of the K codes that at least one of the batch's code vectors chose.

    Args:
      code_indices: [B, ...] ints.
      codebook: [K, D].
    Returns:
      [B], the batch's fraction in [0, 1] repeated.
    """
    used = jnp.mean((code_frequencies(code_indices, codebook.shape[0]) > 0).astype(jnp.float32))
    return jnp.broadcast_to(used, code_indices.shape[:1])
