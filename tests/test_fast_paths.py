"""The fast paths of the training step, each held to its reference: the reshape max-pool to
`nn.max_pool`, the whole-batch model call to the per-example one, the unrolled chunk of
steps to the scanned one. (Speed itself is measured by benchmarks/benchmark.py, never
asserted here.)"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax import losses, train
from aejax.config import base_config
from aejax.models import build_model
from aejax.models.conv import max_pool2

POOL_SHAPES = [(3, 6, 6, 2), (2, 7, 7, 3), (2, 5, 8, 1), (1, 1, 3, 2)]


def _reference_pool(x):
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")


@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_max_pool2_values_and_gradient_equal_nn_max_pool_with_ties(shape):
    """Integer inputs in 0..2 tie often: the gradient must go to the same (first) maximum of
    each window as XLA's select_and_scatter, bit for bit; under vmap too."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 3, shape), jnp.float32)
    np.testing.assert_array_equal(max_pool2(x), _reference_pool(x))
    g = jnp.asarray(rng.normal(size=_reference_pool(x).shape), jnp.float32)
    vjp = lambda f: jax.vjp(f, x)[1](g)[0]
    np.testing.assert_array_equal(vjp(max_pool2), vjp(_reference_pool))
    per_example = lambda f: jax.vmap(lambda xi, gi: jax.vjp(f, xi[None])[1](gi[None])[0][0])
    np.testing.assert_array_equal(per_example(max_pool2)(x, g), per_example(_reference_pool)(x, g))


