"""The fast paths of the training step, each held to its reference: the reshape max-pool to
`nn.max_pool`, pmap's sliced draws to the global batch's draw, the unrolled chunk of steps
to the scanned one. (Speed itself is measured by
benchmarks/benchmark.py, never asserted here.)"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax import perf, train
from aejax.models.conv import max_pool2
from aejax.train import keys
from aejax.train.dispatch import steps_per_dispatch

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


@pytest.mark.parametrize("first_row", [0, 3, 9])
def test_rows_keys_draw_their_rows_of_the_global_draw(first_row):
    """What each device draws under pmap (`keys.rows_key`) is its rows of the one-device
    draw of the global batch, for the draws the model, the corruptions and the loss terms
    make: normal, uniform, Bernoulli, integers, after splits and fold_ins."""
    key = jax.random.key(5)
    local, total = 3, 12
    rows = keys.rows_key(key, first_row, local, total)
    draws = {
        "normal": lambda k, n: jax.random.normal(k, (n, 4)),
        "uniform": lambda k, n: jax.random.uniform(k, (n, 2, 3)),
        "bernoulli": lambda k, n: jax.random.bernoulli(k, 0.3, (n, 5)),
        "randint": lambda k, n: jax.random.randint(k, (n,), 0, 10),
        "folded": lambda k, n: jax.random.normal(jax.random.fold_in(k, 7), (n, 2)),
        "split": lambda k, n: jax.random.normal(jax.random.split(k)[1], (n, 2)),
    }
    for name, draw in draws.items():
        whole = np.asarray(jax.jit(draw, static_argnums=1)(key, total))
        mine = np.asarray(jax.jit(draw, static_argnums=1)(rows, local))
        # Equal up to the last bit of float rounding (normal's erf_inv, compiled apart).
        np.testing.assert_allclose(
            mine, whole[first_row : first_row + local], rtol=1e-6, atol=1e-6, err_msg=name
        )
    # A draw whose leading axis is not the device's batch is the same on every device.
    np.testing.assert_array_equal(jax.random.normal(rows, (5,)), jax.random.normal(key, (5,)))


def test_step_keys_are_independent_of_each_other_and_of_the_step():
    k = jax.random.key(0)
    a, b = train.keys.step_keys(k, jnp.int32(0)), train.keys.step_keys(k, jnp.int32(1))
    draws = [jax.random.normal(v, (3,)) for v in (*a.values(), *b.values())]
    assert len({tuple(np.asarray(d).round(6)) for d in draws}) == len(draws)


def test_conv_models_run_unrolled_single_steps_on_cpu_only():
    conv = train.Experiment.from_config(
        tiny_config(**{"model.name": "conv", "model.features": (4, 8), "steps_per_dispatch": 5}),
        "unused",
    )
    mlp = train.Experiment.from_config(tiny_config(steps_per_dispatch=5), "unused")
    assert steps_per_dispatch(conv, 5, "cpu") == (1, True)
    assert steps_per_dispatch(conv, 5, "gpu") == (5, False)
    assert steps_per_dispatch(mlp, 5, "cpu") == (5, False)


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
    eval_steps = [r[0] for r in rows if "test/loss" in r]
    assert train_steps == [2, 4, 6, 8] and eval_steps == [4, 8]


def test_keep_freed_host_memory_can_be_turned_off():
    import sys

    assert perf.keep_freed_host_memory(True) == sys.platform.startswith("linux")
    assert perf.keep_freed_host_memory(False) is False
