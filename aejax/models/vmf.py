"""The von Mises-Fisher distribution on the sphere S^{d-1} ⊂ R^d, for the hyperspherical VAE
(Davidson, Falorsi, De Cao, Kipf & Tomczak, 2018, "Hyperspherical Variational
Auto-Encoders", UAI 2018).

    vMF(z; μ, κ) = C_d(κ) exp(κ μᵀz),   C_d(κ) = κ^{d/2−1} / ((2π)^{d/2} I_{d/2−1}(κ))

a density with respect to the surface measure of the unit sphere, with mean direction
μ (‖μ‖ = 1) and concentration κ > 0; I_v is the modified Bessel function of the first kind.

The Bessel function of a general order (v = d/2 − 1: jax.scipy.special has only i0e, i1e)
is computed here in the exponentially scaled form log(I_v(x) e^{−x}): Debye's uniform
asymptotic expansion (DLMF 10.41.3, five correction terms) at an order N ≥ 20, where it is
accurate to float32 for every x > 0, then Miller's downward recurrence of the ratio
r_m = I_{m+1}/I_m down to v (stable: each step contracts errors). Both the log and the ratio
A_d(κ) = I_{d/2}(κ)/I_{d/2−1}(κ) = r_v(κ) = E[μᵀz] come out of one pass, and their
derivatives are written in closed form (custom JVP) in terms of themselves, so every order
of derivative is exact up to the values' rounding:

    d/dx log(I_v(x) e^{−x}) = r_v(x) + v/x − 1,      d/dx r_v(x) = 1 − (2v+1)/x · r_v − r_v².

Sampling follows Wood (1994), "Simulation of the von Mises Fisher distribution": the
component w = μᵀz by rejection from a Beta proposal, a uniform direction orthogonal to e_1,
then the Householder reflection that maps e_1 to μ.
"""

import functools
import math

import jax
import jax.numpy as jnp

# Debye's expansion is used at orders ≥ this, where its truncation error (below ~1e-8
# relative, checked against scipy in float64 in the tests) is under float32's rounding.
_DEBYE_MIN_ORDER = 20.0
# Wood's rejection sampler stops after this many proposals (and keeps the last one): with
# an acceptance rate above 0.5 at every κ and d (measured in the tests), never in practice.
MAX_PROPOSALS = 100

# The polynomials u_k(t) of Debye's expansion (DLMF 10.41.10; A&S 9.3.9-10), as t^k times a
# polynomial in t², lowest power first.
_U = (
    (3 / 24, -5 / 24),
    (81 / 1152, -462 / 1152, 385 / 1152),
    (30375 / 414720, -369603 / 414720, 765765 / 414720, -425425 / 414720),
    tuple(c / 39813120 for c in (4465125, -94121676, 349922430, -446185740, 185910725)),
    tuple(
        c / 6688604160
        for c in (
            1519035525,
            -49286948607,
            284499769554,
            -614135872350,
            566098157625,
            -188699385875,
        )
    ),
)


def _log_ive_debye(nu: float, x: jax.Array) -> jax.Array:
    """log(I_ν(x) e^{−x}) by Debye's expansion, for ν ≥ _DEBYE_MIN_ORDER and any x > 0.

    With r = √(ν² + x²) and t = ν/r: log I_ν(x) ≈ νη − ½ log(2πr) + log Σ_k u_k(t)/ν^k,
    η = r/ν + log(x/(ν + r)). νη − x is written as ν²/(r + x) − ν log((ν + r)/x), which
    cancels nothing at large x (log((ν + r)/x) is asinh(ν/x)).
    """
    r = jnp.sqrt(nu * nu + x * x)
    t = nu / r
    t2 = t * t
    series = jnp.zeros_like(x)
    for k, coeffs in enumerate(_U, start=1):
        poly = jnp.zeros_like(x)
        for c in reversed(coeffs):
            poly = poly * t2 + c
        series = series + poly * t**k / nu**k
    exponent = nu * nu / (r + x) - nu * jnp.arcsinh(nu / x)
    return exponent - 0.5 * jnp.log(2 * math.pi * r) + jnp.log1p(series)


