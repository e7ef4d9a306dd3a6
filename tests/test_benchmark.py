"""The benchmark harness (benchmarks/): its timing loop, variants, PyTorch peers,
target checks and tables. No speed is asserted: speed is what the script measures."""

import json
import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import measure
import runner
import speed_tables
import timing
import torch_peer
from aejax import models
from aejax.errors import ConfigError


def test_timing_loop_sizes_its_windows_from_the_warm_up():
    rates = timing.time_windows(lambda n: time.sleep(n * 0.002), windows=3, window_s=0.05)
    assert len(rates) == 3 and all(200 < r <= 500 for r in rates)
    s = timing.summarize([1.0, 3.0, 2.0], batch_size=10)
    assert s["steps_per_s"] == 2.0 and s["examples_per_s"] == 20.0
    assert (s["steps_per_s_min"], s["steps_per_s_max"]) == (1.0, 3.0)


def test_every_variant_resolves_to_a_config():
    for name in measure.VARIANTS:
        config = measure.variant_config(name, batch_size=64)
        assert config.batch_size == 64 and not config.progress_bar
    assert measure.variant_config("ae").model.encoder_widths == (256, 32)
    assert measure.variant_config("cae_jacrev").loss_options.contractive.mode == "jacrev"
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        measure.variant_config("nope")


@pytest.mark.parametrize("name", ["ae", "ae_deep", "conv_ae", "vae", "conv_vae"])
def test_torch_peer_has_the_jax_models_layers(name):
    """Same parameter count, parameter shapes and output shape as the JAX model
    (initialization aside)."""
    torch = pytest.importorskip("torch")
    config = measure.variant_config(name, batch_size=4)
    model, loss_fn, _, shape = torch_peer.torch_peer(config, (28, 28, 1))
    jax_model = models.build_model(config.model, (28, 28, 1))
    params = jax.eval_shape(jax_model.init, jax.random.key(0), np.zeros((1, 28, 28, 1)))
    jax_sizes = sorted(int(np.prod(p.shape)) for p in jax.tree.leaves(params["params"]))
    assert sorted(p.numel() for p in model.parameters()) == jax_sizes
    x = torch.rand(4, *shape)
    out = model(x)
    logits = out[0] if name.endswith("vae") else out
    assert logits.reshape(4, -1).shape == (4, 784)
    assert loss_fn(out, x).ndim == 0


def test_torch_peer_process_leaves_jax_unstarted():
    """The PyTorch peer's process never starts a JAX backend: on a GPU, JAX would claim most
    of the device's memory and PyTorch would be measured in what is left."""
    pytest.importorskip("torch")
    out = runner.run_isolated(
        "measure_torch", name="ae", mode="eager", batch_size=8, windows=1, window_s=0.01, threads=1
    )
    assert "error" not in out, out
    assert out["jax_started"] is False and out["threads"] == 1 and out["steps_per_s"] > 0


def test_torch_vae_peer_loss_is_the_negative_elbo():
    """The peer's loss equals the JAX recipe's terms on the same logits, means and
    log-variances."""
    torch = pytest.importorskip("torch")
    from aejax import losses

    config = measure.variant_config("vae", batch_size=4)
    config.loss = "bce + 4.0*kl_normal"  # a β-VAE: the weights count
    _, loss_fn, _, _ = torch_peer.torch_peer(config, (28, 28, 1))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 784)).astype(np.float32)
    logits, mean, logvar = (
        rng.normal(size=s).astype(np.float32) for s in ((4, 784),) + ((4, 20),) * 2
    )
    got = loss_fn(tuple(torch.from_numpy(a) for a in (logits, mean, logvar)), torch.from_numpy(x))
    want = losses.bce(x=x, logits=logits) + 4.0 * losses.kl_normal(mean=mean, logvar=logvar)
    np.testing.assert_allclose(float(got), float(np.mean(want)), rtol=1e-5)


