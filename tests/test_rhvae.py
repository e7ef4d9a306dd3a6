"""The Riemannian Hamiltonian VAE: the metric against NumPy (positive definite, its log
det), the generalized leapfrog (the leapfrog when G = I, volume and reversibility by
jacfwd), unbiased importance weights on a linear-Gaussian model, the centroid buffer as a
ring, its exact resume, HMC's invariant distribution, the sampler, bad settings, presets
and a tiny run on the digits."""

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.experimental.compilation_cache import compilation_cache as compilation_cache_lib
from jax.test_util import check_grads
from test_denoising import load_config
from test_hvae import _GRAD, _as_map, _log_weights, assert_unbiased, linear_gaussian

from aejax import likelihood as lk
from aejax import models, train
from aejax.errors import ConfigError
from aejax.models import hamiltonian, interface
from aejax.models.rhvae import (
    METRIC_COLLECTION,
    RHVAE,
    MetricNet,
    cholesky,
    log_det,
    metric_inverse,
    solve_upper,
)


def _buffer(c, d, seed=0, scale=0.7):
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((c, d))
    factors = np.tril(rng.standard_normal((c, d, d)) * scale)
    return centroids, factors


def test_metric_matches_numpy_is_positive_definite_and_has_its_log_det():
    centroids, factors = _buffer(5, 3)
    z = np.random.default_rng(1).standard_normal((4, 3))
    m = factors @ np.transpose(factors, (0, 2, 1))
    want = np.stack(
        [
            sum(m[i] * np.exp(-np.sum((zz - centroids[i]) ** 2) / 1.3**2) for i in range(5))
            + 0.05 * np.eye(3)
            for zz in z
        ]
    )
    with jax.enable_x64(True):
        got = np.asarray(metric_inverse(jnp.asarray(z), centroids, m, 1.3, 0.05))
        np.testing.assert_allclose(got, want, rtol=1e-10)
        assert np.all(np.linalg.eigvalsh(got) > 0.05 - 1e-12)  # λ bounds it below
        np.testing.assert_allclose(
            log_det(jnp.asarray(got)), np.linalg.slogdet(want)[1], rtol=1e-10
        )
        chol = np.asarray(cholesky(jnp.asarray(got)))
        np.testing.assert_allclose(chol, np.linalg.cholesky(want), rtol=1e-10, atol=1e-12)
        b = np.random.default_rng(2).standard_normal((4, 3))
        x = np.asarray(solve_upper(jnp.asarray(chol), jnp.asarray(b)))
        np.testing.assert_allclose(np.einsum("nji,nj->ni", chol, x), b, atol=1e-12)  # Lᵀx = b
        f = jax.jit(lambda z: log_det(metric_inverse(z, centroids, m, 1.3, 0.05)))
        check_grads(f, (jnp.asarray(z),), order=1, modes=["rev"])


def test_metric_net_is_lower_triangular_with_a_positive_diagonal():
    net = MetricNet((8,), 4)
    x = jax.random.normal(jax.random.key(0), (3, 5))
    out = np.asarray(net.apply(net.init(jax.random.key(1), x), x))
    assert out.shape == (3, 4, 4)
    np.testing.assert_array_equal(np.triu(out, 1), 0)
    assert np.all(np.diagonal(out, axis1=1, axis2=2) > 0)
    assert np.abs(np.tril(out, -1)).max() > 1e-3  # off-diagonal entries are used


def _metric_fn(centroids, factors, temperature=1.0, lbd=0.3):
    m = jnp.asarray(factors @ np.transpose(factors, (0, 2, 1)))
    return lambda z: metric_inverse(z, jnp.asarray(centroids), m, temperature, lbd)


def test_generalized_leapfrog_with_the_identity_metric_is_the_leapfrog():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        z, rho = (jnp.asarray(rng.standard_normal((4, 3))) for _ in range(2))
        eye = lambda z: jnp.broadcast_to(jnp.eye(3), (z.shape[0], 3, 3))
        neg = lambda z: -_GRAD(z)
        got = hamiltonian.generalized_leapfrog(neg, eye, z, rho, 0.3, 2)
        want = hamiltonian.leapfrog(_GRAD, z, rho, 0.3)
        np.testing.assert_allclose(got[0], want[0], atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], atol=1e-12)


@pytest.mark.parametrize(("eps", "n_fixed", "tol"), [(0.1, 30, 1e-10), (0.001, 3, 1e-12)])
def test_generalized_leapfrog_is_volume_preserving_and_reversible(eps, n_fixed, tol):
    """Exactly so when its implicit equations are solved: with 30 iterations at ε = 0.1,
    and with pythae's 3 at its ε = 0.001."""
    with jax.enable_x64(True):
        d = 3
        metric_inv = _metric_fn(*_buffer(6, d))
        grad_log_det = jax.grad(lambda z: 0.5 * jnp.sum(log_det(metric_inv(z))))
        grad_potential = lambda z: -(_GRAD(z) + grad_log_det(z))

        def step(z, rho):
            out = hamiltonian.generalized_leapfrog(grad_potential, metric_inv, z, rho, eps, n_fixed)
            return out[:2]

        v = jnp.asarray(np.random.default_rng(3).standard_normal(2 * d))
        jac = np.asarray(jax.jit(jax.jacfwd(_as_map(step, d)))(v))
        assert abs(np.linalg.det(jac) - 1) < tol
        assert np.abs(jac - np.eye(2 * d)).max() > 0.5 * eps  # a real move
        z, rho = jax.jit(step)(v[None, :d], v[None, d:])
        back_z, back_rho = jax.jit(step)(z, -rho)
        np.testing.assert_allclose(back_z[0], v[:d], atol=tol)
        np.testing.assert_allclose(-back_rho[0], v[d:], atol=tol)


