"""The Hamiltonian VAE: the tempering schedule by hand, the leapfrog's volume and
reversibility (jacfwd), the flow's determinant β_0^{d/2}, the extended-space density
normalized on a grid, unbiased importance weights on a linear-Gaussian model whose p(x) is
known, gradients, bad settings, the presets, and a tiny run on the digits."""

import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads
from test_denoising import load_config

from aejax import likelihood as lk
from aejax import losses, models, train
from aejax.errors import ConfigError
from aejax.models import hamiltonian, interface
from aejax.models.hvae import HVAE

LOG_2PI = math.log(2 * math.pi)


def test_tempering_schedule_by_hand():
    got = np.asarray(hamiltonian.tempering(0.3, 3))
    inv0 = 1 / math.sqrt(0.3)
    want = [1 / ((1 - inv0) * (k / 3) ** 2 + inv0) for k in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0] == pytest.approx(math.sqrt(0.3)) and got[-1] == pytest.approx(1.0)


def _log_target(z):
    """A non-Gaussian log density with coupled coordinates, [N, d] -> [N]."""
    return -jnp.sum(0.25 * z**4 + 0.5 * z**2, -1) + jnp.sin(z[:, 0] * z[:, 1])


_GRAD = jax.grad(lambda z: jnp.sum(_log_target(z)))


def _as_map(step, d):
    """(z, ρ) of one point as one vector [2d] -> the step's image [2d]."""

    def f(v):
        z, rho = step(v[None, :d], v[None, d:])
        return jnp.concatenate([z[0], rho[0]])

    return f


def test_leapfrog_is_volume_preserving_and_reversible():
    with jax.enable_x64(True):
        d = 3
        v = jnp.asarray(np.random.default_rng(0).standard_normal(2 * d))
        step = lambda z, rho: hamiltonian.leapfrog(_GRAD, z, rho, 0.3)[:2]
        jac = jax.jit(jax.jacfwd(_as_map(step, d)))(v)
        assert abs(np.linalg.det(np.asarray(jac)) - 1) < 1e-12
        assert np.abs(np.asarray(jac) - np.eye(2 * d)).max() > 0.1  # a real move
        z, rho = step(v[None, :d], v[None, d:])
        back_z, back_rho = step(z, -rho)  # forward again with the momentum negated
        np.testing.assert_allclose(back_z[0], v[:d], atol=1e-12)
        np.testing.assert_allclose(-back_rho[0], v[d:], atol=1e-12)


def test_tempered_flow_has_determinant_beta_zero_to_the_half_d():
    with jax.enable_x64(True):
        d, beta0 = 3, 0.3
        sqrt_betas = hamiltonian.tempering(beta0, 4)

        def flow(z, rho):
            step = lambda z, rho, g: hamiltonian.leapfrog(_GRAD, z, rho, 0.2, g)
            return hamiltonian.tempered_flow(step, z, rho, sqrt_betas)

        v = jnp.asarray(np.random.default_rng(1).standard_normal(2 * d))
        _, log_det = np.linalg.slogdet(np.asarray(jax.jit(jax.jacfwd(_as_map(flow, d)))(v)))
        assert log_det == pytest.approx(0.5 * d * math.log(beta0), abs=1e-10)


def test_leapfrog_gradients():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        z, rho = (jnp.asarray(rng.standard_normal((2, 3))) for _ in range(2))

        def f(z, rho, eps):
            z, rho, _ = hamiltonian.leapfrog(_GRAD, z, rho, eps)
            return jnp.sum(jnp.sin(z) * rho)

        check_grads(jax.jit(f), (z, rho, 0.3), order=1, modes=["rev"])


# --- a linear-Gaussian model: z ~ N(0, I), x | z ~ N(Wz + b, σ² I) ---------------------------


class _Affine(nn.Module):
    """x -> flatten(x) @ W.T + b, with constant W and b (no parameters)."""

    w: tuple
    b: tuple

    def __call__(self, x, *, train=False):
        w, b = jnp.asarray(self.w), jnp.asarray(self.b)
        return x.reshape(x.shape[0], -1) @ w.T + b


