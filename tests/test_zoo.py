"""WAE-MMD, MMD-InfoVAE, RAE-L2 and RAE-GP: the MMD and RAE terms against independent
numbers, their gradients, their declarations, and a short training of each through
`train_and_evaluate` with the bundled configs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_config
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax import losses, train
from aejax.config import base_config
from aejax.errors import ConfigError
from aejax.losses import mmd, regularizers
from aejax.models import build_model

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def _load_config(file, preset):
    return config_lib.load_config(f"{file}:{preset}")


# --- MMD ----------------------------------------------------------------------------------


def _numpy_mmd(z, prior, kernel, bandwidth):
    """pythae's estimator written as double loops over examples, in float64."""
    z, prior = np.asarray(z, np.float64), np.asarray(prior, np.float64)
    n, d = z.shape
    c = 2.0 * d * bandwidth**2

    def k(a, b):
        d2 = float(np.sum((a - b) ** 2))
        if kernel == "imq":
            return sum(s * c / (s * c + d2) for s in SCALES)
        return float(np.exp(-d2 / c))

    zz = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pp = sum(k(prior[i], prior[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    zp = sum(k(z[i], prior[j]) for i in range(n) for j in range(n)) / n**2
    return zz + pp - 2 * zp


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("bandwidth", [1.0, 0.3])
def test_mmd_terms_match_a_numpy_double_loop(kernel, bandwidth):
    z = jnp.asarray(np.random.default_rng(0).normal(0.5, 1.3, size=(7, 3)), jnp.float32)
    key = jax.random.key(3)
    term = {"imq": mmd.mmd_imq, "rbf": mmd.mmd_rbf}[kernel]
    out = term(z=z, key=key, bandwidth=bandwidth)
    # The term's prior draws are N(0, I) from its key, shaped like the codes.
    prior = jax.random.normal(key, z.shape)
    assert out.shape == (7,)
    np.testing.assert_allclose(out, _numpy_mmd(z, prior, kernel, bandwidth), rtol=2e-5)


def test_mmd_is_unbiased_and_grows_with_the_shift():
    # Codes drawn from the prior itself: the U-statistic averages to 0 over draws, where
    # the V-statistic (diagonals k(a, a) included) is clearly positive.
    keys = jax.random.split(jax.random.key(0), 400)

    def draws(key, shift):
        kz, kp = jax.random.split(key)
        return jax.random.normal(kz, (16, 4)) + shift, kp

    def unbiased(key, shift=0.0):
        z, kp = draws(key, shift)
        return mmd.mmd_imq(z=z, key=kp)[0]

    def v_statistic(key):
        z, kp = draws(key, 0.0)
        p = jax.random.normal(kp, z.shape)
        k = lambda a, b: mmd.imq_kernel(a, b, 8.0)  # C = 2·d·σ² = 8
        return k(z, z).mean() + k(p, p).mean() - 2 * k(z, p).mean()

    same = jax.vmap(unbiased)(keys)
    stderr = float(same.std()) / np.sqrt(len(keys))
    assert abs(float(same.mean())) < 3 * stderr
    assert float(jax.vmap(v_statistic)(keys).mean()) > 20 * stderr
    shifted = [float(jax.vmap(lambda k, s=s: unbiased(k, s))(keys[:50]).mean()) for s in (0.5, 1)]
    assert 10 * stderr < shifted[0] < shifted[1]


def test_mmd_gradients():
    z = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)))
    for term in (mmd.mmd_imq, mmd.mmd_rbf):
        f = lambda z, term=term: term(z=z, key=jax.random.key(0))
        check_grads(f, (z,), order=1, modes=["rev", "fwd"], rtol=1e-2)


def test_mmd_terms_are_declared_batch_level_with_a_bandwidth_domain():
    assert losses.is_batch_term("mmd_imq") and losses.is_batch_term("mmd_rbf")
    assert not losses.is_batch_term("code_l2") and not losses.is_batch_term("decoder_l2")
    with pytest.raises(ConfigError, match=r"mmd_imq.bandwidth=0.0 must be > 0"):
        losses.term_options({"mmd_imq": {"bandwidth": 0.0}}, {"mmd_imq": 1.0})