@pytest.mark.parametrize("shape", POOL_SHAPES)
def test_max_pool2_forward_mode_equals_nn_max_pool_without_ties(shape):
    """Forward mode (jacfwd, the contractive penalty's reference) where the maximum is unique;
    at ties the derivative is not defined and the reference's forward mode picks another
    maximum than its own reverse mode."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    t = jnp.asarray(rng.normal(size=shape), jnp.float32)
    jvp = lambda f: jax.jvp(f, (x,), (t,))[1]
    np.testing.assert_array_equal(jvp(max_pool2), jvp(_reference_pool))
    # Second order, as the contractive penalty's gradient needs: d/dx of a VJP.
    hess = lambda f: jax.grad(lambda x: jnp.sum(jax.grad(lambda y: jnp.sum(f(y) ** 3))(x)))(x)
    np.testing.assert_allclose(hess(max_pool2), hess(_reference_pool), rtol=1e-6)


def test_max_pool2_keeps_nan_and_inf_tangents_out_of_other_positions():
    x = jnp.array([[[[1.0], [2.0]], [[0.0], [0.5]]]])  # one 2x2 window, maximum at (0, 1)
    t = jnp.array([[[[jnp.nan], [1.0]], [[jnp.inf], [0.0]]]])
    assert float(jax.jvp(max_pool2, (x,), (t,))[1].squeeze()) == 1.0


def _model_and_batch(name="mlp", shape=(8, 8, 1), **fields):
    cfg = base_config().model
    cfg.name = name
    for k, v in fields.items():
        cfg[k] = v
    model = build_model(cfg, shape)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(6, *shape)), jnp.float32)
    rngs = {"params": jax.random.key(0), "latent": jax.random.key(1)}
    return model, model.init(rngs, x[:1]), x


MODELS = {
    "mlp": dict(encoder_widths=(16, 4)),
    "mlp_topk": dict(encoder_widths=(16,), top_k=3, code_activation="relu"),
    "conv": dict(name="conv", features=(4, 8), code_activation="relu"),
    "conv_bottleneck": dict(name="conv", features=(4, 8), latent_dim=5),
    "vae": dict(name="vae", encoder_widths=(16, 4)),
    "mlp_dropout": dict(encoder_widths=(16, 4), dropout=0.3),
    "conv_vae": dict(name="conv_vae", features=(4, 8), latent_dim=3),
    "aae": dict(name="aae", encoder_widths=(16, 4)),
}
DRAWS = {"vae", "mlp_dropout", "conv_vae", "aae"}


@pytest.mark.parametrize("which", MODELS)
def test_draws_in_training_is_read_from_the_computation(which):
    model, variables, x = _model_and_batch(**MODELS[which])
    assert train.draws_in_training(model, variables, x) == (which in DRAWS)


@pytest.mark.parametrize("which", sorted(set(MODELS) - DRAWS))
def test_whole_batch_call_equals_per_example_call(which):
    """Deterministic models take the whole-batch path; its outputs and its gradients (of the
    loss terms that read aux, the contractive closed form's encoder chain included) equal
    those of the per-example path."""
    model, variables, x = _model_and_batch(**MODELS[which])
    keys = train.example_keys(jax.random.key(3), jnp.int32(0), jnp.arange(len(x)))
    recipe = "mse + 0.1*contractive" if which.startswith("mlp") else "mse"
    weights = losses.parse_recipe(recipe)

    def loss(params, per_example):
        v = {"params": params}
        (_, aux), _ = train.apply_for_training(model, v, x, keys, per_example)
        tensors = train.model_tensors(model, v, x, aux)
        return losses.total_loss(weights, {}, x=x, **tensors)

    (fast, fast_m), fast_g = jax.value_and_grad(loss, has_aux=True)(variables["params"], False)
    (ref, ref_m), ref_g = jax.value_and_grad(loss, has_aux=True)(variables["params"], True)
    np.testing.assert_allclose(fast, ref, rtol=1e-6)
    for k in ref_m:
        np.testing.assert_allclose(fast_m[k], ref_m[k], rtol=1e-6, atol=1e-7)
    for a, b in zip(jax.tree.leaves(fast_g), jax.tree.leaves(ref_g), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    (x_hat, _), _ = train.apply_for_training(model, variables, x, keys)
    (x_ref, _), _ = train.apply_for_training(model, variables, x, keys, per_example=True)
    np.testing.assert_allclose(x_hat, x_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("which", sorted(DRAWS))
def test_replayed_trace_is_the_models_own_computation(which):
    """`trace_one_example` replays the model's traced computation: the training loss and its
    gradient traced through the replay are the same program, equation for equation, as
    through the model itself (so compiled they agree bit for bit)."""
    model, variables, x = _model_and_batch(**MODELS[which])
    keys = train.example_keys(jax.random.key(3), jnp.int32(0), jnp.arange(len(x)))
    traced = train.trace_one_example(model, variables, x)

    def loss(params, per_example):
        (x_hat, aux), _ = train.apply_for_training(model, {"params": params}, x, keys, per_example)
        return jnp.sum(x_hat**2) + sum(jnp.sum(v) for v in jax.tree.leaves(aux)), aux

    step = lambda params, per_example: jax.value_and_grad(loss, has_aux=True)(params, per_example)
    # The parameters as arguments, not constants of the program: the two traces meet the
    # model's own constants (the conv decoder's 0/1 matrix) and closed-over parameters in
    # different orders, which would only rename the program's constants.
    params = variables["params"]
    replayed = jax.make_jaxpr(lambda p: step(p, traced))(params)
    assert str(replayed) == str(jax.make_jaxpr(lambda p: step(p, True))(params))
    a, b = jax.jit(lambda: step(params, traced))(), jax.jit(lambda: step(params, True))()
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="traced for inputs"):
        traced({"params": {}}, x[:1], keys["dropout"][0], keys["latent"][0])


def test_conv_models_run_unrolled_single_steps_on_cpu_only():
    conv = train.Experiment.from_config(
        tiny_config(**{"model.name": "conv", "model.features": (4, 8), "steps_per_dispatch": 5}),
        "unused",
    )
    mlp = train.Experiment.from_config(tiny_config(steps_per_dispatch=5), "unused")
    assert train.steps_per_dispatch(conv, 5, "cpu") == (1, True)
    assert train.steps_per_dispatch(conv, 5, "gpu") == (5, False)
    assert train.steps_per_dispatch(mlp, 5, "cpu") == (5, False)


@pytest.mark.parametrize("name", ["conv", "vae"])
def test_unrolled_chunk_equals_scanned_chunk(name):
    """Three steps written out one after the other reach the state and metrics of the same
    three steps under lax.scan."""
    fields = {"model.name": name, "model.features": (4, 8)} if name == "conv" else {}
    if name == "vae":
        fields = {"model.name": "vae", "loss": "bce + kl_normal"}
    exp = train.Experiment.from_config(tiny_config(**fields), "unused")
    make_step = lambda axis_name: train.make_train_step(
        exp.model, exp.tx, exp.weights, exp.corrupt, exp.options, axis_name
    )
    idx = jnp.asarray(np.arange(3 * 32).reshape(3, 32) % exp.dataset.num_train, jnp.int32)
    train_x = jnp.asarray(exp.dataset.train_x)
    outs = []
    for unroll in (False, True):
        chunk = jax.jit(train.make_train_chunk(make_step, unroll)(None))
        outs.append(chunk(exp.init_state(), train_x, idx, exp.keys[1]))
    (s_scan, m_scan), (s_unroll, m_unroll) = outs
    assert int(s_unroll.step) == 3
    for a, b in zip(jax.tree.leaves(s_unroll), jax.tree.leaves(s_scan), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for k in m_scan:
        assert m_unroll[k].shape == (3,)
        np.testing.assert_allclose(m_unroll[k], m_scan[k], rtol=1e-5, atol=1e-6)


def test_on_write_sees_every_written_row(tmp_path):
    rows = []
    train.train_and_evaluate(
        tiny_config(), str(tmp_path / "run"), on_write=lambda step, s: rows.append((step, *s))
    )
    train_steps = [r[0] for r in rows if "train/loss" in r]
    eval_steps = [r[0] for r in rows if "eval/loss" in r]
    assert train_steps == [2, 4, 6, 8] and eval_steps == [4, 8]


def test_keep_freed_host_memory_can_be_turned_off(monkeypatch):
    import sys

    assert train.keep_freed_host_memory() == sys.platform.startswith("linux")
    monkeypatch.setenv("AEJAX_KEEP_FREED_MEMORY", "0")
    assert train.keep_freed_host_memory() is False
