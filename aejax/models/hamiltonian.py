"""Hamiltonian flows of the Hamiltonian VAEs, as pure functions of plain callables.

Both flows move a code z and a momentum ρ (each [N, d]) by K steps of a volume-preserving
integrator of the Hamiltonian H(z, ρ), each followed by a tempering step ρ ← √(β_{k−1}/β_k) ρ:

- `leapfrog`: H = U(z) + ½‖ρ‖², U(z) = −log p(x, z) (Caterini, Doucet & Sejdinovic, 2018,
  "Hamiltonian Variational Auto-Encoder", Alg. 1);
- `generalized_leapfrog`: H = U(z) + ½ log det G(z) + ½ ρᵀG(z)⁻¹ρ with a position-dependent
  metric G (Girolami & Calderhead, 2011, eq. 16-18; Chadebec, Mantoux & Allassonnière,
  2020, "Geometry-Aware Hamiltonian Variational Auto-Encoder", eq. 9). Its two implicit
  equations are solved by a fixed number of fixed-point iterations (pythae's 3).

`tempering` gives pythae's quadratic schedule. The leapfrog's Jacobian determinant is 1;
the generalized leapfrog's is 1 when its implicit equations are solved exactly (with a few
fixed-point iterations at small ε the error is far below float32's resolution; see the
tests); tempering scales ρ by √(β_{k−1}/β_k) at step k, so the whole flow has determinant
Π_k (β_{k−1}/β_k)^{d/2} = β_0^{d/2} (β_K = 1).

`hmc` is plain Hamiltonian Monte Carlo on a density known up to a constant, the kernel of
pythae's `RHVAESampler`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

GradFn = Callable[[jax.Array], jax.Array]
MetricFn = Callable[[jax.Array], jax.Array]


def tempering(beta_zero, n_steps: int) -> jax.Array:
    """√β_k for k = 0..K of the quadratic schedule (Caterini et al., 2018, §4; pythae's
    `_tempering`): 1/√β_k = (1 − 1/√β_0)(k/K)² + 1/√β_0, so β_0 at the start and β_K = 1.

    Args:
      beta_zero: β_0 > 0 (a scalar, may be traced).
      n_steps: K ≥ 1.
    Returns:
      [K + 1] square roots of the inverse temperatures.
    """
    # float64 when JAX runs in 64 bits, else float32 (or a traced β_0's dtype)
    beta_zero = jnp.asarray(beta_zero, jnp.result_type(beta_zero, float))
    inv0 = 1.0 / jnp.sqrt(beta_zero)
    k = jnp.arange(n_steps + 1, dtype=beta_zero.dtype) / n_steps
    return 1.0 / ((1.0 - inv0) * k**2 + inv0)


def leapfrog(grad_log_target: GradFn, z, rho, eps, grad_z=None):
    """One leapfrog step of H(z, ρ) = −log π(z) + ½‖ρ‖².

    ρ' = ρ + ε/2 ∇log π(z); z' = z + ε ρ'; ρ'' = ρ' + ε/2 ∇log π(z').

    Args:
      grad_log_target: z [N, d] -> ∇_z log π(z) [N, d] (row by row).
      z, rho: [N, d].
      eps: the step size ε (a scalar).
      grad_z: ∇log π(z) when the caller has it (the previous step's last gradient).
    Returns:
      (z', ρ'', ∇log π(z')), each [N, d].
    """
    g = grad_log_target(z) if grad_z is None else grad_z
    rho = rho + 0.5 * eps * g
    z = z + eps * rho
    g = grad_log_target(z)
    return z, rho + 0.5 * eps * g, g


def _quad(metric_inv: MetricFn, z, rho):
    """½ ρᵀ G⁻¹(z) ρ summed over the rows (its gradient in z is row by row)."""
    return 0.5 * jnp.sum(jnp.einsum("ni,nij,nj->n", rho, metric_inv(z), rho))


def generalized_leapfrog(
    grad_potential: GradFn, metric_inv: MetricFn, z, rho, eps, n_fixed: int, grad_z=None
):
    """One generalized leapfrog step of H = φ(z) + ½ ρᵀA(z)ρ, A = G⁻¹ and
    φ(z) = U(z) + ½ log det G(z) = −log p(x, z) − ½ log det A(z).

    ρ' = ρ − ε/2 ∇_z H(z, ρ')                          (implicit in ρ')
    z' = z + ε/2 [A(z) ρ' + A(z') ρ']                  (implicit in z')
    ρ'' = ρ' − ε/2 ∇_z H(z', ρ')

    Each implicit equation is solved by `n_fixed` fixed-point iterations started at ρ
    (resp. z), as pythae does; ∇φ does not depend on ρ', so it is computed once per point.

    Args:
      grad_potential: z [N, d] -> ∇φ(z) [N, d] (row by row).
      metric_inv: z [N, d] -> A(z) = G⁻¹(z) [N, d, d], symmetric positive definite.
      z, rho: [N, d].
      eps: the step size (a scalar).
      n_fixed: fixed-point iterations of each implicit equation (≥ 1).
      grad_z: ∇φ(z) when the caller has it.
    Returns:
      (z', ρ'', ∇φ(z')), each [N, d].
    """
    quad_grad = jax.grad(lambda zz, r: _quad(metric_inv, zz, r))
    g = grad_potential(z) if grad_z is None else grad_z
    # Loops, not unrolled iterations: the program's size does not grow with n_fixed.
    rho_half = jax.lax.fori_loop(
        0, n_fixed, lambda _, r: rho - 0.5 * eps * (g + quad_grad(z, r)), rho
    )
    velocity = jnp.einsum("nij,nj->ni", metric_inv(z), rho_half)

    def z_iteration(_, z_new):
        return z + 0.5 * eps * (velocity + jnp.einsum("nij,nj->ni", metric_inv(z_new), rho_half))

    z_new = jax.lax.fori_loop(0, n_fixed, z_iteration, z)
    g = grad_potential(z_new)
    return z_new, rho_half - 0.5 * eps * (g + quad_grad(z_new, rho_half)), g


def tempered_flow(step, z, rho, sqrt_betas):
    """K integrator steps, each followed by ρ ← (√β_{k−1}/√β_k) ρ.

    Args:
      step: (z, ρ, carry) -> (z', ρ', carry'), one integrator step (`leapfrog` or
        `generalized_leapfrog` with its functions bound); carry is the gradient at z,
        None at the start.
      z, rho: [N, d] at k = 0.
      sqrt_betas: [K + 1] from `tempering`.
    Returns:
      (z_K, ρ_K), each [N, d].
    """
    carry = None
    for k in range(1, sqrt_betas.shape[0]):
        z, rho, carry = step(z, rho, carry)
        rho = rho * (sqrt_betas[k - 1] / sqrt_betas[k])
    return z, rho


def hmc(log_density: GradFn, z, key, *, n_steps: int, n_lf: int, eps: float):
    """Hamiltonian Monte Carlo with a unit mass: `n_steps` proposals of `n_lf` leapfrog
    steps of size ε, each accepted with probability min(1, exp(H − H')) (Metropolis), so
    the chain leaves π ∝ exp(log_density) invariant. pythae's `RHVAESampler` with its
    default β_0 = 1 (no tempering: with β_0 ≠ 1 its proposal is not reversible, so the
    chain would not keep π).

    Args:
      log_density: z [N, d] -> log π(z) [N] up to a constant (rows independent).
      z: [N, d] starting points (N chains).
      key: a PRNG key.
      n_steps, n_lf: proposals, leapfrog steps per proposal.
      eps: the leapfrog step size.
    Returns:
      [N, d], the chains' states after `n_steps` proposals.
    """
    grad = jax.grad(lambda zz: jnp.sum(log_density(zz)))

    def proposal(i, z):
        k_rho, k_acc = jax.random.split(jax.random.fold_in(key, i))
        rho = jax.random.normal(k_rho, z.shape, z.dtype)
        h0 = -log_density(z) + 0.5 * jnp.sum(rho**2, -1)
        z_new, rho_new, g = z, rho, None
        for _ in range(n_lf):
            z_new, rho_new, g = leapfrog(grad, z_new, rho_new, eps, g)
        h1 = -log_density(z_new) + 0.5 * jnp.sum(rho_new**2, -1)
        u = jax.random.uniform(k_acc, h0.shape, z.dtype)
        accept = jnp.log(u) < h0 - h1  # NaN (a blown-up proposal) rejects
        return jnp.where(accept[:, None], z_new, z)

    return jax.lax.fori_loop(0, n_steps, proposal, z)