def _linear_rhvae(eps=0.1, n_fixed=12, **kw):
    parts, x, log_px, likelihood = linear_gaussian(**kw)
    model = RHVAE(
        **parts,
        latent_dim=2,
        likelihood=likelihood,
        output_activation="linear",
        n_lf=3,
        eps_lf=eps,
        beta_zero=0.5,
        metric_net=MetricNet((4,), 2),
        temperature=1.0,
        regularization=0.3,
        capacity=6,
        n_fixed=n_fixed,
    )
    centroids, factors = _buffer(6, 2, scale=1.0)
    state = dict(centroids=centroids, factors=factors, position=0, size=6)
    variables = {METRIC_COLLECTION: jax.tree.map(jnp.asarray, state)}
    return model, variables, jnp.asarray(x, jnp.float32), log_px, likelihood


def test_rhvae_importance_weights_are_unbiased_and_iwae_tends_to_log_px():
    model, variables, x, log_px, likelihood = _linear_rhvae()
    log_w = _log_weights(model, variables, x, likelihood, 4000)
    assert_unbiased(log_w, log_px, wrong_by=math.log(0.5))
    bounds = lk.evaluate_bounds(model, variables, x, jax.random.key(1), likelihood, k=500)
    np.testing.assert_allclose(bounds["iwae"], log_px, atol=0.05)
    assert np.mean(bounds["iwae"]) > np.mean(bounds["elbo"])


def test_buffer_is_a_ring_of_the_last_training_means():
    config = rhvae_config(
        **{"model.metric_capacity": 5, "model.n_lf": 1, "model.fixed_point_steps": 1}
    )
    model = models.build_model(config.model, (8, 8, 1))
    x = jax.random.uniform(jax.random.key(0), (9, 8, 8, 1))
    v = model.init({"params": jax.random.key(0), "latent": jax.random.key(1)}, x[:1])
    assert int(v[METRIC_COLLECTION]["size"]) == 0
    apply = jax.jit(
        lambda v, x: model.apply(
            v, x, train=True, rngs={"latent": jax.random.key(2)}, mutable=[METRIC_COLLECTION]
        )
    )
    for i in range(3):
        (_, aux), state = apply(v, x[3 * i : 3 * i + 3])
        v = {**v, **state}
        assert int(v[METRIC_COLLECTION]["size"]) == min(3 * i + 3, 5)
    buf = v[METRIC_COLLECTION]
    assert int(buf["position"]) == 9 % 5
    means = model.apply(v, x, method="encode_gaussian")[0]
    # Slots 4, 0, 1, 2, 3 hold rows 4..8 (the last five), oldest first.
    np.testing.assert_allclose(buf["centroids"][np.array([4, 0, 1, 2, 3])], means[4:], rtol=1e-6)
    factors = model.apply(v, x, method=lambda m, x: m.metric_net(x))
    np.testing.assert_allclose(buf["factors"][np.array([4, 0, 1, 2, 3])], factors[4:], rtol=1e-6)
    evaluate = lambda v, x: model.apply(v, x, train=False, mutable=[METRIC_COLLECTION])
    _, same = jax.jit(evaluate)(v, x[:3])
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(buf), strict=True):
        np.testing.assert_array_equal(a, b)  # evaluation writes nothing


def test_hmc_leaves_a_gaussian_invariant():
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    prec = jnp.asarray(np.linalg.inv(cov))
    log_density = lambda z: -0.5 * jnp.einsum("ni,ij,nj->n", z, prec, z)
    start = jnp.broadcast_to(jnp.array([2.0, -2.0]), (4000, 2))
    run = jax.jit(lambda z, k: hamiltonian.hmc(log_density, z, k, n_steps=40, n_lf=8, eps=0.2))
    z = np.asarray(run(start, jax.random.key(0)), np.float64)
    se = np.sqrt(np.diag(cov) / len(z))
    assert np.all(np.abs(z.mean(0)) < 4 * se), z.mean(0)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.06)