def test_no_torch_peer_where_the_recipe_is_not_plain():
    pytest.importorskip("torch")
    for name in ("dae", "aae", "sparse_kl", "cae_auto"):
        assert torch_peer.torch_peer(measure.variant_config(name), (28, 28, 1)) is None
    config = measure.variant_config("vae")
    config.model.num_samples, config.loss = 5, "iwae_bce"
    assert torch_peer.torch_peer(config, (28, 28, 1)) is None


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
    targets = {t["target"]: t for t in speed_tables.check_targets(variants, peers)}
    assert targets["ae: training loop end to end / bare step"]["met"] is True
    assert targets["ae: end to end / PyTorch eager"]["value"] == pytest.approx(1.94)
    assert targets["ae: end to end / PyTorch eager"]["met"] is False
    assert targets["ae: end to end / PyTorch compile"]["met"] is False
    assert targets["cae_auto / ae (bare steps/s)"]["met"] is True
    assert targets["cae_auto / max(cae_jacfwd, cae_jacrev)"]["value"] == pytest.approx(4.5)
    assert targets["ae: 2 s / chunk compile"]["met"] is True
    table = speed_tables.variant_table(list(variants.values()), peak_flops=1e12)
    assert table.count("\n") == 1 + len(variants) and "| ae | 1.20 (0.20 + 1.00, -) |" in table
    assert "| cae_auto | 1.20 (0.20 + 1.00, -; 1.10-1.40) | 1.50 (1.40-2.00; -) |" in table
    assert "| ae | 1/1 |" in speed_tables.peer_table(variants, peers)
    # 2e8 FLOPs a step at 100 (bare), 97 (e2e), 50 (eager) and 80 (compile) steps/s
    with_mfu = speed_tables.peer_table(variants, peers, peak_flops=1e12)
    assert with_mfu.splitlines()[0].endswith(" MFU bare / e2e / eager / compile |")
    assert with_mfu.splitlines()[2].endswith("| 2.0% / 1.9% / 1.0% / 1.6% |")


def test_matmul_precision_is_set_in_the_measuring_process():
    """The child process runs with the precision asked for and says so; JAX's products then
    carry it into the program; a name that is not a precision fails before any process."""
    out = runner.run_isolated("machine", matmul_precision="tensorfloat32")
    assert out["matmul_precision"] == "tensorfloat32" and out["backend"] == jax.default_backend()
    before = jax.config.jax_default_matmul_precision
    try:
        timing.set_matmul_precision("float32")
        text = jax.jit(jnp.dot).lower(jnp.ones((2, 2)), jnp.ones((2, 2))).as_text()
        assert "HIGHEST" in text
    finally:
        jax.config.update("jax_default_matmul_precision", before)
    with pytest.raises(ValueError, match="unknown matmul precision 'tf32'; valid: float32, "):
        runner.run_isolated("machine", matmul_precision="tf32")
    with pytest.raises(ValueError, match="unknown matmul precision"):
        runner.run_benchmark(["ae"], matmul_precision="bf16", log=lambda _: None)


def test_median_of_compiles():
    """The run whose total is the median counts, with the spread of the totals; each run
    traces afresh."""
    runs = iter([(0.5, 2.0, "slow"), (0.2, 1.0, "fast"), (0.3, 1.2, "middle")])
    (lower, seconds, result), spread = timing.median_of_compiles(lambda: next(runs), 3)
    assert (lower, seconds, result) == (0.3, 1.2, "middle") and spread == (1.2, 2.5)
    traces = []
    f = jax.jit(lambda x: traces.append(1) or x + 1)
    timing.median_of_compiles(lambda: (0.0, float(f(1.0)), None), 3)
    assert len(traces) == 3


def test_cost_counts_fused_kernels():
    """An elementwise chain fuses into one kernel; two unrelated outputs need two."""
    x = jnp.ones((8, 8))
    chain = jax.jit(lambda a: jnp.sin(a) * 2.0 + 1.0).lower(x).compile()
    assert timing._cost(chain)["kernels"] == 1
    two = jax.jit(lambda a, b: (jnp.sin(a), jnp.cos(b).sum(0))).lower(x, x).compile()
    assert timing._cost(two)["kernels"] == 2


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"names": ["ae", "vea"]}, "--configs='vea' is not a known variant; valid: aae, ae,"),
        ({"sweeps": ("depth",)}, "--sweep='depth' is not a known sweep; valid: batch, code"),
        ({"peer": "jax"}, "--peer='jax' is not a known peer; valid: torch"),
        ({"batch_size": -3}, "--batch_size=-3 must be an integer >= 0"),
        ({"windows": 0}, "--windows=0 must be an integer >= 1"),
        ({"e2e_epochs": 0}, "--e2e_epochs=0 must be an integer >= 1"),
        ({"window_s": 0.0}, "--window_s=0.0 must be a finite number > 0"),
        ({"e2e_epoch_s": float("nan")}, "--e2e_epoch_s=nan must be a finite number > 0"),
        ({"peak_flops": -1.0}, "--peak_flops=-1.0 must be a finite number >= 0"),
        ({"matmul_precision": "bf16"}, "unknown matmul precision 'bf16'; valid: float32, "),
    ],
)
def test_bad_arguments_fail_before_anything_is_measured(bad, message):
    logged = []
    with pytest.raises(ConfigError, match=re.escape(message)):
        runner.run_benchmark(**{"names": ["ae"], **bad}, log=logged.append)
    assert logged == []  # not even the machine's description: no process was started


