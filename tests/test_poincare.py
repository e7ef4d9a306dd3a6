"""The Poincaré ball of the Poincaré VAE (aejax.models.poincare): Möbius addition's
identities, the maps against each other, the distance and the gyroplane distance against
independent numpy computations, parallel transport's isometry, and the wrapped normal
(its density integrates to 1 over a 2-D ball, its draws pulled back are the tangent
normal, check_grads)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats as st
from jax.test_util import check_grads

from aejax.models import poincare as pb


def _points(n, d, c, seed, radius=0.9, dtype=jnp.float32):
    """n random points of the ball of curvature −c, up to `radius` of its radius."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x *= (rng.uniform(0, radius, (n, 1)) ** (1 / d)) / np.linalg.norm(x, axis=1, keepdims=True)
    return jnp.asarray(x / np.sqrt(c), dtype)


def _np_mobius_add(x, y, c):
    """Möbius addition in float64 numpy (Ungar's formula)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xy, x2, y2 = np.sum(x * y, -1, keepdims=True), np.sum(x * x, -1), np.sum(y * y, -1)
    num = (1 + 2 * c * xy + c * y2[..., None]) * x + (1 - c * x2[..., None]) * y
    return num / (1 + 2 * c * xy + c * c * (x2 * y2)[..., None])


def _np_dist(x, y, c):
    """d_c(x, y) = arccosh(1 + 2c‖x − y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))) / √c, in float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    num = 2 * c * np.sum((x - y) ** 2, -1)
    den = (1 - c * np.sum(x * x, -1)) * (1 - c * np.sum(y * y, -1))
    return np.arccosh(1 + num / den) / np.sqrt(c)


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_mobius_addition_identities(c):
    with jax.enable_x64(True):
        _mobius_identities(c)


def _mobius_identities(c):
    a, b, w = (_points(20, 3, c, seed, dtype=jnp.float64) for seed in (0, 1, 2))
    zero = jnp.zeros_like(a)
    np.testing.assert_allclose(pb.mobius_add(a, zero, c), a, atol=1e-10)
    np.testing.assert_allclose(pb.mobius_add(zero, a, c), a, atol=1e-10)
    np.testing.assert_allclose(pb.mobius_add(-a, a, c), zero, atol=1e-10)
    # Left cancellation, and gyrocommutativity a ⊕ b = gyr[a, b](b ⊕ a).
    np.testing.assert_allclose(pb.mobius_add(-a, pb.mobius_add(a, b, c), c), b, atol=1e-10)
    ab, ba = pb.mobius_add(a, b, c), pb.mobius_add(b, a, c)
    np.testing.assert_allclose(ab, pb.gyration(a, b, ba, c), atol=1e-10)
    # gyr[a, b] w = −(a ⊕ b) ⊕ (a ⊕ (b ⊕ w)), and it is a rotation (keeps norms).
    direct = pb.mobius_add(-ab, pb.mobius_add(a, pb.mobius_add(b, w, c), c), c)
    np.testing.assert_allclose(pb.gyration(a, b, w, c), direct, atol=1e-10)
    norms = np.linalg.norm(pb.gyration(a, b, w, c), axis=-1)
    np.testing.assert_allclose(norms, np.linalg.norm(w, axis=-1), rtol=1e-10)
    # The ball is closed under ⊕: 1 − c‖a ⊕ b‖² = (1 − c‖a‖²)(1 − c‖b‖²)/(1 + 2c⟨a,b⟩ +
    # c²‖a‖²‖b‖²), which the gyroplane distance uses; ⊕ is Euclidean addition as c → 0.
    a2, b2, dot = (np.sum(u * v, -1) for u, v in ((a, a), (b, b), (a, b)))
    expected = (1 - c * a2) * (1 - c * b2) / (1 + 2 * c * dot + c * c * a2 * b2)
    np.testing.assert_allclose(1 - c * np.sum(np.square(ab), -1), expected, rtol=1e-10)
    assert np.all(c * np.sum(np.square(ab), -1) < 1)
    small = pb.mobius_add(a * 1e-3, b * 1e-3, c)
    np.testing.assert_allclose(small, (a + b) * 1e-3, atol=1e-8)