def test_sampler_runs_hmc_on_the_buffers_volume_from_written_centroids():
    model, variables, *_ = _linear_rhvae()
    state = dict(variables[METRIC_COLLECTION], size=jnp.asarray(2))  # only two written
    v = {METRIC_COLLECTION: state}
    z = jnp.asarray(np.random.default_rng(0).standard_normal((5, 2)), jnp.float32)
    got = jax.jit(lambda v, z: model.apply(v, z, method="log_volume"))(v, z)
    c, f = (np.asarray(state[n], np.float64) for n in ("centroids", "factors"))
    a = metric_inverse(jnp.asarray(z), c, f @ np.transpose(f, (0, 2, 1)), 1.0, 0.3)
    np.testing.assert_allclose(got, 0.5 * np.linalg.slogdet(np.asarray(a))[1], rtol=1e-5)
    rngs = {"latent": jax.random.key(0)}
    sample = jax.jit(
        lambda v, steps: model.apply(v, 50, n_steps=steps, method="riemannian_samples", rngs=rngs),
        static_argnums=1,
    )
    starts = sample(v, 0)
    assert {tuple(s) for s in np.asarray(starts)} <= {tuple(s) for s in c[:2].astype(np.float32)}
    samples = sample(v, 5)
    assert samples.shape == (50, 2) and np.isfinite(samples).all()
    assert np.abs(np.asarray(samples) - np.asarray(starts)).max() > 1e-3


def test_posterior_samples_depend_on_their_own_keys_only():
    model, variables, x, *_ = _linear_rhvae(n_fixed=2)
    keys = jax.random.split(jax.random.key(0), 12).reshape(4, 3)
    sample = jax.jit(lambda x, keys: model.apply(variables, x, keys, method="posterior_samples"))
    z, log_q = sample(x, keys)
    z2, log_q2 = sample(x[2:], keys[2:, 1:])
    np.testing.assert_allclose(z2, z[2:, 1:], rtol=1e-5)
    np.testing.assert_allclose(log_q2, log_q[2:, 1:], rtol=1e-5)


# --- the model family in the library ----------------------------------------------------------


def rhvae_config(**overrides):
    defaults = {
        "model.name": "rhvae",
        "loss": "bce + kl_sample",
        "model.encoder_widths": (32, 4),
        "model.metric_widths": (16,),
        "model.metric_capacity": 64,
    }
    return tiny_config(**{**defaults, **overrides})


@contextlib.contextmanager
def compilation_cache(path):
    """JAX's on-disk compilation cache in `path` for the block, then off again: runs of one
    config compile the same programs, so the second and third load them (test time only;
    the programs and their results are the same)."""
    jax.config.update("jax_compilation_cache_dir", str(path))
    compilation_cache_lib.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache_lib.reset_cache()


def test_state_is_checkpointed_resumed_bit_exactly_and_the_loss_falls(tmp_path):
    config = rhvae_config(num_steps=40, checkpoint_every_steps=20, eval_every_steps=40)
    config.optimizer.learning_rate = 1e-2
    config.model.n_lf, config.model.fixed_point_steps = 1, 2  # the state is what is tested
    config.data.max_test = config.eval_batch_size = 64  # one evaluation batch shape
    with compilation_cache(tmp_path / "cache"):
        whole, final = train.train_and_evaluate(config, str(tmp_path / "whole"))
        cut = str(tmp_path / "cut")
        assert train.train_and_evaluate(config, cut, stop_after=20)[1]["step"] == 20
        resumed, _ = train.train_and_evaluate(config, cut)
    assert final["test/loss"] < 40.0  # the initial negative ELBO is about 45 nats
    buf = whole.model_state[METRIC_COLLECTION]
    assert int(buf["size"]) == 64 and int(buf["position"]) == (40 * 32) % 64
    assert int(resumed.step) == 40
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.metric_temperature", 0.0, "metric_temperature=0.0 must be a finite number > 0"),
        ("model.metric_regularization", -1.0, "metric_regularization=-1.0 must be a finite"),
        ("model.metric_capacity", 0, r"metric_capacity=0 must be an integer in \[1, 10\*\*6\]"),
        ("model.fixed_point_steps", 0, r"fixed_point_steps=0 must be an integer in \[1, 100\]"),
        ("model.metric_widths", (0,), r"metric_widths=\(0,\) must be a list of positive"),
        ("model.likelihood", "bce2", "likelihood='bce2' is not known"),
        ("model.dropout", 0.2, "dropout=0.2: the rhvae family does not support"),
    ],
)
def test_bad_settings_are_refused_in_one_line(field, value, message):
    config = rhvae_config()
    config.model.unlock()
    *_, last = field.split(".")
    with config.ignore_type():
        config.model[last] = value
    with pytest.raises(ConfigError, match=message) as info:
        models.build_model(config.model, (8, 8, 1))
    assert "\n" not in str(info.value)


def test_presets_build_and_mnist_follows_pythae():
    model = models.build_model(load_config("rhvae.py", "digits").model, (8, 8, 1))
    assert interface.posterior_of(model) == "sampled" and interface.prior_of(model)
    config = load_config("rhvae.py", "mnist")
    model = models.build_model(config.model, (28, 28, 1))
    assert (model.n_lf, model.eps_lf, model.beta_zero) == (3, 0.001, 0.3)
    assert (model.temperature, model.regularization, model.capacity) == (0.8, 0.01, 10000)
    assert tuple(model.metric_net.widths) == (400,) and model.n_fixed == 3
    assert model.likelihood == lk.get_likelihood(config.loss, config.loss_options)
    assert tuple(config.model.encoder_widths) == (512, 16) and config.batch_size == 100