def _tuple(a):
    return tuple(map(tuple, a)) if np.ndim(a) == 2 else tuple(a)


def linear_gaussian(d_x=3, d_z=2, seed=0, n=4, offset=0.4, inflate=0.6):
    """The model's parts, data x [n, d_x], their exact log p(x), the likelihood, and an
    encoder that is the exact posterior shifted by `offset` with log-variances + `inflate`
    (so the importance weights vary)."""
    rng = np.random.default_rng(seed)
    w, b, sigma2 = rng.standard_normal((d_x, d_z)), rng.standard_normal(d_x), 0.3
    marginal = w @ w.T + sigma2 * np.eye(d_x)
    x = rng.multivariate_normal(b, marginal, n)
    diff = x - b
    maha = np.einsum("bi,ij,bj->b", diff, np.linalg.inv(marginal), diff)
    log_px = -0.5 * (maha + np.linalg.slogdet(marginal)[1] + d_x * LOG_2PI)
    cov = np.linalg.inv(np.eye(d_z) + w.T @ w / sigma2)
    a = cov @ w.T / sigma2  # posterior mean = A (x − b)
    enc_w = np.concatenate([a, np.zeros_like(a)])
    enc_b = np.concatenate([-a @ b + offset, np.log(np.diag(cov)) + inflate])
    parts = dict(
        encoder=_Affine(_tuple(enc_w), _tuple(enc_b)), decoder=_Affine(_tuple(w), _tuple(b))
    )
    likelihood = lk.get_likelihood("gaussian_nll", {"gaussian_nll": {"variance": sigma2}})
    return parts, x, log_px, likelihood


def _log_weights(model, variables, x, likelihood, s, seed=0):
    """log w = log p(x|z_K) + log N(z_K) − log q for s draws per example: [B, s]."""

    @jax.jit
    def log_w(x, keys):
        z, log_q = model.apply(variables, x, keys, method="posterior_samples")
        x_hat, logits = model.apply(variables, z.reshape(-1, z.shape[-1]), method="decode")
        x_rows = jnp.repeat(x, s, axis=0)
        log_px_z = likelihood.log_prob(x_rows, x_hat=x_hat, logits=logits).reshape(-1, s)
        return log_px_z - 0.5 * jnp.sum(z**2 + LOG_2PI, -1) - log_q

    keys = jax.random.split(jax.random.key(seed), x.shape[0] * s).reshape(x.shape[0], s)
    return np.asarray(log_w(x, keys), np.float64)


def assert_unbiased(log_w, log_px, wrong_by=None):
    """mean(w)/p(x) within 4 standard errors of 1 for each example; with `wrong_by` (a
    log-factor), the weights scaled by it are not (the check has the power to see it)."""
    ratio = np.exp(log_w - log_px[:, None])
    mean, se = ratio.mean(1), ratio.std(1) / np.sqrt(ratio.shape[1])
    assert np.all(np.abs(mean - 1) < 4 * se + 1e-3), (mean, se)
    assert np.all(se < 0.05), se  # precise enough to mean something
    if wrong_by is not None:
        assert np.all(np.abs(mean * np.exp(wrong_by) - 1) > 10 * se)


def test_hvae_importance_weights_are_unbiased_and_iwae_tends_to_log_px():
    parts, x, log_px, likelihood = linear_gaussian()
    model = HVAE(
        **parts,
        latent_dim=2,
        likelihood=likelihood,
        output_activation="linear",
        n_lf=3,
        eps_lf=0.25,
        beta_zero=0.5,
    )
    variables = {"params": {}}
    x = jnp.asarray(x, jnp.float32)
    log_w = _log_weights(model, variables, x, likelihood, 20000)
    # Without the tempering's determinant β_0^{d/2} (d = 2), the weights would be off by β_0.
    assert_unbiased(log_w, log_px, wrong_by=math.log(0.5))
    key = jax.random.key(1)
    bounds = lk.evaluate_bounds(model, variables, x, key, likelihood, k=2000, batch_size=4)
    np.testing.assert_allclose(bounds["iwae"], log_px, atol=0.03)
    assert np.mean(bounds["iwae"]) > np.mean(bounds["elbo"]) + 0.01


