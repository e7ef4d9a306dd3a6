"""The likelihood bounds of models whose posterior is not a diagonal Gaussian or whose prior
is not N(0, I) (aejax.models.interface: posterior = "sampled", log_prior): checked on a
linear-Gaussian model whose log p(x) is known in closed form, with the exact posterior as
the proposal, so that every importance weight is p(x)."""

import math
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import likelihood as lk
from aejax.errors import ConfigError
from aejax.models import interface

LOG_2PI = math.log(2 * math.pi)


def _problem(d_x=3, d_z=2, seed=0, diagonal=False):
    """z ~ N(m0, diag s0²), x | z ~ N(Wz + b, σ² I): the exact posterior and log p(x)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d_x, d_z))
    if diagonal:  # orthogonal columns: WᵀW, so the posterior's precision, is diagonal
        w = np.linalg.qr(w)[0] * np.array([1.5, 0.7])
    b, m0, s0, sigma2 = rng.standard_normal(d_x), rng.standard_normal(d_z), [0.8, 1.7], 0.3
    prior_cov = np.diag(np.square(s0))
    precision = np.linalg.inv(prior_cov) + w.T @ w / sigma2
    cov = np.linalg.inv(precision)
    x = rng.multivariate_normal(b + w @ m0, w @ prior_cov @ w.T + sigma2 * np.eye(d_x), 6)
    marginal = w @ prior_cov @ w.T + sigma2 * np.eye(d_x)
    diff = x - (b + w @ m0)
    maha = np.einsum("bi,ij,bj->b", diff, np.linalg.inv(marginal), diff)
    log_px = -0.5 * (maha + np.linalg.slogdet(marginal)[1] + d_x * LOG_2PI)
    # Posterior mean = cov (Wᵀ(x − b)/σ² + S0⁻¹ m0) = x @ A.T + c.
    a = cov @ w.T / sigma2
    c = cov @ (np.linalg.inv(prior_cov) @ m0 - w.T @ b / sigma2)
    t = lambda v: tuple(map(tuple, v)) if np.ndim(v) == 2 else tuple(v)
    fields = dict(
        w=t(w), b=t(b), m0=t(m0), s0=tuple(s0), a=t(a), c=t(c), chol=t(np.linalg.cholesky(cov))
    )
    return fields, np.asarray(x, np.float32), log_px, sigma2


class _Linear(interface.ModelInterface, nn.Module):
    """The linear-Gaussian model with the exact posterior and a prior N(m0, diag s0²)."""

    w: tuple
    b: tuple
    m0: tuple
    s0: tuple
    a: tuple
    c: tuple
    chol: tuple

    def latent_prior(self):
        return "shifted_normal"

    def log_prior(self, z):
        m0, s0 = jnp.asarray(self.m0), jnp.asarray(self.s0)
        return jnp.sum(-0.5 * (jnp.square((z - m0) / s0) + LOG_2PI) - jnp.log(s0), -1)

    def _mean(self, x):
        return x @ jnp.asarray(self.a).T + jnp.asarray(self.c)

    def encode(self, x, *, train=False):
        return self._mean(x)

    def decode(self, z, *, train=False):
        x_hat = z @ jnp.asarray(self.w).T + jnp.asarray(self.b)
        return x_hat, x_hat

    def __call__(self, x, *, train=False):
        z = self.encode(x)
        return self.decode(z)[0], {"z": z}


class _Sampled(_Linear):
    """Draws z = μ + Lε with the full posterior covariance LLᵀ (not a diagonal Gaussian)."""

    posterior: ClassVar[str] = "sampled"

    def posterior_samples(self, x, keys):
        chol = jnp.asarray(self.chol)
        eps = jax.vmap(jax.vmap(lambda k: jax.random.normal(k, (chol.shape[0],))))(keys)
        z = self._mean(x)[:, None] + eps @ chol.T
        log_det = jnp.sum(jnp.log(jnp.diag(chol)))
        log_q = -0.5 * jnp.sum(jnp.square(eps) + LOG_2PI, -1) - log_det
        return z, log_q


class _Diagonal(_Linear):
    """The diagonal Gaussian posterior (exact when WᵀW is diagonal) under a shifted prior."""

    posterior: ClassVar[str] = "gaussian"

    def encode_gaussian(self, x, *, train=False):
        logvar = 2 * jnp.log(jnp.diag(jnp.asarray(self.chol)))
        return self._mean(x), jnp.broadcast_to(logvar, (x.shape[0], logvar.size))


@pytest.mark.parametrize("cls", [_Sampled, _Diagonal])
def test_exact_posterior_under_a_learned_prior_gives_log_px(cls):
    fields, x, log_px, sigma2 = _problem(diagonal=cls is _Diagonal)
    model, variables = cls(**fields), {"params": {}}
    assert not lk.analytic_kl(model)
    likelihood = lk.get_likelihood("gaussian_nll", {"gaussian_nll": {"variance": sigma2}})
    key = jax.random.key(3)
    for k in (1, 7, 40):
        got = lk.iwae_bound(model, variables, x, key, k, likelihood, chunk=16)
        np.testing.assert_allclose(got, log_px, atol=2e-4, err_msg=f"k={k}")
    # Every weight is p(x): even the one-sample ELBO is log p(x), and its KL is log q − log p.
    bounds = lk.evaluate_bounds(model, variables, x, key, likelihood, k=5, batch_size=4)
    np.testing.assert_allclose(bounds["elbo"], log_px, atol=2e-4)
    np.testing.assert_allclose(bounds["log_px_given_z"] - bounds["kl"], bounds["elbo"], atol=1e-5)


def test_the_sampler_path_draws_what_the_gaussian_path_draws():
    """iwae_from_sampler with gaussian_sampler is iwae_from_fns: the same samples, k and
    chunk, on an encoder and a decoder that are not exact."""
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)

    def encode_fn(x):
        return jnp.tanh(x[:, :3]), -1.0 + 0.1 * x[:, :3]

    def log_lik_fn(x, z):
        return -0.5 * jnp.sum(jnp.square(x - jnp.sin(z @ w.T)), -1)

    x = jnp.asarray(rng.standard_normal((5, 4)), jnp.float32)
    keys = lk.example_keys(jax.random.key(0), jnp.arange(5))
    for k, chunk in ((1, 1), (10, 3), (10, 10)):
        by_fns = lk.iwae_from_fns(encode_fn, log_lik_fn, x, keys, k, chunk)
        sampler = lk.gaussian_sampler(encode_fn)
        by_sampler = lk.iwae_from_sampler(sampler, log_lik_fn, x, keys, k, chunk)
        np.testing.assert_allclose(by_sampler, by_fns, rtol=1e-6, err_msg=f"k={k}")
    log_px_z, kl = lk.elbo_from_fns(encode_fn, log_lik_fn, x, keys)
    mc_log_px_z, _ = lk.elbo_from_sampler(lk.gaussian_sampler(encode_fn), log_lik_fn, x, keys)
    np.testing.assert_allclose(mc_log_px_z, log_px_z, rtol=1e-6)  # sample 0 in both


def test_declared_posteriors_and_priors_are_checked():
    fields, x, _, _ = _problem()

    class NoSampler(_Linear):
        posterior: ClassVar[str] = "sampled"

    with pytest.raises(ConfigError, match="without a posterior_samples method"):
        interface.check(NoSampler(**fields), "my_ext:flow")

    class NoLogPrior(_Sampled):
        log_prior = None

    with pytest.raises(ConfigError, match="prior 'shifted_normal' has no log_prior"):
        lk.elbo(NoLogPrior(**fields), {"params": {}}, x, jax.random.key(0), "bce")
    assert interface.has_posterior(_Sampled(**fields))
    assert not interface.has_posterior(_Linear(**fields))


def test_kl_sample_averages_to_the_closed_form_kl():
    """The one-sample KL term, log q(z|x) − log p(z) at z ~ q, averages to kl_normal."""
    from aejax import losses

    rng = np.random.default_rng(0)
    mean, logvar = rng.standard_normal(3), rng.standard_normal(3) * 0.5
    n = 40000
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal((n, 3))
    log_q = np.sum(-0.5 * ((z - mean) ** 2 / np.exp(logvar) + logvar + LOG_2PI), -1)
    log_p = np.sum(-0.5 * (z**2 + LOG_2PI), -1)
    est = np.asarray(losses.get_loss("kl_sample")(log_q=log_q, log_prior=log_p))
    exact = float(losses.get_loss("kl_normal")(mean=mean[None], logvar=logvar[None])[0])
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(n), (est.mean(), exact)
