"""The Poincaré ball of curvature −c and the wrapped normal distribution on it, for the
Poincaré VAE (Mathieu, Le Lan, Maddison, Tomioka & Teh, 2019, "Continuous Hierarchical
Representations with Poincaré Variational Auto-Encoders", NeurIPS 2019).

The ball B_c^d = {x ∈ R^d : c‖x‖² < 1} with the metric λ_x² I, λ_x = 2 / (1 − c‖x‖²).
Möbius addition ⊕ (Ungar's gyrovector space) makes its isometries explicit: the geodesic
distance is d_c(x, y) = (2/√c) artanh(√c ‖−x ⊕ y‖), and the exponential and logarithmic
maps, parallel transport and gyroplanes follow (the paper's appendix B; pythae's
pvae_utils, after the authors' code and geoopt). c is a Python float > 0.

The wrapped normal N_W(μ, Σ) (the paper's section 3.2): v ~ N(0, Σ) in the tangent space
at the origin, in the coordinates where ‖v‖ is the Riemannian length (pythae divides by
λ_0 = 2 before transporting), moved to μ by parallel transport and mapped onto the ball by
exp_μ. Then z = μ ⊕ exp_0(v/2), d_c(μ, z) = ‖v‖, and its density with respect to the
Riemannian volume λ_z^d dz is

    log N_W(z; μ, Σ) = log N(v; 0, Σ) − (d − 1) log(sinh(√c ‖v‖) / (√c ‖v‖)),
    v = 2 log_0(−μ ⊕ z).
"""

import math

import jax
import jax.numpy as jnp

# Points are kept at norm ≤ (1 − BALL_EPS)/√c (pythae's artanh clamp, 1e-5): in float32
# 1 − c‖x‖² has no digits left closer to the boundary. Only draws farther than about
# 12/√c from the origin (‖v‖ > 12 at the origin) are moved.
BALL_EPS = 1e-5
# Squared norms are floored here before square roots and divisions: sqrt's derivative at 0
# is infinite.
_TINY = 1e-30
_LOG_2PI = math.log(2.0 * math.pi)


def _dot(x, y):
    return jnp.sum(x * y, axis=-1, keepdims=True)


def _norm(x):
    """‖x‖ over the last axis, keepdims, with a finite derivative at 0."""
    return jnp.sqrt(jnp.maximum(_dot(x, x), _TINY))


def _artanh(x):
    return jnp.arctanh(jnp.clip(x, -1.0 + BALL_EPS, 1.0 - BALL_EPS))


def lambda_x(x: jax.Array, c: float) -> jax.Array:
    """The conformal factor λ_x = 2 / (1 − c‖x‖²): [..., d] -> [..., 1]."""
    return 2.0 / jnp.maximum(1.0 - c * _dot(x, x), _TINY)