def _log_ive_and_ratio_value(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    n = max(0, math.ceil(_DEBYE_MIN_ORDER - v))
    top = v + n
    log_i = _log_ive_debye(top, x)
    ratio = jnp.exp(_log_ive_debye(top + 1, x) - log_i)  # r_top
    for m in range(n, 0, -1):  # orders top, top − 1, ..., v + 1
        order = v + m
        ratio = 1.0 / (ratio + 2.0 * order / x)  # r_{order−1} = I_order / I_{order−1}
        log_i = log_i - jnp.log(ratio)  # log I_{order−1}
    return log_i, ratio


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def log_ive_and_ratio(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log(I_v(x) e^{−x}), I_{v+1}(x)/I_v(x)), elementwise, with exact derivatives in x.

    Args:
      v: the order, a Python float ≥ 0 (static: d/2 − 1 for the sphere S^{d−1}).
      x: [...] arguments > 0 (float32 is accurate to about 1e-6 relative up to x ~ 1e6).
    Returns:
      two arrays shaped like x.
    """
    return _log_ive_and_ratio_value(float(v), x)


@log_ive_and_ratio.defjvp
def _log_ive_and_ratio_jvp(v, primals, tangents):
    (x,), (dx,) = primals, tangents
    log_i, ratio = log_ive_and_ratio(v, x)
    d_log_i = (ratio + v / x - 1.0) * dx
    d_ratio = (1.0 - (2.0 * v + 1.0) / x * ratio - ratio * ratio) * dx
    return (log_i, ratio), (d_log_i, d_ratio)


def log_ive(v: float, x: jax.Array) -> jax.Array:
    """log(I_v(x) e^{−x}), elementwise; v ≥ 0 a Python float, x > 0. Shape of x."""
    return log_ive_and_ratio(v, x)[0]


def bessel_ratio(v: float, x: jax.Array) -> jax.Array:
    """I_{v+1}(x) / I_v(x), elementwise; v ≥ 0 a Python float, x > 0. Shape of x."""
    return log_ive_and_ratio(v, x)[1]


def mean_resultant_length(d: int, kappa: jax.Array) -> jax.Array:
    """A_d(κ) = I_{d/2}(κ) / I_{d/2−1}(κ) = E[μᵀz] of vMF(μ, κ) on S^{d−1}. Shape of κ."""
    return bessel_ratio(d / 2 - 1, kappa)


def log_sphere_area(d: int) -> float:
    """log of the surface area of the unit sphere S^{d−1} ⊂ R^d, 2π^{d/2} / Γ(d/2)."""
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


def log_normalizer(d: int, kappa: jax.Array) -> jax.Array:
    """log C_d(κ) = (d/2 − 1) log κ − (d/2) log 2π − log I_{d/2−1}(κ). Shape of κ."""
    v = d / 2 - 1
    log_i = log_ive(v, kappa) + kappa
    return v * jnp.log(kappa) - 0.5 * d * math.log(2 * math.pi) - log_i


def log_prob(z: jax.Array, mu: jax.Array, kappa: jax.Array) -> jax.Array:
    """log vMF(z; μ, κ) on S^{d−1}, with respect to the sphere's surface measure.

    Args:
      z, mu: [..., d] unit vectors (broadcast against each other).
      kappa: [...] concentrations > 0.
    Returns:
      [...] log-densities in nats. Written as κ(μᵀz − 1) + log C_d(κ) + κ, with the
      exponentially scaled Bessel function, so that no term grows with κ.
    """
    d = z.shape[-1]
    v = d / 2 - 1
    cos = jnp.sum(z * mu, axis=-1)
    const = v * jnp.log(kappa) - 0.5 * d * math.log(2 * math.pi) - log_ive(v, kappa)
    return kappa * (cos - 1.0) + const


def kl_to_uniform(d: int, kappa: jax.Array) -> jax.Array:
    """KL(vMF(μ, κ) ‖ U(S^{d−1})) = κ A_d(κ) + log C_d(κ) + log |S^{d−1}| (Davidson et
    al., 2018, eq. 9 and appendix B), in nats; it does not depend on μ. Shape of κ.

    Written as κ(A_d − 1) + [log C_d + κ], whose two brackets stay small at large κ.
    """
    v = d / 2 - 1
    log_i, ratio = log_ive_and_ratio(v, kappa)
    scaled_log_c = v * jnp.log(kappa) - 0.5 * d * math.log(2 * math.pi) - log_i
    return kappa * (ratio - 1.0) + scaled_log_c + log_sphere_area(d)


# --- sampling ------------------------------------------------------------------------------


def _wood_constants(d: int, kappa):
    """b and x0 of Wood's algorithm; b written without the cancellation of
    (−2κ + √(4κ² + (d−1)²))/(d−1) at large κ."""
    m1 = d - 1.0
    b = m1 / (2.0 * kappa + jnp.sqrt(4.0 * kappa * kappa + m1 * m1))
    return b, (1.0 - b) / (1.0 + b)


def _w_of_eps(eps, b):
    """(w, 1 − w) from a Beta draw ε: w = (1 − (1+b)ε) / (1 − (1−b)ε); 1 − w is written
    out (2bε / (1 − (1−b)ε)) because w is within rounding of 1 at large κ."""
    denom = 1.0 - (1.0 - b) * eps
    return (1.0 - (1.0 + b) * eps) / denom, 2.0 * b * eps / denom


def sample_eps(key: jax.Array, d: int, kappa: jax.Array) -> jax.Array:
    """The accepted Beta((d−1)/2, (d−1)/2) draw ε of Wood's rejection sampler, for one κ.

    Proposal i uses the key fold_in(key, i), so the draw depends on `key` alone. The loop is
    a `lax.while_loop` bounded by MAX_PROPOSALS (under vmap it runs until the slowest lane
    accepts; the others keep their value); κ enters it without gradient: ε is the
    reparameterization's noise, and w = h(ε, κ) is differentiated outside the loop.

    Args:
      key: a PRNG key; d: the ambient dimension (≥ 2); kappa: a scalar κ > 0.
    Returns:
      a scalar ε in (0, 1).
    """
    kappa = jax.lax.stop_gradient(jnp.asarray(kappa))
    b, x0 = _wood_constants(d, kappa)
    m1 = d - 1.0
    half = 0.5 * m1
    # log(1 − x0²) = log(4b/(1+b)²), the log-envelope's constant, without cancellation.
    log_1mx02 = jnp.log(4.0 * b) - 2.0 * jnp.log1p(b)

    def propose(i):
        k_eps, k_u = jax.random.split(jax.random.fold_in(key, i))
        eps = jax.random.beta(k_eps, half, half, dtype=kappa.dtype)
        w, one_minus_w = _w_of_eps(eps, b)
        # κw + (d−1) log(1 − x0·w) − c ≥ log u, with c = κx0 + (d−1) log(1 − x0²), and
        # κ(w − x0) = κ((1 − x0) − (1 − w)), 1 − x0·w = (1 − w) + w(1 − x0): no large terms.
        one_minus_x0 = 2.0 * b / (1.0 + b)
        log_ratio = kappa * (one_minus_x0 - one_minus_w) + m1 * (
            jnp.log(one_minus_w + w * one_minus_x0) - log_1mx02
        )
        accept = log_ratio >= jnp.log(jax.random.uniform(k_u, dtype=kappa.dtype))
        return eps, accept

    def cond(state):
        i, accepted, _ = state
        return jnp.logical_and(~accepted, i < MAX_PROPOSALS)

    def body(state):
        i, _, _ = state
        eps, accept = propose(i)
        return i + 1, accept, eps

    init = (jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.full((), 0.5, kappa.dtype))
    return jax.lax.while_loop(cond, body, init)[2]


def householder(z: jax.Array, mu: jax.Array) -> jax.Array:
    """The reflection that maps e_1 to μ, applied to z: z − 2u(uᵀz)/‖u‖², u = e_1 − μ (the
    identity when μ = e_1). z, mu: [..., d] -> [..., d]."""
    e1 = jnp.zeros(mu.shape[-1], mu.dtype).at[0].set(1.0)
    u = e1 - mu
    uu = jnp.sum(u * u, axis=-1, keepdims=True)
    safe = jnp.where(uu > 0, uu, 1.0)
    reflected = z - 2.0 * u * jnp.sum(u * z, axis=-1, keepdims=True) / safe
    return jnp.where(uu > 0, reflected, z)


def sample(key: jax.Array, mu: jax.Array, kappa: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One draw z ~ vMF(μ, κ) and its log-density, reparameterized (Davidson et al., 2018,
    section 3.2 and Algorithm 1).

    The gradient is that of z = H_μ((w, √(1−w²) v)) with the accepted ε and the direction v
    held fixed, w = h(ε, κ): the reparameterization part g_rep of the paper's gradient.
    The correction term g_cor (the score of the acceptance probability, Naesseth et al.,
    2017) is left out, as pythae and the authors' PyTorch code leave it out.

    Args:
      key: a PRNG key (the draw depends on it alone).
      mu: [d] unit mean direction, d ≥ 2.
      kappa: a scalar concentration > 0.
    Returns:
      (z [d], log vMF(z; μ, κ) scalar). log q is computed from w = μᵀz directly.
    """
    d = mu.shape[-1]
    k_eps, k_dir = jax.random.split(key)
    eps = sample_eps(k_eps, d, kappa)
    b, _ = _wood_constants(d, kappa)
    w, one_minus_w = _w_of_eps(eps, b)
    v = jax.random.normal(k_dir, (d - 1,), mu.dtype)
    v = v / jnp.linalg.norm(v)
    z = jnp.concatenate([w[None], jnp.sqrt(one_minus_w * (1.0 + w)) * v])
    v_order = d / 2 - 1
    log_q = (
        -kappa * one_minus_w
        + v_order * jnp.log(kappa)
        - 0.5 * d * math.log(2 * math.pi)
        - log_ive(v_order, kappa)
    )
    return householder(z, mu), log_q


def sample_uniform(key: jax.Array, shape, d: int, dtype=jnp.float32) -> jax.Array:
    """Uniform draws on S^{d−1}: normalized standard normals. Returns [*shape, d]."""
    g = jax.random.normal(key, (*shape, d), dtype)
    return g / jnp.linalg.norm(g, axis=-1, keepdims=True)
