"""β-TC-VAE's decomposed KL and the annealed capacity (aejax.losses.disentangle): against
numpy loops, hand-computed cases and gradients, and the trainer handing them `num_train`
and `step`."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import losses, train
from aejax.errors import ConfigError
from aejax.losses import disentangle

LOG_2PI = math.log(2 * math.pi)


def _batch(m=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1, (m, d))
    logvar = rng.normal(-0.5, 0.4, (m, d))
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal((m, d))
    return z, mean, logvar


def _numpy_decomposition(z, mean, logvar, n):
    """Minibatch-weighted sampling written as loops over examples, in float64."""
    m, d = z.shape

    def log_q(i, k, dims):  # log q(z_i[dims] | x_k)
        v = np.exp(logvar[k, dims])
        return np.sum(-0.5 * ((z[i, dims] - mean[k, dims]) ** 2 / v + np.log(v) + LOG_2PI))

    def lse(a):
        a = np.asarray(a)
        return a.max() + np.log(np.sum(np.exp(a - a.max())))

    out = {"mutual_information": [], "total_correlation": [], "dimwise_kl": []}
    every = list(range(d))
    for i in range(m):
        qzx = log_q(i, i, every)
        qz = lse([log_q(i, k, every) for k in range(m)]) - math.log(n * m)
        qzj = sum(lse([log_q(i, k, [j]) for k in range(m)]) - math.log(n * m) for j in every)
        pz = np.sum(-0.5 * (z[i] ** 2 + LOG_2PI))
        out["mutual_information"].append(qzx - qz)
        out["total_correlation"].append(qz - qzj)
        out["dimwise_kl"].append(qzj - pz)
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("n", [1, 60_000])
def test_decomposition_matches_numpy_loops_and_sums_to_the_sample_kl(n):
    z, mean, logvar = _batch()
    got = disentangle.kl_decomposition(*(jnp.asarray(a, jnp.float32) for a in (z, mean, logvar)), n)
    want = _numpy_decomposition(z, mean, logvar, n)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4, err_msg=name)
    total = sum(np.asarray(v, np.float64) for v in got.values())
    log_qzx = np.sum(-0.5 * ((z - mean) ** 2 / np.exp(logvar) + logvar + LOG_2PI), 1)
    log_pz = np.sum(-0.5 * (z**2 + LOG_2PI), 1)
    np.testing.assert_allclose(total, log_qzx - log_pz, rtol=1e-4, atol=1e-4)


def test_identical_posteriors_give_the_hand_computed_values():
    """All M posteriors equal: logsumexp_m log q(z_i|x_m) = log M + log q(z_i|x_i), so
    MI = log N and TC = (D − 1)·log N exactly."""
    m, d, n = 4, 3, 1000
    mean = jnp.tile(jnp.asarray([[0.3, -1.0, 2.0]]), (m, 1))
    logvar = jnp.tile(jnp.asarray([[-1.0, 0.0, 0.5]]), (m, 1))
    z = mean + jnp.asarray(np.random.default_rng(1).standard_normal((m, d)), jnp.float32)
    got = disentangle.kl_decomposition(z, mean, logvar, n)
    np.testing.assert_allclose(got["mutual_information"], np.full(m, math.log(n)), rtol=1e-5)
    np.testing.assert_allclose(
        got["total_correlation"], np.full(m, (d - 1) * math.log(n)), rtol=1e-5
    )


def test_tc_terms_gradients():
    z, mean, logvar = (jnp.asarray(a, jnp.float32) for a in _batch(m=4, d=2))
    for term in (disentangle.tc_total_correlation, disentangle.tc_mutual_information):
        f = lambda z, mean, logvar, t=term: t(z=z, mean=mean, logvar=logvar, num_train=100).sum()  # noqa: E731
        check_grads(f, (z, mean, logvar), order=1, modes=["rev"], atol=5e-2, rtol=5e-2)


def test_kl_capacity_hand_computed():
    mean = jnp.asarray([[1.0, 0.0], [0.0, 2.0]])
    logvar = jnp.zeros((2, 2))
    kl = 0.5 * (1.0 + 4.0) / 2  # mean over the batch of ½ Σ μ²
    for step, c in ((0, 0.0), (50, 5.0), (100, 10.0), (400, 10.0)):
        got = disentangle.kl_capacity(
            mean=mean, logvar=logvar, step=step, capacity_max=10.0, anneal_steps=100
        )
        np.testing.assert_allclose(got, [abs(kl - c)] * 2, rtol=1e-6, err_msg=f"step {step}")
    f = lambda mean: disentangle.kl_capacity(
        mean=mean, logvar=logvar, step=10, capacity_max=10.0, anneal_steps=100
    ).sum()  # noqa: E731
    check_grads(f, (mean,), order=1, modes=["rev"])


def test_capacity_in_stairs_is_pythaes_epoch_schedule():
    """stair_steps k: C = C_max · min(1, epoch / (warmup + 1)), epochs of k steps counted
    from 1 (pythae's DisentangledBetaVAE, C 30 and warmup_epoch 25 at 600 steps an epoch)."""
    for step, epoch in ((0, 1), (599, 1), (600, 2), (14999, 25), (15000, 26), (40000, 67)):
        c = disentangle.capacity(step, 30.0, 26 * 600, stair_steps=600)
        np.testing.assert_allclose(c, 30.0 * min(epoch / 26, 1.0), rtol=1e-6, err_msg=str(step))
    np.testing.assert_allclose(disentangle.capacity(300, 30.0, 600), 15.0)  # k = 0: linear


def test_kl_capacity_example_hand_computed():
    mean = jnp.asarray([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    logvar = jnp.asarray([[0.0, 0.0], [0.0, 0.0], [np.log(2.0), 0.0]])
    kl = np.array([0.5, 2.0, 0.5 * (2.0 - 1.0 - np.log(2.0))])  # ½ Σ μ² + σ² − 1 − log σ²
    opts = dict(capacity_max=30.0, anneal_steps=26 * 600, stair_steps=600)
    got = disentangle.kl_capacity_example(mean=mean, logvar=logvar, step=0, **opts)
    np.testing.assert_allclose(got, np.abs(kl - 30.0 / 26), rtol=1e-6)
    batch = disentangle.kl_capacity(mean=mean, logvar=logvar, step=0, **opts)
    np.testing.assert_allclose(batch, [abs(kl.mean() - 30.0 / 26)] * 3, rtol=1e-6)
    f = lambda mean, logvar: disentangle.kl_capacity_example(
        mean=mean, logvar=logvar, step=1200, **opts
    ).sum()  # noqa: E731
    check_grads(f, (mean, logvar), order=1, modes=["rev"])
    assert not losses.get_term("kl_capacity_example").batch
    with pytest.raises(ConfigError, match="stair_steps"):
        losses.term_options(
            {"kl_capacity_example": {"stair_steps": -1}}, {"kl_capacity_example": 1}
        )


def test_declared_batch_level_with_checked_options():
    for name in ("tc_mutual_information", "tc_total_correlation", "tc_dimwise_kl", "kl_capacity"):
        assert losses.get_term(name).batch
    with pytest.raises(ConfigError, match="anneal_steps"):
        losses.term_options({"kl_capacity": {"anneal_steps": 0}}, {"kl_capacity": 1.0})


def seen_num_train(*, x, num_train, **_):
    """A test term: the dataset size the trainer hands terms."""
    return jnp.full(x.shape[:1], num_train, jnp.float32)


def seen_step(*, x, step, **_):
    """A test term: the step number the trainer hands terms."""
    return jnp.full(x.shape[:1], step, jnp.float32)


def test_the_trainer_hands_terms_the_dataset_size_and_the_step(tmp_path):
    """β-TC-VAE's terms and the annealed capacity train a VAE on the digits (N = 1438
    training images), and the terms see `num_train` and `step` as the trainer knows them."""
    here = "test_disentangle_terms"
    recipe = (
        "bce + tc_mutual_information + 6*tc_total_correlation + tc_dimwise_kl + 10*kl_capacity"
        f" + 0*{here}:seen_num_train + 0*{here}:seen_step"
    )
    config = tiny_config(loss=recipe, num_steps=20, log_every_steps=20)
    config.model.name = "vae"
    config.loss_options.kl_capacity = {"capacity_max": 1000.0, "anneal_steps": 20}
    _, m = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert m[f"test/{here}:seen_num_train"] == 1438
    assert m[f"test/{here}:seen_step"] == 20  # the trained state's step
    assert all(np.isfinite(m[f"test/{t}"]) for t in ("tc_total_correlation", "tc_dimwise_kl"))
    # At step 20 the capacity is 1000 nats, far above the KL: the term is 1000 − KL.
    assert 990 < m["test/kl_capacity"] < 1000


# --- FactorVAE ------------------------------------------------------------------------------


def test_permute_dims_shuffles_each_column_on_its_own():
    from aejax.models.factor_vae import permute_dims

    z = jnp.arange(64 * 3, dtype=jnp.float32).reshape(64, 3)
    out = permute_dims(jax.random.key(0), z)
    for j in range(3):  # each column keeps its values
        np.testing.assert_array_equal(np.sort(out[:, j]), z[:, j])
    rows = (np.asarray(out) - np.arange(3)) // 3  # the source row of each entry
    assert not np.array_equal(rows[:, 0], rows[:, 1])  # columns shuffled independently
    assert not np.array_equal(rows[:, 0], np.arange(64))


def test_factor_terms_hand_computed():
    d_joint, d_permuted = jnp.asarray([0.0, 2.0]), jnp.asarray([0.0, -1.0])
    np.testing.assert_allclose(disentangle.factor_tc(d_joint=d_joint), [0.0, 2.0])
    want = [2 * math.log(2), math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))]
    got = disentangle.factor_discriminator(d_joint=d_joint, d_permuted=d_permuted)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert losses.get_term("factor_discriminator").batch  # the permutation couples the batch
    assert not losses.get_term("factor_tc").batch


def test_factor_vae_phases_train_their_own_parameters(tmp_path):
    """The VAE's update leaves the discriminator alone and the discriminator's phase trains
    it: after a few steps both have moved, and the discriminator beats chance on its loss."""
    from aejax import config as config_lib

    config = config_lib.load_config("disentangle:factor_vae")
    config.num_epochs, config.num_steps, config.progress_bar = 1, 40, False
    config.log_every_steps = config.steps_per_dispatch = 20
    state, m = train.train_and_evaluate(config, str(tmp_path / "run"))
    init = train.Experiment.from_config(config, str(tmp_path / "fresh")).init_state()
    moved = lambda part: (
        not all(  # noqa: E731
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(state.params[part]), jax.tree.leaves(init.params[part]), strict=True
            )
        )
    )
    assert moved("vae") and moved("discriminator")
    assert np.isfinite(m["test/factor_tc"]) and m["test/factor_discriminator"] > 0