def test_results_are_saved_after_each_variant_and_never_overwritten(tmp_path, monkeypatch):
    """A run cut short keeps the variants it measured; an existing file stops the run before
    it starts, untouched; a failing measuring process reports its exception's line."""
    path = str(tmp_path / "runs" / "bench.json")
    saved = {}

    def fake_isolated(function, timeout=3600, matmul_precision="float32", **kwargs):
        if function == "machine":
            return {"cpus": 2, "matmul_precision": matmul_precision}
        if os.path.exists(path):  # what a run killed now would have kept
            with open(path) as f:
                saved[kwargs["name"]] = [v["name"] for v in json.load(f)["variants"]]
        return {**kwargs, "error": "ConfigError: just a test"}

    monkeypatch.setattr(runner, "run_isolated", fake_isolated)
    monkeypatch.setattr(runner, "_check_data", lambda names: None)  # measured by the fake
    results = runner.run_benchmark(
        ["ae", "vae", "aae"], e2e=False, warm_compile=False, json_path=path, log=lambda _: None
    )
    assert saved == {"vae": ["ae"], "aae": ["ae", "vae"]}
    assert runner.failures(results) == [
        f"{name}: ConfigError: just a test" for name in ("ae", "vae", "aae")
    ]
    with open(path) as f:
        results = json.load(f)
    assert [v["name"] for v in results["variants"]] == ["ae", "vae", "aae"]
    assert os.listdir(tmp_path / "runs") == ["bench.json"]  # no temporary left behind
    with pytest.raises(ConfigError, match="bench.json already exists; earlier results are not"):
        runner.run_benchmark(["ae"], json_path=path, log=lambda _: None)
    with open(path) as f:
        assert json.load(f) == results
    monkeypatch.undo()
    failed = runner.run_isolated("no_such_worker")
    assert failed["error"] == "KeyError: 'no_such_worker'", failed
    assert failed["stderr_tail"][0].startswith("Traceback")


def test_script_reports_a_bad_flag_in_one_line(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "benchmark.py")
    args = [sys.executable, script, "--windows=0", f"--json={tmp_path}/b.json"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --windows=0 must be an integer >= 1"
    assert not os.path.exists(tmp_path / "b.json")


def test_script_without_data_ends_in_one_line_naming_it(tmp_path):
    """Without MNIST the benchmark stops before measuring anything, and never exits 0."""
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "benchmark.py")
    args = [sys.executable, script, "--configs=vae", f"--json={tmp_path}/b.json"]
    env = {**os.environ, "AEJAX_DATA_DIR": str(tmp_path / "none")}
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: variant vae needs the IDX files of mnist in {tmp_path}/none/mnist (set "
        "AEJAX_DATA_DIR to the folder that holds it)"
    ]
    assert not os.path.exists(tmp_path / "b.json")


def test_end_to_end_runs_last_about_as_long_for_every_variant():
    """MNIST's 468 steps an epoch at batch 128, in dispatches of 39 steps; 3 epochs of 8 s."""
    # 20 steps/s: 160 steps an epoch would do, cut to whole dispatches: 4 x 39 = 156.
    assert measure.e2e_schedule(468, 39, 20.0, 3, 8.0) == (156, 3)
    # 600 steps/s: a whole epoch takes 0.78 s; 24 s hold 30.8 of them.
    assert measure.e2e_schedule(468, 39, 600.0, 3, 8.0) == (468, 31)
    # 58 steps/s: 464 steps would do, but whole dispatches make 468, the whole epoch.
    assert measure.e2e_schedule(468, 39, 58.0, 3, 8.0) == (468, 3)
    assert measure.e2e_schedule(468, 39, 0.5, 3, 8.0) == (39, 3)  # at least one dispatch
