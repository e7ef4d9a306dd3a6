"""The benchmark harness (aejax/benchmark.py): its timing loop, variants, PyTorch peers,
target checks and tables. No speed is asserted: speed is what the script measures."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import benchmark, models


def test_timing_loop_sizes_its_windows_from_the_warm_up():
    rates = benchmark.time_windows(lambda n: time.sleep(n * 0.002), windows=3, window_s=0.05)
    assert len(rates) == 3 and all(200 < r <= 500 for r in rates)
    s = benchmark.summarize([1.0, 3.0, 2.0], batch_size=10)
    assert s["steps_per_s"] == 2.0 and s["examples_per_s"] == 20.0
    assert (s["steps_per_s_min"], s["steps_per_s_max"]) == (1.0, 3.0)


def test_every_variant_resolves_to_a_config():
    for name in benchmark.VARIANTS:
        config = benchmark.variant_config(name, batch_size=64)
        assert config.batch_size == 64 and not config.progress_bar
    assert benchmark.variant_config("ae").model.encoder_widths == (256, 32)
    assert benchmark.variant_config("cae_jacrev").loss_options.contractive.mode == "jacrev"
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        benchmark.variant_config("nope")


@pytest.mark.parametrize("name", ["ae", "ae_deep", "conv_ae"])
def test_torch_peer_has_the_jax_models_layers(name):
    """Same parameter count and output shape as the JAX model (initialization aside)."""
    torch = pytest.importorskip("torch")
    config = benchmark.variant_config(name, batch_size=4)
    model, loss_fn, _, shape = benchmark.torch_peer(config, (28, 28, 1))
    jax_model = models.build_model(config.model, (28, 28, 1))
    params = jax.eval_shape(jax_model.init, jax.random.key(0), np.zeros((1, 28, 28, 1)))
    n_jax = sum(np.prod(p.shape) for p in jax.tree.leaves(params["params"]))
    assert sum(p.numel() for p in model.parameters()) == n_jax
    x = torch.rand(4, *shape)
    assert model(x).reshape(4, -1).shape == (4, 784)
    assert loss_fn(model(x), x).ndim == 0


def test_no_torch_peer_where_the_recipe_is_not_plain():
    pytest.importorskip("torch")
    for name in ("dae", "vae", "aae", "sparse_kl", "cae_auto"):
        assert benchmark.torch_peer(benchmark.variant_config(name), (28, 28, 1)) is None


def test_targets_and_tables():
    bare = dict(lower_s=0.2, compile_s=1.0, chunk_compile_s=1.5, steps_per_s_min=90.0)
    bare.update(steps_per_s_max=110.0, examples_per_s=12800.0, peak_rss_mb=900.0)
    bare.update(load_before=1.0, load_after=1.0, flops_per_step=2e8)
    variants = {
        "ae": dict(bare, variant="ae", steps_per_s=100.0, e2e_steps_per_s=97.0),
        "cae_auto": dict(bare, variant="cae_auto", steps_per_s=45.0),
        "cae_closed_form": dict(bare, variant="cae_closed_form", steps_per_s=46.0),
        "cae_jacrev": dict(bare, variant="cae_jacrev", steps_per_s=10.0),
        "cae_jacfwd": dict(bare, variant="cae_jacfwd", steps_per_s=2.0),
    }
    variants["ae"].update(e2e_over_bare=0.97, params=1)
    variants["cae_auto"].update(step_compile_spread_s=(1.1, 1.4), chunk_compile_spread_s=(1.4, 2))
    peers = {("ae", "eager"): {"steps_per_s": 50.0, "threads": 2, "params": 1}}
    peers[("ae", "compile")] = {"steps_per_s": 80.0, "threads": 1, "compile_s": 9.0}
    targets = {t["target"]: t for t in benchmark.check_targets(variants, peers)}
    assert targets["ae: training loop end to end / bare step"]["met"] is True
    assert targets["ae: end to end / PyTorch eager"]["value"] == pytest.approx(1.94)
    assert targets["ae: end to end / PyTorch eager"]["met"] is False
    assert targets["ae: end to end / PyTorch compile"]["met"] is False
    assert targets["cae_auto / ae (bare steps/s)"]["met"] is True
    assert targets["cae_auto / max(cae_jacfwd, cae_jacrev)"]["value"] == pytest.approx(4.5)
    assert targets["ae: 2 s / chunk compile"]["met"] is True
    table = benchmark.variant_table(list(variants.values()), peak_flops=1e12)
    assert table.count("\n") == 1 + len(variants) and "| ae | 1.20 (0.20 + 1.00, -) |" in table
    assert "| cae_auto | 1.20 (0.20 + 1.00, -; 1.10-1.40) | 1.50 (1.40-2.00; -) |" in table
    assert "| ae | 1/1 |" in benchmark.peer_table(variants, peers)


def test_median_of_compiles():
    """The run whose total is the median counts, with the spread of the totals; each run
    traces afresh."""
    runs = iter([(0.5, 2.0, "slow"), (0.2, 1.0, "fast"), (0.3, 1.2, "middle")])
    (lower, seconds, result), spread = benchmark.median_of_compiles(lambda: next(runs), 3)
    assert (lower, seconds, result) == (0.3, 1.2, "middle") and spread == (1.2, 2.5)
    traces = []
    f = jax.jit(lambda x: traces.append(1) or x + 1)
    benchmark.median_of_compiles(lambda: (0.0, float(f(1.0)), None), 3)
    assert len(traces) == 3


def test_cost_counts_fused_kernels():
    """An elementwise chain fuses into one kernel; two unrelated outputs need two."""
    x = jnp.ones((8, 8))
    chain = jax.jit(lambda a: jnp.sin(a) * 2.0 + 1.0).lower(x).compile()
    assert benchmark._cost(chain)["kernels"] == 1
    two = jax.jit(lambda a, b: (jnp.sin(a), jnp.cos(b).sum(0))).lower(x, x).compile()
    assert benchmark._cost(two)["kernels"] == 2
