"""The von Mises-Fisher distribution of the hyperspherical VAE (aejax.models.vmf) and its KL
term: the log Bessel function and its derivatives against scipy, Debye's coefficients
against their recursion, the density against scipy and by quadrature on S^1 and S^2, the
sampler's distribution (moments, Kolmogorov-Smirnov tests), and the closed-form KL against
scipy's entropy and a Monte-Carlo estimate."""

import fractions
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from jax.test_util import check_grads
from numpy.polynomial import polynomial as P

from aejax import losses
from aejax.models import vmf

N = 4000  # draws per distribution test (one compiled sampler per dimension)


@functools.cache
def _sampler():
    # keys [n], μ [d], κ [n]: jit caches one program per d.
    return jax.jit(jax.vmap(vmf.sample, (0, None, 0)))


def _draws(d, kappas, seed=0):
    """N draws for each κ: (μ [d], z [len(κ), N, d] float64, log q [len(κ), N])."""
    mu = np.arange(1.0, d + 1)
    mu = jnp.asarray(mu / np.linalg.norm(mu), jnp.float32)
    keys = jax.random.split(jax.random.key(seed), N * len(kappas))
    kappa = jnp.repeat(jnp.asarray(kappas, jnp.float32), N)
    z, log_q = _sampler()(keys, mu, kappa)
    shape = (len(kappas), N)
    return np.asarray(mu), np.asarray(z, np.float64).reshape(*shape, d), log_q.reshape(shape)


def test_log_bessel_and_ratio_match_scipy_in_float32():
    x = np.logspace(-3, 5, 300)
    for v in (0.0, 0.5, 7.5, 127.0):
        log_i, ratio = jax.jit(functools.partial(vmf.log_ive_and_ratio, v))(
            jnp.asarray(x, jnp.float32)
        )
        ok = sp.ive(v + 1, x) > 0  # scipy underflows at v = 127 and small x
        ref = np.log(sp.ive(v, x), where=ok, out=np.zeros_like(x))
        scale = np.maximum(1, np.abs(ref[ok]))
        np.testing.assert_allclose(np.asarray(log_i)[ok] / scale, ref[ok] / scale, atol=2e-6)
        ref_ratio = sp.ive(v + 1, x[ok]) / sp.ive(v, x[ok])
        np.testing.assert_allclose(np.asarray(ratio)[ok], ref_ratio, rtol=2e-6)


def test_bessel_derivatives_match_scipy_and_check_grads():
    x = np.array([0.3, 4.0, 30.0, 700.0])
    with jax.enable_x64(True):
        xs = jnp.asarray(x)
        for v in (0.0, 7.0):
            # d/dx log(I_v e^{-x}) = I_v'/I_v − 1 (scipy's ivp is I_v')
            grad = jax.jit(jax.vmap(jax.grad(functools.partial(vmf.log_ive, v))))(xs)
            np.testing.assert_allclose(grad, sp.ivp(v, x) / sp.iv(v, x) - 1, rtol=1e-9)
        check_grads(
            jax.jit(functools.partial(vmf.log_ive_and_ratio, 0.5)), (xs,), order=2, modes=["rev"]
        )
        kl = jax.jit(functools.partial(vmf.kl_to_uniform, 16))
        check_grads(kl, (xs,), order=2, modes=["rev"])


def test_debye_coefficients_follow_their_recursion():
    """u_{k+1}(t) = ½t²(1−t²)u_k'(t) + ⅛∫₀ᵗ(1−5s²)u_k(s)ds (DLMF 10.41.11), in exact
    fractions, against the module's float coefficients."""
    u = [fractions.Fraction(1)]  # coefficients of u_k in powers of t, lowest first
    for k, coeffs in enumerate(vmf._U, start=1):
        prev = np.array(u, dtype=object)
        deriv = P.polyder(prev) if len(prev) > 1 else np.array([0], dtype=object)
        first = P.polymul(P.polymul([0, 0, fractions.Fraction(1, 2)], [1, 0, -1]), deriv)
        integral = P.polyint(P.polymul([1, 0, -5], prev) * fractions.Fraction(1, 8))
        u = list(P.polyadd(first, integral))
        assert all(c == 0 for i, c in enumerate(u) if i < k or (i - k) % 2)
        np.testing.assert_allclose(coeffs, [float(c) for c in u[k::2]], rtol=1e-12)


