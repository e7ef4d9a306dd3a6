"""Sparse autoencoders: l1_activity and kl_sparsity by hand and by check_grads, the k-sparse
(top-k) code, and KL sparsity reaching its target rate in training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import losses, train
from aejax.errors import ConfigError
from aejax.models import build_model
from aejax.models.layers import keep_top_k


def test_l1_activity_hand_computed():
    z = jnp.array([[1.0, -2.0, 0.5], [0.0, 0.0, -3.0]])
    np.testing.assert_allclose(losses.l1_activity(z=z), [3.5, 3.0], rtol=1e-6)


def test_kl_sparsity_hand_computed():
    z = jnp.array([[0.1, 0.5], [0.3, 0.5]])  # unit means 0.2 and 0.5
    rho = 0.1
    kl = lambda q: rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))
    want = kl(0.2) + kl(0.5)
    np.testing.assert_allclose(losses.kl_sparsity(z=z, rho=rho), [want, want], rtol=1e-5)
    # At the target rate the penalty is zero; the batch mean of the term is the penalty.
    assert float(losses.kl_sparsity(z=jnp.full((4, 3), 0.05))[0]) == pytest.approx(0, abs=1e-6)
    _, metrics = losses.total_loss({"kl_sparsity": 1.0}, {"kl_sparsity": {"rho": rho}}, z=z)
    np.testing.assert_allclose(metrics["kl_sparsity"], want, rtol=1e-5)


def test_kl_sparsity_is_finite_for_dead_units():
    z = jnp.array([[0.0, 1.0], [0.0, 1.0]])
    assert np.isfinite(losses.kl_sparsity(z=z)).all()
    assert np.isfinite(jax.grad(lambda z: losses.kl_sparsity(z=z).sum())(z)).all()


@pytest.mark.parametrize("term", ["l1_activity", "kl_sparsity"])
def test_gradients(term):
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.uniform(0.05, 0.95, size=(4, 3)) * rng.choice([-1, 1], (4, 3)))
    if term == "kl_sparsity":
        z = jnp.abs(z)
    check_grads(lambda z: losses.LOSSES[term](z=z), (z,), order=1, modes=["rev"], rtol=1e-2)


def test_keep_top_k():
    z = jnp.array([[0.3, -1.0, 2.0, 0.5], [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(keep_top_k(z, 2), [[0, 0, 2.0, 0.5], [4.0, 3.0, 0, 0]])
    # Gradients flow through the kept entries only.
    g = jax.grad(lambda z: jnp.sum(keep_top_k(z, 2) * jnp.arange(4.0)))(z)
    np.testing.assert_array_equal(g, [[0, 0, 2, 3], [0, 1, 0, 0]])


def test_top_k_model_option():
    config = tiny_config()
    config.model.top_k = 3
    model = build_model(config.model, (8, 8, 1))
    x = jax.random.uniform(jax.random.key(0), (5, 8, 8, 1))
    variables = model.init(jax.random.key(1), x)
    z = model.apply(variables, x, method="encode")
    assert z.shape == (5, 8)
    np.testing.assert_array_equal(np.sum(np.asarray(z) != 0, axis=1), [3] * 5)
    config.model.top_k = 9
    with pytest.raises(ConfigError, match=r"config.model.top_k=9 must be an integer in \[0, 8\]"):
        build_model(config.model, (8, 8, 1))
    # A conv AE keeps the k largest of its code map's entries (2 x 2 x 32 = 128 here).
    config.model.update(name="conv", top_k=10)
    conv = build_model(config.model, (8, 8, 1))
    z = conv.apply(conv.init(jax.random.key(1), x), x, method="encode")
    np.testing.assert_array_equal(np.sum(np.asarray(z).reshape(5, -1) != 0, axis=1), [10] * 5)
    # A Gaussian latent has no top-k: refused, not ignored.
    config.model.update(name="vae", top_k=3)
    with pytest.raises(ConfigError, match="top_k=3: a Gaussian latent keeps every unit"):
        build_model(config.model, (8, 8, 1))


def test_kl_sparsity_reaches_its_target_rate(tmp_path):
    """After training with the KL penalty, the test set's mean code activation is ρ ± 0.02."""
    rho = 0.05
    config = tiny_config(loss="mse + 3.0*kl_sparsity", num_steps=450)
    config.model.encoder_widths = (64,)
    config.model.code_activation = "sigmoid"
    config.optimizer.learning_rate = 1e-2
    config.optimizer.schedule = "constant"
    config.batch_size = 128
    config.eval_every_steps = config.checkpoint_every_steps = 450
    config.log_every_steps = config.steps_per_dispatch = 50
    config.loss_options.kl_sparsity = {"rho": rho}
    config.eval_batch_size = 400  # the whole test split (359) in one batch
    workdir = str(tmp_path / "run")
    _, metrics = train.train_and_evaluate(config, workdir)
    exp = train.Experiment.from_workdir(workdir)
    state = exp.restore_or_init(require_checkpoint=True)
    z = exp.model.apply({"params": state.params}, exp.dataset.test_x, method="encode")
    assert abs(float(jnp.mean(z)) - rho) < 0.02, float(jnp.mean(z))
    # The test split is one evaluation batch: its logged penalty is the KL of the whole
    # split's mean activation, not of a batch padded with copies of one example.
    expected = losses.kl_sparsity(z=z, rho=rho)[0]
    np.testing.assert_allclose(metrics["test/kl_sparsity"], expected, rtol=1e-5)
    # And it still reconstructs: better than the mean training image.
    mean_image = np.mean(exp.dataset.train_x, axis=0)
    baseline = float(np.mean(np.square(exp.dataset.test_x - mean_image)))
    assert metrics["test/mse_per_pixel"] < 0.6 * baseline, (metrics, baseline)
