"""The Riemannian Hamiltonian VAE (Chadebec, Mantoux & Allassonnière, 2020,
"Geometry-Aware Hamiltonian Variational Auto-Encoder"), as pythae 0.1.2's `RHVAE`.

The HVAE (`aejax.models.hvae`) with a learned Riemannian metric on the latent space:

    G⁻¹(z) = Σ_i L_i L_iᵀ exp(−‖z − c_i‖² / T²) + λ I

with centroids c_i the encoder means μ(x_i) of training examples and L_i = L_ψ(x_i) lower
triangular with a positive diagonal, the output of a metric network (pythae's `Metric_MLP`:
one hidden layer of 400, the diagonal through exp). The momentum starts at
ρ_0 ~ N(0, G(z_0)/β_0) and the flow is K generalized leapfrog steps of
H(z, ρ) = −log p(x, z) + ½ log det G(z) + ½ ρᵀG⁻¹(z)ρ (`hamiltonian.generalized_leapfrog`),
each followed by tempering. With ρ_0 = L_0⁻ᵀγ_0/√β_0, G⁻¹(z_0) = L_0 L_0ᵀ, γ_0 ~ N(0, I), the
flow's determinant β_0^{d/2} cancels that of the tempering, and

    w = p(x|z_K) p(z_K) N(ρ_K; 0, G(z_K)) / [q(z_0|x) N(γ_0; 0, I) det G(z_0)^{1/2}]

is an unbiased importance weight of p(x) (up to the fixed-point iterations' residual, far
below float32's resolution at pythae's ε; tested). The "sampled" posterior's draws are z_K
with log_q = log q(z_0|x) + log N(γ_0; 0, I) + ½ log det G⁻¹(z_0) − log N(ρ_K; 0, G(z_K)).

Which centroids: in training (train=True), the batch's own (μ(x_i), L_ψ(x_i)), with their
gradients, as pythae's `forward`; every training step also writes the batch's means and
L matrices (without gradients) into a ring buffer of the last `capacity` examples, the
variable collection "rhvae_metric" (model state: updated in training, checkpointed and
resumed by the trainer, refused under pmap on several devices, whose devices would each
keep their own rows). Evaluation, `encode`, `posterior_samples` and the sampler use the
buffer's metric (pythae: the last 100 batches, refreshed at each epoch's end; here every
step). Slots not yet written hold L = 0 and add nothing.

Differences from pythae: in training pythae draws ρ_0 with the network's L_ψ(x) rather
than a factor of G(z_0), and its loss leaves out the density of ρ_0 (its log det G(z_0)
depends on the parameters); here ρ_0 and its density are those of the paper.

`riemannian_samples` is pythae's `RHVAESampler`: HMC on the density ∝ det G⁻¹(z)^{1/2},
chains started at buffer centroids (its defaults: 100 proposals of 15 leapfrog steps of
0.03, β_0 = 1). That density tends to λ^{d/2} > 0 far from the centroids, so it is not
normalizable: the chains stay near the data only because they are short.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import hamiltonian
from aejax.models.hvae import (
    HVAE,
    LOG_2PI,
    check_flag,
    check_number,
    hamiltonian_settings,
    log_normal,
)
from aejax.models.layers import Dense, flatten

# The fields of config.model the rhvae family reads (beside HVAE_FIELDS), with their
# defaults (merged into aejax.models.FAMILY_FIELDS). pythae 0.1.2's RHVAEConfig defaults.
RHVAE_FIELDS = {
    "metric_temperature": 1.5,  # rhvae: T of the metric's kernels
    "metric_regularization": 0.01,  # rhvae: λ > 0, the metric's ridge
    "metric_widths": (400,),  # rhvae: hidden widths of the metric network
    "metric_capacity": 10000,  # rhvae: centroids kept (pythae: 100 batches of 100)
    "fixed_point_steps": 3,  # rhvae: iterations of each implicit leapfrog equation
}
METRIC_COLLECTION = "rhvae_metric"


def metric_inverse(z, centroids, m, temperature, regularization):
    """G⁻¹(z) = Σ_i M_i exp(−‖z − c_i‖²/T²) + λI.

    Args:
      z: [N, d] codes.
      centroids: c, [C, d].
      m: M_i = L_i L_iᵀ, [C, d, d].
      temperature, regularization: T and λ.
    Returns:
      [N, d, d], symmetric positive definite (λ > 0).
    """
    hi = jax.lax.Precision.HIGHEST
    # ‖z − c‖² expanded: [N, C] without the [N, C, d] differences
    sq = (
        jnp.sum(z**2, -1)[:, None]
        - 2.0 * jnp.dot(z, centroids.T, precision=hi)
        + jnp.sum(centroids**2, -1)
    )
    weights = jnp.exp(-jnp.maximum(sq, 0.0) / temperature**2)
    eye = jnp.eye(z.shape[-1], dtype=z.dtype)
    return jnp.einsum("nc,cij->nij", weights, m, precision=hi) + regularization * eye


# The metric's factorizations are written in jax.numpy rather than with
# jnp.linalg.cholesky and solve_triangular: on CPU those call LAPACK kernels that split
# their batch over XLA's intra-op thread pool and wait on it, and two of them running at
# once can take every thread of a small pool and wait forever (seen on 2 cores: the
# RHVAE's IWAE bound hung at 0% CPU). d is a latent size, so d steps are cheap.


def cholesky(a: jax.Array) -> jax.Array:
    """The lower Cholesky factor L (a = LLᵀ) of symmetric positive definite matrices.

    Column j is (a[:, j] − L Lᵀ[:, j]) / √(that at row j), rows ≥ j (the Cholesky–Banachiewicz
    recurrence): columns of L not yet computed are zero, so the full product sums k < j only.

    Args:
      a: [..., d, d].
    Returns:
      [..., d, d], lower triangular with a positive diagonal.
    """
    d = a.shape[-1]
    rows = jnp.arange(d)

    def column(j, chol):
        v = jnp.take(a, j, axis=-1) - jnp.einsum("...ik,...k->...i", chol, jnp.take(chol, j, -2))
        pivot = jnp.sqrt(jnp.take(v, j, axis=-1))[..., None]
        col = jnp.where(rows >= j, v / pivot, 0.0)
        return jnp.where(rows == j, col[..., :, None], chol)

    return jax.lax.fori_loop(0, d, column, jnp.zeros_like(a))


def solve_upper(chol: jax.Array, b: jax.Array) -> jax.Array:
    """x with Lᵀx = b (back substitution), L lower triangular: [..., d, d], [..., d] -> [..., d]."""
    d = b.shape[-1]
    rows = jnp.arange(d)

    def entry(k, x):
        i = d - 1 - k  # the rows below i are solved; x's other entries are still zero
        col = jnp.take(chol, i, axis=-1)  # L[:, i], the row i of Lᵀ
        value = (jnp.take(b, i, -1) - jnp.sum(col * x, -1)) / jnp.take(col, i, -1)
        return jnp.where(rows == i, value[..., None], x)

    return jax.lax.fori_loop(0, d, entry, jnp.zeros_like(b))


def log_det_from_cholesky(chol: jax.Array) -> jax.Array:
    """log det(LLᵀ) = 2 Σ log L_ii: [..., d, d] -> [...]."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)