def test_log_density_matches_scipy_and_integrates_to_one():
    rng = np.random.default_rng(0)
    for d, kappa in ((2, 0.7), (3, 60.0), (10, 25.0)):
        mu = rng.normal(size=d)
        mu /= np.linalg.norm(mu)
        z = rng.normal(size=(6, d))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        got = vmf.log_prob(jnp.asarray(z), jnp.asarray(mu), jnp.float32(kappa))
        ref = st.vonmises_fisher(mu, kappa).logpdf(z)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    # On S^1 by the angle, on S^2 by the polar angles (surface element sin θ dθ dφ).
    theta = np.linspace(0, 2 * np.pi, 4001)[:-1]
    circle = jnp.asarray(np.stack([np.cos(theta), np.sin(theta)], -1))
    mu2 = jnp.asarray([np.cos(1.0), np.sin(1.0)])
    dens = np.exp(np.asarray(vmf.log_prob(circle, mu2, jnp.float32(3.0)), np.float64))
    assert dens.sum() * (2 * np.pi / len(theta)) == pytest.approx(1.0, abs=1e-5)
    t, p = np.meshgrid(np.linspace(0, np.pi, 801), np.linspace(0, 2 * np.pi, 1601)[:-1])
    sphere = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1)
    mu3 = jnp.asarray([0.48, -0.6, 0.64])
    dens = np.exp(np.asarray(vmf.log_prob(jnp.asarray(sphere), mu3, jnp.float32(7.0))))
    integral = np.trapezoid(np.sum(dens * np.sin(t), 0) * (2 * np.pi / 1600), t[0])
    assert integral == pytest.approx(1.0, abs=1e-4)


def _w_cdf(d, kappa):
    """The CDF of w = μᵀz, density ∝ exp(κw)(1 − w²)^{(d−3)/2} on [−1, 1], by quadrature
    in the angle θ = arccos w (density ∝ exp(κ cos θ) sin^{d−2} θ, smooth at the ends)."""
    theta = np.linspace(0, np.pi, 200001)
    f = np.exp(kappa * (np.cos(theta) - 1)) * np.sin(theta) ** (d - 2)
    upper = np.concatenate([[0], np.cumsum((f[1:] + f[:-1]) / 2)])  # P(angle ≤ θ)
    upper /= upper[-1]
    return lambda q: 1.0 - np.interp(np.arccos(np.clip(q, -1, 1)), theta, upper)


@pytest.mark.parametrize("d, kappas", [(2, (1.5, 40.0)), (3, (0.3, 10.0)), (16, (1.0, 40.0))])
def test_samples_have_the_vmf_distribution(d, kappas):
    mu, zs, log_qs = _draws(d, kappas)
    for kappa, z, log_q in zip(kappas, zs, log_qs, strict=True):
        np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
        # E[z] = A_d(κ) μ: the mean resultant length along μ, nothing across it.
        a = float(vmf.mean_resultant_length(d, jnp.float32(kappa)))
        assert a == pytest.approx(sp.ive(d / 2, kappa) / sp.ive(d / 2 - 1, kappa), rel=1e-5)
        w = z @ mu
        assert abs(w.mean() - a) < 4 * w.std() / np.sqrt(N), (w.mean(), a)
        across = z - np.outer(w, mu)
        assert np.all(np.abs(across.mean(0)) < 4 * across.std(0) / np.sqrt(N) + 1e-6)
        assert st.kstest(w, _w_cdf(d, kappa)).pvalue > 1e-3, kappa
        # Each draw's log q is the density at it.
        ref = vmf.log_prob(jnp.asarray(z[:50], jnp.float32), jnp.asarray(mu), jnp.float32(kappa))
        np.testing.assert_allclose(log_q[:50], ref, atol=2e-4)


