"""Maximum mean discrepancy between the codes of a batch and draws from the prior N(0, I).

The regularizer of the Wasserstein autoencoder (Tolstikhin, Bousquet, Gelly & Schölkopf,
2018, "Wasserstein Auto-Encoders", Algorithm 2, WAE-MMD) and of the MMD-InfoVAE (Zhao,
Song & Ermon, 2019, "InfoVAE: Balancing Learning and Inference in Variational
Autoencoders"): it pulls the aggregate posterior q(z) = E_x q(z|x) towards the prior,
where the VAE's KL pulls each q(z|x).

The estimator is the unbiased U-statistic of Gretton et al. (2012), "A Kernel Two-Sample
Test", Lemma 6, for n codes z and n prior draws z̃:

    MMD²_u = Σ_{i≠j} k(z_i, z_j) / (n(n−1)) + Σ_{i≠j} k(z̃_i, z̃_j) / (n(n−1))
             − 2 Σ_{i,j} k(z_i, z̃_j) / n²,

as pythae 0.1.2 computes it (`WAE_MMD.loss_function`). It can be negative when the two
samples are close. The kernels are pythae's, with C = 2·d·σ² for a code of d units and
the bandwidth σ (`config.loss_options.mmd_imq.bandwidth`, default 1):

- `mmd_imq`: the inverse multiquadratics Σ_s sC / (sC + ‖a − b‖²) summed over the scales
  s ∈ (0.1, 0.2, 0.5, 1, 2, 5, 10) (pythae's default; Tolstikhin et al., §4, use the IMQ
  kernel C / (C + ‖a − b‖²) with C = 2·d·σ_z²);
- `mmd_rbf`: the Gaussian kernel exp(−‖a − b‖² / C).

Both are batch-level terms (the value couples every code of the batch; their registration
in `aejax.losses` says so, with the bandwidth's domain) and draw the prior sample with
their own key.
"""

import jax
import jax.numpy as jnp

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """‖a_i − b_j‖² for every pair: [n, d] and [m, d] -> [n, m].

    Written as a difference (not ‖a‖² + ‖b‖² − 2a·b), so that it is exactly 0 on the
    diagonal of a sample with itself and never negative.
    """
    return jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)


def imq_kernel(a: jax.Array, b: jax.Array, c: float, scales=IMQ_SCALES) -> jax.Array:
    """Σ_s sC / (sC + ‖a_i − b_j‖²): [n, d], [m, d] -> [n, m] (pythae's `imq_kernel`)."""
    d2 = squared_distances(a, b)
    return sum(s * c / (s * c + d2) for s in scales)


def rbf_kernel(a: jax.Array, b: jax.Array, c: float) -> jax.Array:
    """exp(−‖a_i − b_j‖² / C): [n, d], [m, d] -> [n, m] (pythae's `rbf_kernel`)."""
    return jnp.exp(-squared_distances(a, b) / c)


def mmd_unbiased(kernel, z: jax.Array, prior: jax.Array) -> jax.Array:
    """The U-statistic MMD²_u of the module docstring between two samples of n rows.

    Args:
      kernel: (a [n, d], b [m, d]) -> [n, m].
      z, prior: [n, d] each.
    Returns:
      a scalar. With n = 1 the within-sample sums are empty and count as 0 (an evaluation
      batch of one example), leaving −2 k(z, z̃).
    """
    n = z.shape[0]
    pairs = max(n * (n - 1), 1)
    off_diagonal = lambda k: (jnp.sum(k) - jnp.sum(jnp.diagonal(k))) / pairs
    return (
        off_diagonal(kernel(z, z))
        + off_diagonal(kernel(prior, prior))
        - 2.0 * jnp.mean(kernel(z, prior))
    )


def _prior_mmd(kernel_of_c, z: jax.Array, key: jax.Array, bandwidth: float) -> jax.Array:
    flat = z.reshape(z.shape[0], -1)
    prior = jax.random.normal(key, flat.shape, flat.dtype)
    c = 2.0 * flat.shape[1] * bandwidth**2
    value = mmd_unbiased(lambda a, b: kernel_of_c(a, b, c), flat, prior)
    # One value for the batch, repeated, so that total_loss's batch mean is the value itself.
    return jnp.broadcast_to(value, z.shape[:1])


def mmd_imq(*, z: jax.Array, key: jax.Array, bandwidth: float = 1.0, **_) -> jax.Array:
    """MMD²_u between the batch's codes and as many draws from N(0, I), IMQ kernel.

    The WAE-MMD regularizer (Tolstikhin et al., 2018) with pythae's multi-scale inverse
    multiquadratic kernel (see the module docstring): recipe "mse + 10*mmd_imq" is
    pythae's MNIST WAE.

    Args:
      z: codes, [B, ...] (flattened to d units).
      key: this term's PRNG key, for the prior draws.
      bandwidth: σ of C = 2·d·σ², > 0.
    Returns:
      [B]: the batch's MMD²_u repeated for every example.
    """
    return _prior_mmd(imq_kernel, z, key, bandwidth)


def mmd_rbf(*, z: jax.Array, key: jax.Array, bandwidth: float = 1.0, **_) -> jax.Array:
    """MMD²_u between the batch's codes and as many draws from N(0, I), Gaussian kernel.

    As `mmd_imq` with pythae's RBF kernel exp(−‖a − b‖² / C), C = 2·d·σ² (one scale).

    Args:
      z: codes, [B, ...].
      key: this term's PRNG key, for the prior draws.
      bandwidth: σ, > 0.
    Returns:
      [B]: the batch's MMD²_u repeated for every example.
    """
    return _prior_mmd(rbf_kernel, z, key, bandwidth)