@pytest.mark.parametrize("c", [1.0, 0.7])
def test_maps_distance_and_transport(c):
    with jax.enable_x64(True):
        _maps(c)


def _maps(c):
    x, y = _points(30, 4, c, 3, dtype=jnp.float64), _points(30, 4, c, 4, dtype=jnp.float64)
    u = jnp.asarray(np.random.default_rng(5).normal(size=(30, 4)))
    np.testing.assert_allclose(pb.expmap(x, pb.logmap(x, y, c), c), y, atol=1e-10)
    # (u/λ_x has the Riemannian length ‖u‖: below the 12/√c that BALL_EPS allows.)
    short = u / pb.lambda_x(x, c)
    np.testing.assert_allclose(pb.logmap(x, pb.expmap(x, short, c), c), short, atol=1e-10)
    np.testing.assert_allclose(pb.expmap0(pb.logmap0(y, c), c), y, atol=1e-10)
    np.testing.assert_allclose(pb.expmap(jnp.zeros_like(u), u, c), pb.expmap0(u, c), atol=1e-10)
    np.testing.assert_allclose(pb.dist(x, y, c), _np_dist(x, y, c), rtol=1e-10)
    # The distance to exp_x(u) is u's Riemannian length λ_x‖u‖.
    far = pb.expmap(x, 0.2 * u, c)
    length = pb.lambda_x(x, c)[:, 0] * np.linalg.norm(0.2 * u, axis=-1)
    np.testing.assert_allclose(_np_dist(x, far, c), length, rtol=1e-10)
    # Transport keeps Riemannian lengths and, from the origin, scales by 1 − c‖y‖².
    moved = pb.transp(x, y, u, c)
    before = pb.lambda_x(x, c)[:, 0] * np.linalg.norm(u, axis=-1)
    after = pb.lambda_x(y, c)[:, 0] * np.linalg.norm(moved, axis=-1)
    np.testing.assert_allclose(after, before, rtol=1e-10)
    from_zero = pb.transp(jnp.zeros_like(y), y, u, c)
    np.testing.assert_allclose(
        from_zero, u * (1 - c * jnp.sum(y * y, -1, keepdims=True)), atol=1e-10
    )


def test_gyroplane_distance_is_the_distance_to_the_nearest_point_of_the_gyroplane():
    """In 2-D the gyroplane through p with normal a is the geodesic {p ⊕ t a⊥}: its
    distance to z, minimized over t with the numpy distance, is the closed form's."""
    c = 0.8
    p = _points(4, 2, c, 6, radius=0.6)
    a = jnp.asarray(np.random.default_rng(7).normal(size=(4, 2)), jnp.float32)
    z = _points(5, 2, c, 8, radius=0.8)
    closed = np.asarray(pb.gyroplane_distance(z, p, a, c))
    for k in range(4):
        perp = np.asarray([-a[k, 1], a[k, 0]]) / np.linalg.norm(a[k])
        limit = (1 - 1e-9) / np.sqrt(c)
        for i in range(5):

            def dist_at(t, k=k, i=i, perp=perp):
                return _np_dist(z[i], _np_mobius_add(p[k], t * perp, c), c)

            best = scipy.optimize.minimize_scalar(dist_at, bounds=(-limit, limit), method="bounded")
            side = np.sign(np.dot(_np_mobius_add(-p[k], z[i], c), a[k]))
            assert closed[i, k] == pytest.approx(side * best.fun, abs=2e-4), (i, k)