# --- RAE terms ----------------------------------------------------------------------------


def _mlp(activation="tanh", output="sigmoid", shape=(6,), widths=(5, 3)):
    cfg = base_config().model
    cfg.encoder_widths, cfg.activation, cfg.output_activation = widths, activation, output
    model = build_model(cfg, shape)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(4, *shape)), jnp.float32)
    return model, model.init(jax.random.key(0), x), x


def test_code_l2_hand_computed():
    z = jnp.array([[3.0, 4.0], [0.0, -1.0]])
    np.testing.assert_allclose(regularizers.code_l2(z=z), [12.5, 0.5])
    check_grads(lambda z: regularizers.code_l2(z=z), (z,), order=2)


def test_decoder_l2_is_half_the_squared_norm_of_the_decoder_parameters_only():
    model, v, x = _mlp()

    @jax.jit
    def term(params):
        _, aux = model.apply({"params": params}, x)
        return regularizers.decoder_l2(z=aux["z"], decoder_chain=aux["decoder_chain"])

    dec = v["params"]["decoder"]
    expected = 0.5 * sum(float(jnp.sum(p**2)) for p in jax.tree.leaves(dec))
    np.testing.assert_allclose(term(v["params"]), [expected] * 4, rtol=1e-6)
    grads = jax.jit(jax.grad(lambda p: term(p)[0]))(v["params"])
    # d(½‖θ‖²)/dθ = θ on the decoder, 0 on the encoder: weight decay of the decoder alone.
    for g, p in zip(jax.tree.leaves(grads["decoder"]), jax.tree.leaves(dec), strict=True):
        np.testing.assert_allclose(g, p, rtol=1e-6)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads["encoder"]))


def test_decoder_l2_makes_pythaes_decoder_weight_decay_updates():
    # pythae's RAE-L2: Adam over the decoder with weight_decay=λ (PyTorch adds λθ to the
    # gradient). Here: Adam on "mse + λ*decoder_l2". Three steps of each must agree.
    model, v, x = _mlp()
    lam = 0.3

    def loss(params, with_term):
        _, aux = model.apply({"params": params}, x)
        recipe = {"mse": 1.0, "decoder_l2": lam} if with_term else {"mse": 1.0}
        return losses.total_loss(recipe, x=x, **aux)[0]

    is_decoder = {k: jax.tree.map(lambda _, k=k: k == "decoder", p) for k, p in v["params"].items()}
    ours = optax.adam(1e-2)
    pythae = optax.chain(optax.masked(optax.add_decayed_weights(lam), is_decoder), optax.adam(1e-2))
    results = []
    for tx, with_term in ((ours, True), (pythae, False)):

        @jax.jit
        def step(params, state, tx=tx, with_term=with_term):
            grads = jax.grad(loss)(params, with_term)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        params, state = v["params"], tx.init(v["params"])
        for _ in range(3):
            params, state = step(params, state)
        results.append(params)
    moved = jax.tree.leaves(
        jax.tree.map(lambda a, b: jnp.abs(a - b).max(), results[0], v["params"])
    )
    assert max(float(m) for m in moved) > 1e-3
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _decoder_jacobians(model, v, z):
    """∂x̂/∂z per example through the model's own `decode` method (not the chain): [B, D, d]."""
    one = lambda c: model.apply(v, c[None], method="decode")[0].reshape(-1)
    return jax.vmap(jax.jacrev(one))(z)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_decoder_penalties_match_the_decoders_jacobian(activation):
    model, v, x = _mlp(activation=activation)
    _, aux = model.apply(v, x)
    z, chain = aux["z"], aux["decoder_chain"]
    np.testing.assert_allclose(regularizers.apply_chain(chain, z), aux["x_hat"], rtol=1e-6)
    jac = _decoder_jacobians(model, v, z)  # [4, 6, 3]
    gp = regularizers.decoder_gradient_penalty(z=z, decoder_chain=chain)
    np.testing.assert_allclose(gp, jnp.sum(jnp.sum(jac, axis=1) ** 2, axis=1), rtol=1e-5)
    frob = regularizers.decoder_jacobian(z=z, decoder_chain=chain)
    np.testing.assert_allclose(frob, jnp.sum(jac**2, axis=(1, 2)), rtol=1e-5)
    assert float(jnp.min(gp)) > 0 and not np.allclose(gp, frob)


