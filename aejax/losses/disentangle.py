"""Terms of the disentangling VAEs: β-TC-VAE's decomposed KL and the annealed capacity.

**β-TC-VAE** (Chen, Li, Grosse & Duvenaud, 2018, "Isolating Sources of Disentanglement
in Variational Autoencoders", eq. 2) splits the VAE's averaged KL into

    E_x KL(q(z|x) ‖ p(z)) = I_q(x; z) + KL(q(z) ‖ Π_j q(z_j)) + Σ_j KL(q(z_j) ‖ p(z_j))
                            (index-code MI)  (total correlation)  (dimension-wise KL)

and weights them α, β, γ: the recipe "bce + tc_mutual_information +
6*tc_total_correlation + tc_dimwise_kl" is their β = 6 with α = γ = 1. The aggregate
posterior's densities at each example's sample z_i are estimated by minibatch-weighted
sampling (their §C.1) over the batch of M examples drawn from a dataset of N:

    log q(z_i)      ≈ logsumexp_m log q(z_i | x_m) − log(N·M)
    log q(z_ij)     ≈ logsumexp_m log q(z_ij | x_m) − log(N·M)     (one dimension j)

with N the training split's size, which the trainer passes to terms as `num_train`
(never typed in a config). Each term is a batch-level term: its value at example i uses
every example of the batch.

**Annealed capacity** (Burgess et al., 2018, "Understanding disentangling in β-VAE",
eq. 8): γ·|KL − C| with the capacity C raised linearly from 0 to `capacity_max` nats over
`anneal_steps` training steps (the trainer passes `step`); the KL is the batch mean, as
in their objective and in disentanglement_lib's AnnealedVAE, so this too is a batch-level
term (its value, the same for every example, is γ·|mean KL − C| with γ the recipe weight).
pythae's DisentangledBetaVAE takes each example's own |KL − C| (`kl_capacity_example`)
and raises C once an epoch (the option `stair_steps` of both terms).
"""

import math

import jax
import jax.numpy as jnp

from aejax.losses.terms import kl_normal

_LOG_2PI = math.log(2.0 * math.pi)


def _flat(v: jax.Array) -> jax.Array:
    return v.reshape(v.shape[0], -1)


def gaussian_log_density(z: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mean, exp(logvar)) per dimension (broadcasting), in nats."""
    return -0.5 * (jnp.square(z - mean) * jnp.exp(-logvar) + logvar + _LOG_2PI)


def kl_decomposition(
    z: jax.Array, mean: jax.Array, logvar: jax.Array, num_train: int
) -> dict[str, jax.Array]:
    """The three parts of β-TC-VAE's KL at each example's sample, by minibatch-weighted
    sampling (the module docstring).

    Args:
      z: the samples z_i ~ q(z|x_i), [M, ...latent].
      mean, logvar: the posteriors' parameters, same shape.
      num_train: N, the dataset's size (≥ 1).
    Returns:
      dict of [M] arrays in nats: "mutual_information" (log q(z_i|x_i) − log q(z_i)),
      "total_correlation" (log q(z_i) − Σ_j log q(z_ij)) and "dimwise_kl"
      (Σ_j log q(z_ij) − log p(z_i)); their sum is log q(z_i|x_i) − log p(z_i).
    """
    z, mean, logvar = _flat(z), _flat(mean), _flat(logvar)
    m = z.shape[0]
    log_nm = jnp.log(jnp.asarray(num_train, jnp.float32) * m)
    # [M (sample i), M (posterior of example m), D]
    pairwise = gaussian_log_density(z[:, None], mean[None], logvar[None])
    log_qz_given_x = jnp.sum(gaussian_log_density(z, mean, logvar), axis=1)
    log_qz = jax.nn.logsumexp(jnp.sum(pairwise, axis=2), axis=1) - log_nm
    log_qz_dims = jnp.sum(jax.nn.logsumexp(pairwise, axis=1) - log_nm, axis=1)
    log_pz = jnp.sum(-0.5 * (jnp.square(z) + _LOG_2PI), axis=1)
    return {
        "mutual_information": log_qz_given_x - log_qz,
        "total_correlation": log_qz - log_qz_dims,
        "dimwise_kl": log_qz_dims - log_pz,
    }


def _check_num_train(num_train) -> None:
    if isinstance(num_train, int) and num_train < 1:
        raise ValueError(f"num_train={num_train}: β-TC-VAE's terms need the dataset's size")


def tc_mutual_information(*, z, mean, logvar, num_train, **_) -> jax.Array:
    """β-TC-VAE's index-code mutual information term, log q(z|x) − log q(z), [B]."""
    _check_num_train(num_train)
    return kl_decomposition(z, mean, logvar, num_train)["mutual_information"]


