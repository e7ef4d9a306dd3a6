"""The von Mises-Fisher distribution on the sphere S^{d-1} ⊂ R^d, for the hyperspherical VAE
(Davidson, Falorsi, De Cao, Kipf & Tomczak, 2018, "Hyperspherical Variational
Auto-Encoders", UAI 2018).

    vMF(z; μ, κ) = C_d(κ) exp(κ μᵀz),   C_d(κ) = κ^{d/2−1} / ((2π)^{d/2} I_{d/2−1}(κ))

a density with respect to the surface measure of the unit sphere, with mean direction
μ (‖μ‖ = 1) and concentration κ > 0; I_v is the modified Bessel function of the first kind.

The Bessel function of a general order (v = d/2 − 1: jax.scipy.special has only i0e, i1e)
is computed here in the exponentially scaled form log(I_v(x) e^{−x}): below x = 20 by its
power series (positive terms, nothing cancels), above by Debye's uniform asymptotic
expansion (DLMF 10.41.3, five correction terms) at an order N ≥ max(20, v + 8), accurate
to float32 there for every x, then Miller's downward recurrence of the ratio
r_m = I_{m+1}/I_m from N down to v (stable: each step contracts the errors). In float32 the
log and the ratio are within 1e-6 (relative) of scipy's for v up to 127 and x from 1e-3 to
1e5. Both the log and the ratio A_d(κ) = I_{d/2}(κ)/I_{d/2−1}(κ) = r_v(κ) = E[μᵀz] come out
of one pass, and their derivatives are written in closed form (custom JVP) in terms of
themselves, so every order of derivative is exact up to the values' rounding:

    d/dx log(I_v(x) e^{−x}) = r_v(x) + v/x − 1,      d/dx r_v(x) = 1 − (2v+1)/x · r_v − r_v².

Sampling follows Wood (1994), "Simulation of the von Mises Fisher distribution": the
component w = μᵀz by rejection from a Beta proposal, a uniform direction orthogonal to e_1,
then the Householder reflection that maps e_1 to μ.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

# Debye's expansion is used at orders ≥ this, where its truncation error (at most 3e-10
# relative, measured against scipy in float64) is under float32's rounding.
_DEBYE_MIN_ORDER = 20.0
# At least this many downward steps: each multiplies the error of the starting ratio (the
# difference of two Debye logs, large at high orders) by about r², small where it matters.
_MIN_STEPS = 8
# Below this x the power series is used (its terms peak near k = x/2 and are below 1e-12
# of the sum after _SERIES_TERMS of them).
_SERIES_BELOW = 20.0
_SERIES_TERMS = 40
# Wood's rejection sampler stops after this many proposals (and keeps the last one): with
# an acceptance rate of 0.66 or more at every κ and d (measured for d = 2..256, κ = 0.01..1e4)
# the chance of 100 rejections is below 1e-46.
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


def _debye_parts(nu: jax.Array, x: jax.Array):
    """Debye's expansion of log(I_ν(x) e^{−x}) in three parts, for ν ≥ _DEBYE_MIN_ORDER:
    (E, R, L) with log(I_ν e^{−x}) ≈ E − ½ log(2πR) + L; ν and x broadcast.

    With R = √(ν² + x²) and t = ν/R: log I_ν(x) ≈ νη − ½ log(2πR) + log Σ_k u_k(t)/ν^k,
    η = R/ν + log(x/(ν + R)). E = νη − x is written as ν²/(R + x) − ν asinh(ν/x), which
    cancels nothing at large x; L = log1p(Σ_{k≥1} u_k(t)/ν^k).
    """
    r = jnp.sqrt(nu * nu + x * x)
    t = nu / r
    t2 = t * t
    series = jnp.zeros_like(r)
    for k, coeffs in enumerate(_U, start=1):
        poly = jnp.zeros_like(r)
        for c in reversed(coeffs):
            poly = poly * t2 + c
        series = series + poly * (t / nu) ** k
    return nu * nu / (r + x) - nu * jnp.arcsinh(nu / x), r, jnp.log1p(series)


def _log_ive_and_ratio_series(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The power series S_v = Σ_k (x²/4)^k / (k! (v+1)_k) = I_v(x) Γ(v+1) / (x/2)^v at the
    orders v and v + 1 at once, _SERIES_TERMS terms (every term positive: nothing cancels).
    A rolled loop: unrolled, its terms took most of the sampler's compilation."""
    q = 0.25 * x[..., None] * x[..., None]
    orders = jnp.asarray([v, v + 1.0], x.dtype)

    def add_term(k, carry):
        term, total = carry
        term = term * q / (k * (orders + k))
        return term, total + term

    ones = jnp.ones_like(q * orders)
    total = jax.lax.fori_loop(1, _SERIES_TERMS, add_term, (ones, ones))[1]
    log_s = jnp.log(total)
    log_i = v * jnp.log(0.5 * x) - math.lgamma(v + 1.0) + log_s[..., 0] - x
    return log_i, 0.5 * x / (v + 1.0) * jnp.exp(log_s[..., 1] - log_s[..., 0])