def test_extended_density_of_a_1d_hvae_integrates_to_one():
    """q_K(z_K, ρ_K) = exp(log_q) N(ρ_K; 0, 1) on a grid of (z_K, ρ_K), each point mapped
    back by the inverse flow (undo the tempering, leapfrog with the momentum negated) to
    the (ε_0, γ_0) whose forward draw the model evaluates."""
    with jax.enable_x64(True):
        parts, x, _, likelihood = linear_gaussian(d_x=2, d_z=1, n=1)
        eps, beta0, n_lf = 0.3, 0.4, 3
        model = HVAE(
            **parts,
            latent_dim=1,
            likelihood=likelihood,
            output_activation="linear",
            n_lf=n_lf,
            eps_lf=eps,
            beta_zero=beta0,
        )
        x = jnp.asarray(x)
        mean, logvar = model.apply({}, x, method="encode_gaussian")
        sqrt_betas = hamiltonian.tempering(beta0, n_lf)
        zk, rk = np.meshgrid(np.linspace(-6, 6, 601), np.linspace(-8, 8, 801), indexing="ij")
        z, rho = jnp.asarray(zk.reshape(-1, 1)), jnp.asarray(rk.reshape(-1, 1))
        rows = jnp.broadcast_to(x, (z.shape[0], x.shape[1]))
        grad = model.apply({}, rows, method=lambda m, x: m._grad_log_target(x))
        for k in range(n_lf, 0, -1):
            rho = rho * sqrt_betas[k] / sqrt_betas[k - 1]
            z, rho, _ = hamiltonian.leapfrog(grad, z, -rho, eps)
            rho = -rho
        eps0 = (z - mean) / jnp.exp(0.5 * logvar)
        gamma = rho * sqrt_betas[0]
        sample = lambda m, *a: m._sample(*a, None)
        n = z.shape[0]
        z_fwd, log_q = model.apply(
            {},
            rows,
            jnp.broadcast_to(mean, (n, 1)),
            jnp.broadcast_to(logvar, (n, 1)),
            eps0,
            gamma,
            method=sample,
        )
        np.testing.assert_allclose(z_fwd, zk.reshape(-1, 1), atol=1e-8)  # the inverse is right
        density = np.exp(np.asarray(log_q) - 0.5 * (rk.reshape(-1) ** 2 + LOG_2PI))
        cell = (12 / 600) * (16 / 800)
        assert density.sum() * cell == pytest.approx(1.0, abs=2e-3)


def test_model_aux_is_the_extended_elbo_and_check_grads():
    with jax.enable_x64(True):
        parts, x, _, likelihood = linear_gaussian()
        model = HVAE(
            **parts,
            latent_dim=2,
            likelihood=likelihood,
            output_activation="linear",
            n_lf=2,
            eps_lf=0.2,
            beta_zero=0.5,
            learn_eps_lf=True,
            learn_beta_zero=True,
        )
        x = jnp.asarray(x)
        v = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x)
        assert v["params"]["eps_lf"] == pytest.approx(0.2)
        assert v["params"]["log_beta_zero"] == pytest.approx(math.log(0.5))
        _, aux = model.apply(v, x, train=True, rngs={"latent": jax.random.key(2)})
        for name in ("z", "z0", "mean", "logvar", "logits", "x_hat", "log_q", "log_prior"):
            assert name in aux
        np.testing.assert_allclose(aux["log_prior"], -0.5 * np.sum(aux["z"] ** 2 + LOG_2PI, -1))

        def neg_elbo(params):
            _, aux = model.apply(
                {"params": params}, x, train=True, rngs={"latent": jax.random.key(2)}
            )
            nll = -likelihood.log_prob(x, x_hat=aux["x_hat"], logits=aux["logits"])
            kl = losses.get_loss("kl_sample")(log_q=aux["log_q"], log_prior=aux["log_prior"])
            return jnp.sum(nll + kl)

        g = jax.grad(neg_elbo)(v["params"])
        assert abs(float(g["eps_lf"])) > 0 and abs(float(g["log_beta_zero"])) > 0
        check_grads(neg_elbo, (v["params"],), order=1, modes=["rev"])