def mobius_add(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    """x ⊕_c y = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²).

    Not commutative nor associative; 0 is its identity and −x ⊕ (x ⊕ y) = y.
    Args: x, y: [..., d] points of the ball (broadcast). Returns [..., d].
    """
    xy, x2, y2 = _dot(x, y), _dot(x, x), _dot(y, y)
    num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
    den = 1.0 + 2.0 * c * xy + c * c * x2 * y2
    return num / jnp.maximum(den, _TINY)


def gyration(u: jax.Array, v: jax.Array, w: jax.Array, c: float) -> jax.Array:
    """gyr[u, v] w = −(u ⊕ v) ⊕ (u ⊕ (v ⊕ w)), in closed form (Ungar); the rotation that
    makes ⊕ gyrocommutative: u ⊕ v = gyr[u, v](v ⊕ u). All [..., d]."""
    u2, v2 = _dot(u, u), _dot(v, v)
    uv, uw, vw = _dot(u, v), _dot(u, w), _dot(v, w)
    a = -c * c * uw * v2 + c * vw + 2.0 * c * c * uv * vw
    b = -c * c * vw * u2 - c * uw
    d = 1.0 + 2.0 * c * uv + c * c * u2 * v2
    return w + 2.0 * (a * u + b * v) / jnp.maximum(d, _TINY)


def project(x: jax.Array, c: float) -> jax.Array:
    """x pulled inside the ball of radius (1 − BALL_EPS)/√c (unchanged if inside)."""
    max_norm = (1.0 - BALL_EPS) / math.sqrt(c)
    norm = _norm(x)
    return jnp.where(norm > max_norm, x / norm * max_norm, x)


def expmap0(u: jax.Array, c: float) -> jax.Array:
    """exp_0(u) = tanh(√c‖u‖) u / (√c‖u‖): tangent vectors at 0 to the ball. [..., d]."""
    sc = math.sqrt(c)
    norm = _norm(u)
    return jnp.tanh(sc * norm) * u / (sc * norm)


def logmap0(y: jax.Array, c: float) -> jax.Array:
    """log_0(y) = artanh(√c‖y‖) y / (√c‖y‖), the inverse of `expmap0`. [..., d]."""
    sc = math.sqrt(c)
    norm = _norm(y)
    return _artanh(sc * norm) * y / (sc * norm)


def expmap(x: jax.Array, u: jax.Array, c: float) -> jax.Array:
    """exp_x(u) = x ⊕ (tanh(√c λ_x ‖u‖ / 2) u / (√c‖u‖)): u ∈ T_x to the ball. [..., d]."""
    sc = math.sqrt(c)
    norm = _norm(u)
    second = jnp.tanh(0.5 * sc * lambda_x(x, c) * norm) * u / (sc * norm)
    return mobius_add(x, second, c)


def logmap(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    """log_x(y) = (2 / (√c λ_x)) artanh(√c‖−x ⊕ y‖) (−x ⊕ y)/‖−x ⊕ y‖, the inverse of
    `expmap` at x. [..., d]."""
    sc = math.sqrt(c)
    sub = mobius_add(-x, y, c)
    norm = _norm(sub)
    return 2.0 / (sc * lambda_x(x, c)) * _artanh(sc * norm) * sub / norm


def dist(x: jax.Array, y: jax.Array, c: float) -> jax.Array:
    """The geodesic distance d_c(x, y) = (2/√c) artanh(√c‖−x ⊕ y‖): [..., d] -> [...]."""
    sc = math.sqrt(c)
    return 2.0 / sc * _artanh(sc * _norm(mobius_add(-x, y, c)))[..., 0]


def transp(x: jax.Array, y: jax.Array, v: jax.Array, c: float) -> jax.Array:
    """Parallel transport of v ∈ T_x to T_y along the geodesic: gyr[y, −x] v · λ_x / λ_y.
    From the origin it is v (1 − c‖y‖²) (gyr[y, 0] is the identity). [..., d]."""
    return gyration(y, -x, v, c) * lambda_x(x, c) / lambda_x(y, c)


def log_sinhc(r: jax.Array) -> jax.Array:
    """log(sinh(r) / r) for r ≥ 0, elementwise: its Taylor series r²/6 − r⁴/180 + r⁶/2835
    − r⁸/37800 below 0.5 (the closed form cancels there: at r = 0.01 it lost 3% in
    float32), r + log1p(−e^{−2r}) − log(2r) above (no overflow)."""
    small = r < 0.5
    safe = jnp.where(small, 1.0, r)
    large = safe + jnp.log1p(-jnp.exp(-2.0 * safe)) - jnp.log(2.0 * safe)
    r2 = r * r
    series = r2 * (1 / 6 + r2 * (-1 / 180 + r2 * (1 / 2835 - r2 / 37800)))
    return jnp.where(small, series, large)


def _log_normal(v: jax.Array, scale: jax.Array) -> jax.Array:
    """log N(v; 0, diag scale²) summed over the last axis: [..., d] -> [...]."""
    return jnp.sum(-0.5 * jnp.square(v / scale) - jnp.log(scale) - 0.5 * _LOG_2PI, axis=-1)


def wrapped_normal_log_prob_tangent(v: jax.Array, scale: jax.Array, c: float) -> jax.Array:
    """log N_W of the point whose tangent coordinates (at μ, moved to the origin) are v.

    Args:
      v: [..., d] Riemannian tangent coordinates (d_c(μ, z) = ‖v‖).
      scale: [..., d] (or broadcastable) standard deviations σ of the tangent normal.
      c: the curvature.
    Returns:
      [...] log N(v; 0, diag σ²) − (d − 1) log(sinh(√c‖v‖) / (√c‖v‖)), in nats.
    """
    d = v.shape[-1]
    r = math.sqrt(c) * _norm(v)[..., 0]
    return _log_normal(v, scale) - (d - 1) * log_sinhc(r)


def wrapped_normal_log_prob(z: jax.Array, mu: jax.Array, scale: jax.Array, c: float):
    """log N_W(z; μ, diag σ²) with respect to the Riemannian volume λ_z^d dz.

    Args:
      z, mu: [..., d] points of the ball (broadcast); scale: σ, [..., d] or broadcastable.
    Returns:
      [...] log-densities in nats.
    """
    v = 2.0 * logmap0(mobius_add(-mu, z, c), c)
    return wrapped_normal_log_prob_tangent(v, scale, c)


def wrapped_normal_sample(key: jax.Array, mu: jax.Array, scale: jax.Array, c: float):
    """One reparameterized draw z ~ N_W(μ, diag σ²) and its log-density.

    v = σ ⊙ ε with ε ~ N(0, I); z = exp_μ(P_{0→μ}(v / λ_0)) = μ ⊕ exp_0(v / 2), kept
    inside the ball (`project`). log q is computed from v, which the map from v to z
    (before the projection) makes exact.

    Args:
      key: a PRNG key (the draw depends on it alone).
      mu: [d] a point of the ball; scale: [d] (or a scalar) σ > 0; c: the curvature.
    Returns:
      (z [d], log q scalar).
    """
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    v = scale * eps
    z = project(mobius_add(mu, expmap0(0.5 * v, c), c), c)
    return z, wrapped_normal_log_prob_tangent(v, scale, c)


def gyroplane_distance(z: jax.Array, p: jax.Array, a: jax.Array, c: float) -> jax.Array:
    """Signed distance from z to the gyroplane H = {x : ⟨−p ⊕ x, a⟩ = 0} through p with
    normal a ∈ T_p (Ganea et al., 2018, "Hyperbolic Neural Networks"; the paper's eq. 6):

        (1/√c) asinh(2√c ⟨−p ⊕ z, a⟩ / ((1 − c‖−p ⊕ z‖²) ‖a‖)).

    Written with matrix products only, never the [B, K, d] array of the −p_k ⊕ z_b: with
    −p ⊕ z = (α(−p) + (1 − c‖p‖²) z)/γ, α = 1 − 2c⟨p, z⟩ + c‖z‖², and the identity
    1 − c‖x ⊕ y‖² = (1 − c‖x‖²)(1 − c‖y‖²)/γ, γ cancels:

        asinh argument = 2√c ((1 − c‖p‖²)⟨z, a⟩ − α⟨p, a⟩) / ((1 − c‖p‖²)(1 − c‖z‖²)‖a‖).

    Args:
      z: [B, d] points; p, a: [K, d], K gyroplanes.
    Returns:
      [B, K] signed distances.
    """
    sc = math.sqrt(c)
    zp, za = z @ p.T, z @ a.T  # [B, K]
    z2, p2 = _dot(z, z), _dot(p, p)[:, 0]  # [B, 1], [K]
    pa = jnp.sum(p * a, axis=-1)
    a_norm = jnp.sqrt(jnp.maximum(_dot(a, a)[:, 0], _TINY))
    alpha = 1.0 - 2.0 * c * zp + c * z2
    beta = 1.0 - c * p2
    den = jnp.maximum(beta * (1.0 - c * z2) * a_norm, _TINY)
    return jnp.arcsinh(2.0 * sc * (beta * za - alpha * pa) / den) / sc