def _log_ive_and_ratio_debye(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    n = max(_MIN_STEPS, math.ceil(_DEBYE_MIN_ORDER - v))
    top = v + n
    e, r, ell = _debye_parts(jnp.asarray([top, top + 1.0], x.dtype), x[..., None])
    log_i = e[..., 0] - 0.5 * jnp.log(2 * math.pi * r[..., 0]) + ell[..., 0]
    # log(I_{top+1}/I_top) part by part: the −½ log(2πR) terms, the largest at large x,
    # differ by −¼ log1p((2·top + 1)/R²) exactly.
    log_ratio = (
        (e[..., 1] - e[..., 0])
        - 0.25 * jnp.log1p((2 * top + 1) / jnp.square(r[..., 0]))
        + (ell[..., 1] - ell[..., 0])
    )

    # The recurrence r_{m−1} = 1/(r_m + 2m/x) from m = top down to v + 1 runs on s = 1 − r,
    # which cancels nothing: r is within rounding of 1 at large x, where the KL's κ(A − 1)
    # needs the digits of 1 − A. log I_{m−1} = log I_m − log r_{m−1}.
    def step(j, carry):
        s, log_i = carry
        c = 2.0 * (top - j) / x
        s = (c - s) / (1.0 - s + c)
        return s, log_i - jnp.log1p(-s)

    s, log_i = jax.lax.fori_loop(0, n, step, (-jnp.expm1(log_ratio), log_i))
    return log_i, 1.0 - s


def _log_ive_and_ratio_value(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Below _SERIES_BELOW the recurrence's sum of logs cancels to a few 1e-5 in float32
    # (log I_20(0.3) is about −80), while the power series converges in few terms.
    small = x < _SERIES_BELOW
    series = _log_ive_and_ratio_series(v, jnp.where(small, x, 1.0))
    debye = _log_ive_and_ratio_debye(v, jnp.where(small, _SERIES_BELOW, x))
    return tuple(jnp.where(small, a, b) for a, b in zip(series, debye, strict=True))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def log_ive_and_ratio(v: float, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log(I_v(x) e^{−x}), I_{v+1}(x)/I_v(x)), elementwise, with exact derivatives in x.

    Args:
      v: the order, a Python float ≥ 0 (static: d/2 − 1 for the sphere S^{d−1}).
      x: [...] arguments > 0.
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
    al., 2018), in nats; it does not depend on μ. Shape of κ.

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


def symmetric_beta(g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(ε, 1 − ε) with ε ~ Beta((d−1)/2, (d−1)/2), from g ~ N(0, I_d), d ≥ 2. Scalars.

    ε = (1 + y)/2 with y = g_1/‖g‖: the first coordinate of a uniform direction in R^d has
    density ∝ (1 − y²)^{(d−3)/2}, which is this Beta's, moved to [−1, 1]. (jax.random.beta
    draws two gammas in rejection loops of their own and took ten times longer to compile.)
    The smaller of ε and 1 − ε is ‖g_{2..d}‖² / (2‖g‖(‖g‖ + |g_1|)), with no cancellation:
    both tails matter to w = h(ε, κ).
    """
    rest2 = jnp.sum(g[1:] * g[1:])
    norm = jnp.sqrt(rest2 + g[0] * g[0])
    small = rest2 / jnp.maximum(2.0 * norm * (norm + jnp.abs(g[0])), 1e-30)
    small = jnp.where(norm > 0, small, 0.5)
    return jnp.where(g[0] < 0, small, 1.0 - small), jnp.where(g[0] < 0, 1.0 - small, small)


def _w_of_eps(eps, one_minus_eps, b):
    """(w, 1 − w, √(1 − w²)) from a Beta draw: w = (1 − (1+b)ε) / (1 − (1−b)ε). 1 − w =
    2bε/D and √(1 − w²) = 2√b √(ε(1 − ε))/D, D = (1 − ε) + bε, are written out: w is
    within rounding of 1 at large κ, and (1 − w)(1 + w) rounds below 0 near w = −1."""
    denom = one_minus_eps + b * eps
    one_minus_w = 2.0 * b * eps / denom
    radial = 2.0 * jnp.sqrt(b) * jnp.sqrt(eps * one_minus_eps) / denom
    return 1.0 - one_minus_w, one_minus_w, radial


def wood_proposal(key: jax.Array, d: int, kappa: jax.Array):
    """One proposal of Wood's rejection sampler: ((ε, 1 − ε), accepted), ε ~ Beta((d−1)/2,
    (d−1)/2) (`symmetric_beta`), accepted with probability target / envelope at
    w = h(ε, κ). Scalars.

    One normal draw of d + 1 numbers from `key` serves both: the first d give ε, the last,
    through the normal CDF, the uniform u of the acceptance test (log u = log Φ(g)); each
    random draw compiles to a hash of its own, and this loop's body is the sampler's
    largest piece of compilation.
    """
    b, _ = _wood_constants(d, kappa)
    m1 = d - 1.0
    g = jax.random.normal(key, (d + 1,), kappa.dtype)
    eps, one_minus_eps = symmetric_beta(g[:d])
    w, one_minus_w, _ = _w_of_eps(eps, one_minus_eps, b)
    # Accept if κw + (d−1) log(1 − x0·w) − c ≥ log u, c = κx0 + (d−1) log(1 − x0²), written
    # with κ(w − x0) = κ((1 − x0) − (1 − w)), 1 − x0·w = (1 − w) + w(1 − x0) and
    # 1 − x0² = 4b/(1 + b)²: no term grows with κ.
    one_minus_x0 = 2.0 * b / (1.0 + b)
    log_1mx02 = jnp.log(4.0 * b) - 2.0 * jnp.log1p(b)
    log_ratio = kappa * (one_minus_x0 - one_minus_w) + m1 * (
        jnp.log(one_minus_w + w * one_minus_x0) - log_1mx02
    )
    accept = log_ratio >= log_ndtr(g[d])
    return (eps, one_minus_eps), accept


def sample_eps(key: jax.Array, d: int, kappa: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The accepted draw (ε, 1 − ε) of Wood's rejection sampler, for one κ.

    Proposal i uses the key fold_in(key, i), so the draw depends on `key` alone. The loop is
    a `lax.while_loop` bounded by MAX_PROPOSALS (under vmap it runs until the slowest lane
    accepts; the others keep their value); κ enters it without gradient: ε is the
    reparameterization's noise, and w = h(ε, κ) is differentiated outside the loop.

    Args:
      key: a PRNG key; d: the ambient dimension (≥ 2); kappa: a scalar κ > 0.
    Returns:
      (ε, 1 − ε), scalars in [0, 1].
    """
    kappa = jax.lax.stop_gradient(jnp.asarray(kappa))

    def cond(state):
        i, accepted, _ = state
        return jnp.logical_and(~accepted, i < MAX_PROPOSALS)

    def body(state):
        i, _, _ = state
        eps, accept = wood_proposal(jax.random.fold_in(key, i), d, kappa)
        return i + 1, accept, eps

    half = jnp.full((), 0.5, kappa.dtype)
    init = (jnp.zeros((), jnp.int32), jnp.zeros((), bool), (half, half))
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
    Algorithm 1).

    The gradient is that of z = H_μ((w, √(1−w²) v)) with the accepted ε and the direction v
    held fixed, w = h(ε, κ): the reparameterization part g_rep of the paper's gradient.
    The correction term g_cor (the score of the acceptance probability, Naesseth et al.,
    2017) is left out, as pythae and the authors' PyTorch code leave it out. The gradient
    through μ is exact; the one in κ is biased low: averaged over 200000 draws, g_rep of
    E[w] = A_d(κ) was 20% below A_d'(κ) at d = 3, κ = 1, 10% at d = 8, κ = 5, 4% at
    d = 16, κ = 20 and 1% at κ = 100 (the closed-form `kl_vmf` has exact gradients).

    Args:
      key: a PRNG key (the draw depends on it alone).
      mu: [d] unit mean direction, d ≥ 2.
      kappa: a scalar concentration > 0.
    Returns:
      (z [d], log vMF(z; μ, κ) scalar). log q is computed from w = μᵀz directly.
    """
    d = mu.shape[-1]
    k_eps, k_dir = jax.random.split(key)
    eps, one_minus_eps = sample_eps(k_eps, d, kappa)
    b, _ = _wood_constants(d, kappa)
    w, one_minus_w, radial = _w_of_eps(eps, one_minus_eps, b)
    v = sample_uniform(k_dir, (), d - 1, mu.dtype)
    z = jnp.concatenate([w[None], radial * v])
    v_order = d / 2 - 1
    log_q = (
        -kappa * one_minus_w
        + v_order * jnp.log(kappa)
        - 0.5 * d * math.log(2 * math.pi)
        - log_ive(v_order, kappa)
    )
    return householder(z, mu), log_q


def sample_uniform(key: jax.Array, shape, d: int, dtype=jnp.float32) -> jax.Array:
    """Uniform draws on S^{d−1}: normalized standard normals (e_1 for the rare all-zero
    normal draw, which would divide 0 by 0). Returns [*shape, d]."""
    g = jax.random.normal(key, (*shape, d), dtype)
    norm = jnp.linalg.norm(g, axis=-1, keepdims=True)
    e1 = jnp.zeros(d, dtype).at[0].set(1.0)
    return jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1.0), e1)