@pytest.mark.parametrize(
    "c, mu, scale", [(1.0, (0.3, -0.2), (0.4, 0.7)), (0.5, (0.0, 0.6), (0.5, 0.5))]
)
def test_wrapped_normal_density_integrates_to_one_on_the_ball(c, mu, scale):
    """∫ N_W(z) λ_z² dz over the disk (the density is with respect to the Riemannian
    volume λ_z^d dz), on a 401² grid; without its (sinh r / r)^{d−1} factor the same sum
    is 1.117 at c = 1."""
    radius = 1 / np.sqrt(c)
    g = np.linspace(-radius, radius, 401)
    zx, zy = np.meshgrid(g, g)
    inside = zx**2 + zy**2 < radius**2 * (1 - 1e-4)
    z = jnp.asarray(np.stack([zx[inside], zy[inside]], -1), jnp.float32)

    @jax.jit
    def weighted(z):
        log_q = pb.wrapped_normal_log_prob(z, jnp.asarray(mu), jnp.asarray(scale), c)
        v = 2 * pb.logmap0(pb.mobius_add(-jnp.asarray(mu), z, c), c)
        log_n = jnp.sum(
            jax.scipy.stats.norm.logpdf(v / jnp.asarray(scale)) - jnp.log(jnp.asarray(scale)), -1
        )
        volume = 2 * jnp.log(pb.lambda_x(z, c)[:, 0])
        return jnp.exp(log_q + volume), jnp.exp(log_n + volume)

    with_jacobian, without = (
        np.sum(np.asarray(w, np.float64)) * (g[1] - g[0]) ** 2 for w in weighted(z)
    )
    assert with_jacobian == pytest.approx(1.0, abs=1e-4)
    assert abs(without - 1.0) > 0.01


def test_wrapped_normal_draws_pull_back_to_the_tangent_normal():
    c, d, n = 0.7, 3, 4000
    scale = jnp.asarray([0.3, 0.8, 1.5])
    keys = jax.random.split(jax.random.key(0), n)

    @jax.jit
    def draws(mu):
        z, log_q = jax.vmap(pb.wrapped_normal_sample, (0, None, None, None))(keys, mu, scale, c)
        v = 2 * pb.logmap0(pb.mobius_add(-mu, z, c), c)
        at_z = pb.wrapped_normal_log_prob(z, mu, scale, c)
        return z, log_q, v, at_z, log_q - pb.wrapped_normal_log_prob(z, 0 * mu, 1.0, c)

    mu = jnp.asarray([0.4, -0.5, 0.3])
    z, log_q, v, at_z, _ = map(np.asarray, draws(mu))
    assert np.all(c * np.sum(np.square(z), -1) < 1)
    # v = 2 log_0(−μ ⊕ z) inverts the sampler: its coordinates are N(0, σ²).
    for i in range(d):
        assert st.kstest(v[:, i] / float(scale[i]), "norm").pvalue > 1e-3, i
    # d_c(μ, z) = ‖v‖, and each draw's log q is the density at it.
    np.testing.assert_allclose(_np_dist(mu, z, c), np.linalg.norm(v, axis=-1), rtol=1e-3)
    np.testing.assert_allclose(log_q, at_z, atol=2e-3)
    # At μ = 0 the one-sample KL to N_W(0, I) averages to the KL of the tangent normals
    # (the Jacobian terms cancel there).
    kl = np.asarray(draws(jnp.zeros(d))[4])
    exact = float(np.sum(0.5 * (scale**2 - 1) - np.log(scale)))
    assert abs(kl.mean() - exact) < 4 * kl.std() / np.sqrt(n)


def test_gradients_pass_check_grads():
    with jax.enable_x64(True):
        c = 0.9
        z = _points(3, 3, c, 9, radius=0.7, dtype=jnp.float64)
        mu, scale = jnp.asarray([0.1, 0.2, -0.3]), jnp.asarray([0.5, 0.9, 1.2])
        f = jax.jit(lambda z, mu, s: pb.wrapped_normal_log_prob(z, mu, s, c))
        check_grads(f, (z, mu, scale), order=1, modes=["rev"])
        p, a = _points(2, 3, c, 10, radius=0.5, dtype=jnp.float64), jnp.ones((2, 3)) * 0.7
        g = jax.jit(lambda z, p, a: pb.gyroplane_distance(z, p, a, c))
        check_grads(g, (z, p, a), order=1, modes=["rev"])
    # log(sinh r / r) on both sides of its switch, against numpy in float64.
    r = np.array([1e-4, 1e-2, 0.3, 0.49, 0.51, 5.0, 60.0])
    np.testing.assert_allclose(pb.log_sinhc(jnp.asarray(r)), np.log(np.sinh(r) / r), rtol=2e-6)