# --- the model family in the library ----------------------------------------------------------


def hvae_config(**overrides):
    defaults = {"model.name": "hvae", "loss": "bce + kl_sample", "model.encoder_widths": (32, 4)}
    return tiny_config(**{**defaults, **overrides})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.likelihood", "mse", "likelihood='mse' is not known; valid: bce, gaussian_nll"),
        ("model.likelihood_variance", 0.0, "likelihood_variance=0.0 must be a finite number > 0"),
        ("model.n_lf", 0, r"n_lf=0 must be an integer in \[1, 100\]"),
        ("model.n_lf", 2.5, "n_lf=2.5 must be an integer"),
        ("model.eps_lf", -0.1, "eps_lf=-0.1 must be a finite number > 0"),
        ("model.beta_zero", 1.5, r"beta_zero=1.5 must be a finite number in \(0, 1\]"),
        ("model.learn_eps_lf", "yes", "learn_eps_lf='yes' must be true or false"),
        ("model.x_logvar", "scalar", "x_logvar='scalar': the hvae family does not support"),
        ("model.num_samples", 4, "num_samples=4: the hvae family does not support"),
        ("model.dropout", 0.1, "dropout=0.1: the hvae family does not support"),
        ("model.batch_norm", True, "batch_norm=True: the hvae family's leapfrog"),
    ],
)
def test_bad_settings_are_refused_in_one_line(field, value, message):
    config = hvae_config()
    config.model.unlock()
    *_, last = field.split(".")
    with config.ignore_type():
        config.model[last] = value
    with pytest.raises(ConfigError, match=message) as info:
        models.build_model(config.model, (8, 8, 1))
    assert "\n" not in str(info.value)


def test_presets_build_and_mnist_follows_pythae():
    model = models.build_model(load_config("hvae.py", "digits").model, (8, 8, 1))
    assert interface.posterior_of(model) == "sampled" and model.latent_dim == 8
    config = load_config("hvae.py", "mnist")
    model = models.build_model(config.model, (28, 28, 1))
    assert (model.n_lf, model.eps_lf, model.beta_zero) == (3, 0.001, 0.3)
    assert not (model.learn_eps_lf or model.learn_beta_zero)
    assert model.likelihood == lk.get_likelihood(config.loss, config.loss_options)
    assert tuple(config.model.encoder_widths) == (512, 16) and config.batch_size == 100
    assert (config.optimizer.learning_rate, config.optimizer.schedule) == (1e-3, "constant")


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_tiny_run_lowers_the_negative_elbo_and_its_bounds_order(tmp_path):
    overrides = {"num_steps": 40, "eval_every_steps": 40, "checkpoint_every_steps": 40}
    config = hvae_config(**overrides, **{"optimizer.learning_rate": 1e-2})
    workdir = str(tmp_path / "run")
    state, final = train.train_and_evaluate(config, workdir)
    rows = [r for r in _rows(workdir) if "train/loss" in r]
    assert rows[-1]["train/loss"] < 0.8 * rows[0]["train/loss"], rows
    assert final["test/loss"] == pytest.approx(final["test/bce"] + final["test/kl_sample"])
    exp = train.Experiment.from_workdir(workdir)
    x = exp.dataset.test_x[:16]
    v = {"params": state.params}
    bounds = lk.evaluate_bounds(exp.model, v, x, jax.random.key(0), "bce", k=100, batch_size=16)
    assert np.mean(bounds["iwae"]) > np.mean(bounds["elbo"])
    assert np.isfinite(bounds["kl"]).all()