def log_det(a: jax.Array) -> jax.Array:
    """log det of symmetric positive definite matrices [..., d, d] -> [...], by Cholesky."""
    return log_det_from_cholesky(cholesky(a))


class MetricNet(nn.Module):
    """x -> L_ψ(x), lower triangular with the diagonal exp(·) > 0 (pythae's `Metric_MLP`).

    Attributes:
      widths: hidden widths (ReLU).
      latent_dim: d.
    """

    widths: Sequence[int]
    latent_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[B, ...] -> [B, d, d]."""
        h, d = flatten(x), self.latent_dim
        for w in self.widths:
            h = nn.relu(Dense(w)(h))
        diag = Dense(d, name="diag")(h)
        lower = Dense(d * (d - 1) // 2, name="lower")(h)
        rows, cols = jnp.tril_indices(d, -1)
        out = jnp.zeros((x.shape[0], d, d), h.dtype).at[:, rows, cols].set(lower)
        return out + jax.vmap(jnp.diag)(jnp.exp(diag))


class RHVAE(HVAE):
    """The HVAE with the Riemannian metric above (see the module docstring).

    Attributes (beside `HVAE`'s):
      metric_net: the `MetricNet`.
      temperature, regularization: T and λ.
      capacity: the centroids the buffer keeps.
      n_fixed: fixed-point iterations of each implicit leapfrog equation.
    """

    metric_net: nn.Module | None = None
    temperature: float = 1.5
    regularization: float = 0.01
    capacity: int = 10000
    n_fixed: int = 3

    def setup(self):
        super().setup()
        c, d = self.capacity, self.latent_dim
        var = lambda name, init: self.variable(METRIC_COLLECTION, name, init)
        self.centroids = var("centroids", lambda: jnp.zeros((c, d)))
        self.factors = var("factors", lambda: jnp.zeros((c, d, d)))
        self.position = var("position", lambda: jnp.zeros((), jnp.int32))  # next slot
        self.size = var("size", lambda: jnp.zeros((), jnp.int32))  # slots written

    def _record(self, mean, factors):
        """Writes the batch's rows into the ring buffer (the oldest rows go first)."""
        c = self.capacity
        mean, factors = jax.lax.stop_gradient((mean[-c:], factors[-c:]))
        b = mean.shape[0]
        # A scatter to distinct slots: the same result on every run (resume is exact).
        idx = (self.position.value + jnp.arange(b)) % c
        self.centroids.value = self.centroids.value.at[idx].set(mean)
        self.factors.value = self.factors.value.at[idx].set(factors)
        self.position.value = (self.position.value + b) % c
        self.size.value = jnp.minimum(self.size.value + b, c)

    def _metric(self, x, mean, *, train: bool):
        """(centroids [C, d], M = LLᵀ [C, d, d]): the batch's in training, else the buffer's."""
        if train or self.is_initializing():
            factors = self.metric_net(x)
        if train:
            # Written when the caller lets the state change (the trainer does).
            if self.is_mutable_collection(METRIC_COLLECTION) and not self.is_initializing():
                self._record(mean, factors)
        else:
            mean, factors = self.centroids.value, self.factors.value
        return mean, jnp.einsum("cij,ckj->cik", factors, factors)

    def _metric_fn(self, metric):
        centroids, m = metric
        return lambda z: metric_inverse(z, centroids, m, self.temperature, self.regularization)

    def _flow(self, x, z0, gamma, metric):
        """(z_0, γ_0) -> (z_K, log N(γ_0) + ½ log det G⁻¹(z_0) − log N(ρ_K; 0, G(z_K)))."""
        sqrt_betas = self._sqrt_betas()
        metric_inv = self._metric_fn(metric)
        grad_target = self._grad_log_target(x)
        grad_log_det = jax.grad(lambda z: 0.5 * jnp.sum(log_det(metric_inv(z))))
        grad_potential = lambda z: -(grad_target(z) + grad_log_det(z))
        chol = cholesky(metric_inv(z0))
        rho0 = solve_upper(chol, gamma) / sqrt_betas[0]  # L_0⁻ᵀγ_0/√β_0 ~ N(0, G(z_0)/β_0)
        log_det0 = log_det_from_cholesky(chol)

        def step(z, rho, g):
            return hamiltonian.generalized_leapfrog(
                grad_potential, metric_inv, z, rho, self.step_size, self.n_fixed, g
            )

        z, rho = hamiltonian.tempered_flow(step, z0, rho0, sqrt_betas)
        a = metric_inv(z)
        log_rho = -0.5 * (
            jnp.einsum("ni,nij,nj->n", rho, a, rho) - log_det(a) + z.shape[-1] * LOG_2PI
        )
        return z, log_normal(gamma) + 0.5 * log_det0 - log_rho

    def log_volume(self, z: jax.Array) -> jax.Array:
        """½ log det G⁻¹(z) of the buffer's metric, the log-density (up to a constant) of
        pythae's sampler: z [N, d] -> [N]."""
        metric_inv = self._metric_fn(self._metric(None, None, train=False))
        return 0.5 * log_det(metric_inv(z))

    def riemannian_samples(
        self, n: int, *, n_steps: int = 100, n_lf: int = 15, eps: float = 0.03
    ) -> jax.Array:
        """pythae's `RHVAESampler`: n HMC chains on ∝ det G⁻¹(z)^{1/2}, each started at a
        buffer centroid drawn uniformly, with the "latent" rng.

        Args:
          n: chains (samples).
          n_steps, n_lf, eps: proposals, leapfrog steps per proposal, step size (pythae's
            defaults 100, 15, 0.03).
        Returns:
          [n, d] codes; decode them with `decode`.
        """
        k_start, k_chain = jax.random.split(self.make_rng("latent"))
        start = jax.random.randint(k_start, (n,), 0, jnp.maximum(self.size.value, 1))
        z0 = self.centroids.value[start]
        return hamiltonian.hmc(self.log_volume, z0, k_chain, n_steps=n_steps, n_lf=n_lf, eps=eps)


def build_rhvae(cfg, vae) -> RHVAE:
    """An RHVAE around the encoder and decoder of `vae` (the MLP VAE that
    `aejax.models.build_vae` made from `cfg`), with `cfg`'s fields checked."""
    fields = RHVAE_FIELDS
    temperature = check_number(
        cfg, "metric_temperature", lambda v: v > 0, "a finite number > 0", fields
    )
    lbd = check_number(cfg, "metric_regularization", lambda v: v > 0, "a finite number > 0", fields)
    capacity = check_number(
        cfg, "metric_capacity", lambda v: 1 <= v <= 10**6, "an integer in [1, 10**6]", fields, True
    )
    n_fixed = check_number(
        cfg, "fixed_point_steps", lambda v: 1 <= v <= 100, "an integer in [1, 100]", fields, True
    )
    widths = cfg["metric_widths"] if "metric_widths" in cfg else fields["metric_widths"]
    try:
        widths = tuple(widths)
    except TypeError:
        widths = None
    if widths is None or not all(
        isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
    ):
        raise ConfigError(
            f"config.model.metric_widths={cfg.get('metric_widths')!r} must be a list of "
            "positive integers"
        )
    latent = vae.latent_shape[0]
    return RHVAE(
        encoder=vae.encoder,
        decoder=vae.decoder,
        latent_dim=latent,
        output_activation=vae.output_activation,
        learn_eps_lf=check_flag(cfg, "learn_eps_lf"),
        learn_beta_zero=check_flag(cfg, "learn_beta_zero"),
        sample_at_eval=vae.sample_at_eval,
        metric_net=MetricNet(widths, latent),
        temperature=float(temperature),
        regularization=float(lbd),
        capacity=int(capacity),
        n_fixed=int(n_fixed),
        **hamiltonian_settings(cfg, "rhvae"),
    )