def test_symmetric_beta_is_beta():
    g = jax.random.normal(jax.random.key(4), (N, 5))
    eps, one_minus_eps = jax.vmap(vmf.symmetric_beta)(g)
    np.testing.assert_allclose(eps + one_minus_eps, 1.0, atol=1e-6)
    assert st.kstest(np.asarray(eps), st.beta(2.0, 2.0).cdf).pvalue > 1e-3


def test_kl_closed_form_matches_scipy_entropy_and_monte_carlo():
    kappas = np.array([0.5, 5.0, 150.0, 3000.0])
    for d in (2, 16):
        kl = losses.get_loss("kl_vmf")(direction=jnp.ones((4, d)), kappa=jnp.asarray(kappas))
        log_area = np.log(2) + d / 2 * np.log(np.pi) - sp.gammaln(d / 2)
        assert vmf.log_sphere_area(d) == pytest.approx(log_area)
        ref = [log_area - st.vonmises_fisher(np.eye(d)[0], k).entropy() for k in kappas]
        np.testing.assert_allclose(kl, ref, rtol=3e-5, atol=1e-5)
    # The one-sample log q − log p of the sampler's draws averages to it.
    _, _, log_q = _draws(16, (1.0, 40.0), seed=1)
    estimate = np.asarray(log_q) + vmf.log_sphere_area(16)
    kl = vmf.kl_to_uniform(16, jnp.asarray([1.0, 40.0]))
    assert np.all(np.abs(estimate.mean(1) - kl) < 4 * estimate.std(1) / np.sqrt(N))


def test_reparameterized_gradient_of_the_direction():
    """E[cᵀz] = A_d(κ) cᵀμ with μ = θ/‖θ‖: the averaged gradient through the Householder
    reflection is A (I − μμᵀ) c / ‖θ‖. (The gradient in κ is the paper's g_rep only, which
    leaves out the score of the acceptance step: it is biased, about −20% at d = 3, κ = 1.)"""
    d, kappa, n = 5, 8.0, 20000
    theta = jnp.asarray([0.3, -1.2, 0.5, 0.9, -0.4])
    c = jnp.asarray([1.0, 0.5, -2.0, 0.3, 1.5])
    keys = jax.random.split(jax.random.key(2), n)

    def f(th, key):
        return c @ vmf.sample(key, th / jnp.linalg.norm(th), jnp.float32(kappa))[0]

    grads = np.asarray(jax.jit(jax.vmap(jax.grad(f), (None, 0)))(theta, keys))
    mu = np.asarray(theta / jnp.linalg.norm(theta))
    a = float(vmf.mean_resultant_length(d, jnp.float32(kappa)))
    expected = a * (np.eye(d) - np.outer(mu, mu)) @ np.asarray(c) / np.linalg.norm(theta)
    assert np.all(np.abs(grads.mean(0) - expected) < 4 * grads.std(0) / np.sqrt(n) + 1e-5)


def test_draws_depend_on_their_key_alone_and_the_loop_accepts_early():
    mu = np.arange(1.0, 4.0)
    mu = jnp.asarray(mu / np.linalg.norm(mu), jnp.float32)
    keys = jax.random.split(jax.random.key(5), N * 2)
    kappa = jnp.tile(jnp.asarray([1.0, 1e4, 3.0, 50.0, 1.0, 2.0, 1e3, 7.0]), N // 4)
    batched = _sampler()(keys, mu, kappa)[0]
    alone = vmf.sample(keys[3], mu, kappa[3])[0]
    np.testing.assert_allclose(batched[3], alone, rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(batched)))
    # Wood's envelope accepts at least 0.66 of its proposals (so 100 rejections never happen).
    props = jax.vmap(lambda k: vmf.wood_proposal(k, 3, jnp.float32(30.0)))(keys[:N])
    assert float(props[1].mean()) > 0.6