def tc_total_correlation(*, z, mean, logvar, num_train, **_) -> jax.Array:
    """β-TC-VAE's total correlation term, log q(z) − Σ_j log q(z_j), [B] (its recipe
    weight is the paper's β)."""
    _check_num_train(num_train)
    return kl_decomposition(z, mean, logvar, num_train)["total_correlation"]


def tc_dimwise_kl(*, z, mean, logvar, num_train, **_) -> jax.Array:
    """β-TC-VAE's dimension-wise KL term, Σ_j log q(z_j) − log p(z), [B]."""
    _check_num_train(num_train)
    return kl_decomposition(z, mean, logvar, num_train)["dimwise_kl"]


def capacity(step, capacity_max: float, anneal_steps: int, stair_steps: int = 0) -> jax.Array:
    """C(step) = capacity_max · min(1, s / anneal_steps), in nats, with s = step; or, with
    `stair_steps` k > 0, s = k·⌈(step + 1) / k⌉, C held over each stair of k steps at its
    value at the stair's end (pythae's DisentangledBetaVAE raises C once an epoch, to
    C_max · min(1, epoch / (warmup_epoch + 1)) with epochs counted from 1: k the steps of an
    epoch and anneal_steps (warmup_epoch + 1)·k)."""
    # The trainer's evaluation after e epochs passes step e·k: the next stair's C.
    s = jnp.asarray(step, jnp.float32)
    if stair_steps:
        s = jnp.ceil((s + 1.0) / stair_steps) * stair_steps
    return capacity_max * jnp.minimum(1.0, s / anneal_steps)


def kl_capacity(
    *,
    mean,
    logvar,
    step,
    capacity_max: float = 25.0,
    anneal_steps: int = 100_000,
    stair_steps: int = 0,
    **_,
) -> jax.Array:
    """|mean_b KL(q(z|x_b) ‖ N(0, I)) − C(step)|, the same for every example, [B].

    The defaults are disentanglement_lib's AnnealedVAE (C_max = 25 nats over 100,000
    steps, raised every step: `stair_steps` 0, see `capacity`); the recipe weight is the
    paper's γ (1000 in Burgess et al.'s dSprites runs).
    """
    kl = kl_normal(mean=mean, logvar=logvar)
    value = jnp.abs(jnp.mean(kl) - capacity(step, capacity_max, anneal_steps, stair_steps))
    return jnp.broadcast_to(value, kl.shape)


def kl_capacity_example(
    *,
    mean,
    logvar,
    step,
    capacity_max: float = 25.0,
    anneal_steps: int = 100_000,
    stair_steps: int = 0,
    **_,
) -> jax.Array:
    """Each example's own |KL(q(z|x_b) ‖ N(0, I)) − C(step)|, [B]: pythae's
    DisentangledBetaVAE, whose mean over the batch is at least `kl_capacity`'s value. Its
    MNIST setting (C_max 30, warmup_epoch 25) at 600 steps an epoch: capacity_max 30,
    anneal_steps 15600, stair_steps 600."""
    kl = kl_normal(mean=mean, logvar=logvar)
    return jnp.abs(kl - capacity(step, capacity_max, anneal_steps, stair_steps))


def factor_tc(*, d_joint: jax.Array, **_) -> jax.Array:
    """FactorVAE's total-correlation estimate: the discriminator's logit on the example's
    code, log D(z) / (1 − D(z)) ≈ log q(z) / Π_j q(z_j) (Kim & Mnih, 2018, eq. 3), [B]."""
    return d_joint


def factor_discriminator(*, d_joint: jax.Array, d_permuted: jax.Array, **_) -> jax.Array:
    """FactorVAE's discriminator loss, −log D(z) − log(1 − D(z̃)) with z̃ the shuffled
    codes, from logits: softplus(−d_joint) + softplus(d_permuted), [B]."""
    return jax.nn.softplus(-d_joint) + jax.nn.softplus(d_permuted)