def test_decoder_penalty_gradients():
    model, v, x = _mlp()
    _, aux = model.apply(v, x)
    chain = aux["decoder_chain"]
    for term in (regularizers.decoder_gradient_penalty, regularizers.decoder_jacobian):
        f = jax.jit(lambda z, chain, term=term: term(z=z, decoder_chain=chain))
        check_grads(f, (aux["z"], chain), order=1, modes=["rev"], rtol=1e-2)


def test_decoder_terms_refuse_a_model_without_a_decoder_chain(tmp_path):
    config = tiny_config(loss="mse + 1e-4*decoder_gradient_penalty")
    config.model.name = "conv"
    with pytest.raises(ConfigError, match="needs decoder_chain, which this model does not"):
        train.Experiment.from_config(config, str(tmp_path))


# --- the four models, trained -------------------------------------------------------------


def _short(config, steps=60):
    config.num_epochs, config.num_steps = 0, steps
    config.eval_every_steps = config.checkpoint_every_steps = steps // 2
    config.log_every_steps = config.steps_per_dispatch = steps // 4
    config.eval_batch_size, config.progress_bar = 128, False
    config.data.max_test = 256  # two evaluation batches: the MMD sees full-size batches
    return config


@pytest.mark.parametrize(
    ("file", "preset", "term"),
    [
        ("wae.py", "digits", "mmd_imq"),
        ("wae.py", "rbf", "mmd_rbf"),
        ("info_vae.py", "digits", "mmd_imq"),
        ("rae.py", "l2", "decoder_l2"),
        ("rae.py", "gp", "decoder_gradient_penalty"),
    ],
)
def test_each_model_trains_and_lowers_its_test_loss(tmp_path, file, preset, term):
    config = _short(_load_config(file, preset))
    exp = train.Experiment.from_config(config, str(tmp_path / "probe"))
    before = exp.evaluate(exp.init_state())
    state, after = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert int(state.step) == 60
    assert np.isfinite(after[f"test/{term}"])
    assert after["test/loss"] < 0.8 * before["test/loss"], (before, after)


def test_wae_resume_is_bit_exact(tmp_path):
    # The MMD's prior draws come from the step's key: a resumed run redraws the same ones.
    config = _short(_load_config("wae.py", "digits"), steps=16)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    whole = train.train_and_evaluate(config, straight)[0]
    assert train.train_and_evaluate(config, resumed, stop_after=8)[1]["step"] == 8
    again = train.train_and_evaluate(config, resumed)[0]
    assert int(again.step) == 16
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(again.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mnist_presets_follow_pythae():
    for file, preset, recipe in (
        ("wae.py", "mnist", "mse + 10*mmd_imq"),
        ("info_vae.py", "mnist", "0.5*mse + 1*kl_normal + 999*mmd_imq"),
        ("rae.py", "l2_mnist", "mse + 0.01*code_l2 + 0.0001*decoder_l2"),
        ("rae.py", "gp_mnist", "mse + 0.01*code_l2 + 0.0001*decoder_gradient_penalty"),
    ):
        config = _load_config(file, preset)
        assert config.loss == recipe
        assert tuple(config.model.encoder_widths) == (512, 16)
        assert (config.batch_size, config.num_epochs) == (100, 100)
        assert config.optimizer.schedule == "constant"
        assert config.optimizer.learning_rate == 1e-3
