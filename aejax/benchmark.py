"""Speed of every variant on the current backend, and of a PyTorch peer.

For each variant (a config of `configs/` at its MNIST preset, see `VARIANTS`) two things
are measured, in a fresh process per variant (so memory peaks and caches are its own):

- the bare step: the trainer's one step body (`aejax.train.make_train_step`: forward, the
  loss recipe, gradients, the optimizer update, the non-finite guard), jitted, called over
  and over on one device-resident batch. Reported: trace + lower and compile seconds (the
  median of three compilations, with their spread; and those of the training loop's chunk
  of steps, also with JAX's persistent compilation cache filled), the model FLOPs per
  step from XLA's cost analysis, steps/s and examples/s (the median of timed windows
  after a warm-up, half of them before and half after the end-to-end runs, with the
  slowest and the fastest window), the step's temporary buffers (`memory_analysis`) and
  the process's peak memory.
- end to end: `aejax.train.train_and_evaluate` on the same config for a few epochs, with
  its real input pipeline (the data set resident on the device, each step gathering its
  batch inside the compiled chunk of steps), logging and asynchronous checkpoints at
  their normal cadence. Timed twice: the training loop alone (evaluation only after the
  last step; timed from the first log row, after compilation, to the last), and with the
  configs' evaluation on the test split every epoch (timed from the first evaluation,
  after the eval step has compiled, to the last). Everything the loop does in those
  stretches counts; nothing is subtracted. Slow variants train on a fraction of MNIST
  (train and test split cut alike, so evaluation keeps its share of the time; checkpoints
  every 468 steps as in the full run), sized so that an epoch lasts about `e2e_epoch_s`
  and holds whole chunks of steps; fast variants train more epochs of the whole set
  instead, so that every timed stretch lasts about `e2e_epochs * e2e_epoch_s`.

With `peer="torch"` the same architecture, batch and optimizer written in plain PyTorch
(`torch_peer`) is timed like the bare step, eager and under `torch.compile`, each with one
thread per CPU and with one thread (the faster counts), in processes of their own.
`SWEEPS` time the bare step of the reference MLP and conv AEs on synthetic data while the
batch size, the input size or the code size grows. Every measuring process computes
float32 matrix products and convolutions at one precision, the same for JAX and PyTorch
(`MATMUL_PRECISIONS`).

`time_windows` is the one timing loop of every measurement. `experiments/benchmark.py` is
the script; docs/BENCHMARKS.md holds the tables.
"""

import dataclasses
import functools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax import config as config_lib
from aejax import errors, xla_flags


@dataclasses.dataclass(frozen=True)
class Variant:
    """A benchmarked config: `config` is "file.py:preset" in configs/, `overrides` maps
    dotted field names to values."""

    config: str
    overrides: dict = dataclasses.field(default_factory=dict)
    about: str = ""


# The reference architecture of the speed targets: a 784-256-32 ReLU MLP AE, batch 128, Adam.
_AE = {"model.encoder_widths": (256, 32)}

VARIANTS: dict[str, Variant] = {
    "ae": Variant("ae.py:mnist", _AE, "MLP AE 784-256-32 (the reference)"),
    "ae_deep": Variant("ae.py:mnist", {}, "MLP AE 784-512-256-128-32"),
    "sparse_kl": Variant("sparse_ae.py:kl_mnist", {}, "784-1024 sigmoid, KL sparsity"),
    "sparse_topk": Variant("sparse_ae.py:topk_mnist", {}, "784-1000, top-25 code"),
    "dae": Variant("dae.py:mnist", {}, "denoising 784-1024, Gaussian noise"),
    **{
        f"cae_{mode}": Variant(
            "cae.py:deep_mnist",
            {"loss_options.contractive.mode": mode},
            f"contractive 784-256-32, exact penalty by {mode}",
        )
        for mode in ("auto", "closed_form", "jacrev", "jacfwd")
    },
    "cae_sigmoid": Variant("cae.py:sigmoid_mnist", {}, "contractive 784-1000 sigmoid (auto)"),
    "cae_deep": Variant(
        "ae.py:mnist",
        {"loss": "mse + 0.01*contractive"},
        "contractive 784-512-256-128-32 (auto: the closed form), beside ae_deep",
    ),
    "vae": Variant("vae.py:mnist", {}, "VAE 784-512-256-(20)"),
    "conv_ae": Variant("conv_ae.py:mnist", {}, "conv AE 16-32, 7x7x32 code"),
    "conv_vae": Variant("conv_vae.py:mnist", {}, "conv VAE 32-64, 20-d latent"),
    "aae": Variant("aae.py:mnist", {}, "adversarial AE 784-1000-1000-8, three updates"),
}


# --------------------------------------------------------------------------- timing


def time_windows(
    run: Callable[[int], Any], windows: int = 5, window_s: float = 1.0, warmup_s: float = 0.5
) -> list[float]:
    """Steps per second of `run`, in several timed windows after a warm-up.

    Args:
      run: `run(n)` performs n steps and returns once the last one has finished (for JAX:
        after `block_until_ready`).
      windows: how many timed windows.
      window_s: about how long each window lasts; the warm-up, which runs for at least
        `warmup_s` in growing batches of steps, sizes them.
    Returns:
      steps/s of each window, in order.
    """
    n, start = 1, time.perf_counter()
    while True:
        t0 = time.perf_counter()
        run(n)
        dt = time.perf_counter() - t0
        if time.perf_counter() - start >= warmup_s and dt > 0.05:
            break
        n *= 2
    per_window = max(1, round(n / dt * window_s))
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        run(per_window)
        rates.append(per_window / (time.perf_counter() - t0))
    return rates


def summarize(rates: list[float], batch_size: int) -> dict:
    """Median steps/s and examples/s of timed windows, with the slowest and fastest."""
    median = statistics.median(rates)
    return {
        "steps_per_s": median,
        "steps_per_s_min": min(rates),
        "steps_per_s_max": max(rates),
        "examples_per_s": median * batch_size,
        "windows": len(rates),
    }


def peak_memory(jax_device: bool = True) -> dict:
    """The process's peak resident memory (`getrusage` max RSS: host memory, which on CPU
    is also the device's), and with `jax_device` JAX's device's peak allocation where the
    backend reports it (GPU, TPU)."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if not jax_device:
        return out
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # CPU backends may not implement it
        stats = {}
    if "peak_bytes_in_use" in stats:
        out["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    return out


# How float32 matrix products and convolutions are computed, set alike for JAX and the
# PyTorch peer in every measuring process (`run_isolated`). The two frameworks' defaults
# differ on recent NVIDIA GPUs: JAX computes float32 products in TensorFloat-32, PyTorch in
# full float32 (its cuDNN convolutions in TensorFloat-32). On CPU both compute full float32
# under either setting. JAX's name -> PyTorch's `fp32_precision`.
MATMUL_PRECISIONS = {"float32": "ieee", "tensorfloat32": "tf32"}


def check_matmul_precision(precision: str) -> None:
    if precision not in MATMUL_PRECISIONS:
        raise errors.ConfigError(
            f"unknown matmul precision {precision!r}; valid: {', '.join(MATMUL_PRECISIONS)}"
        )


def set_matmul_precision(precision: str) -> None:
    """Makes `precision` (a key of `MATMUL_PRECISIONS`) JAX's default for float32 matrix
    products and convolutions in this process; `measure_torch` reads it from there."""
    check_matmul_precision(precision)
    jax.config.update("jax_default_matmul_precision", precision)


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine() -> dict:
    """What the numbers were measured on."""
    import flax
    import jaxlib

    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "devices": jax.device_count(),
        "cpus": cpus(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "python": sys.version.split()[0],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # e.g. aejax/xla_flags.py's
    }


# --------------------------------------------------------------------------- configs


def set_field(config: ml_collections.ConfigDict, dotted: str, value) -> None:
    """Sets config.a.b.c = value from "a.b.c"."""
    *path, last = dotted.split(".")
    node = config
    for name in path:
        node = node[name]
    node[last] = value


def variant_config(name: str, batch_size: int = 0) -> ml_collections.ConfigDict:
    """The config of VARIANTS[name], at `batch_size` (0: the config's own)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    config = config_lib.load_config(variant.config)
    for dotted, value in variant.overrides.items():
        set_field(config, dotted, value)
    if batch_size:
        config.batch_size = batch_size
    config.progress_bar = False
    return config


# --------------------------------------------------------------------------- JAX


def _cost(compiled) -> dict:
    """FLOPs per call from XLA's cost analysis, the call's temporary buffers, and its number
    of fused kernels (XLA:CPU's compile time grows with them: each is optimized and emitted
    by LLVM on its own)."""
    out = {}
    try:
        out["kernels"] = compiled.as_text().count(" fusion(")
    except Exception:
        pass
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost
        if cost and cost.get("flops", -1) > 0:
            out["flops_per_step"] = float(cost["flops"])
    except Exception:  # not every backend reports a cost
        pass
    try:
        out["step_temp_mb"] = compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:
        pass
    return out


COMPILES = 3  # compilations timed per measurement; the median counts


def median_of_compiles(compile_once: Callable[[], tuple[float, float, Any]], n: int):
    """Runs `compile_once() -> (trace_and_lower_s, compile_s, result)` n times, each after
    `jax.clear_caches()` so that it traces and compiles afresh (a single compilation on
    this machine varies by 10-20%). Returns (lower_s, compile_s, result) of the run whose
    total is the median, and the (min, max) of the totals."""
    runs = []
    for _ in range(n):
        jax.clear_caches()
        runs.append(compile_once())
    runs.sort(key=lambda r: r[0] + r[1])
    totals = [r[0] + r[1] for r in runs]
    return runs[(n - 1) // 2], (totals[0], totals[-1])


class BareStep:
    """The jitted one-step body of an experiment on one device-resident batch: compiled
    `compiles` times (timed, see `median_of_compiles`), then timed over and over.

    Args:
      exp: an `aejax.train.Experiment`.
      x: the batch [B, ...] (default: the first B training examples).
    """

    def __init__(self, exp, x: np.ndarray | None = None, compiles: int = COMPILES):
        step = exp.train_step()
        self.batch_size = exp.config.batch_size
        self.x = jax.device_put(exp.dataset.train_x[: self.batch_size] if x is None else x)
        self.state = exp.init_state()
        _, self.key = exp.keys

        def compile_once():
            t0 = time.perf_counter()
            lowered = jax.jit(step, donate_argnums=0).lower(self.state, self.x, self.key)
            t1 = time.perf_counter()
            compiled = lowered.compile()
            return t1 - t0, time.perf_counter() - t1, compiled

        (lower_s, compile_s, self.compiled), spread = median_of_compiles(compile_once, compiles)
        self.compile_info = {
            "lower_s": lower_s,
            "compile_s": compile_s,
            "step_compile_spread_s": spread,
            **_cost(self.compiled),
        }

    def run(self, n: int) -> None:
        """n steps, then waits for the last."""
        state = self.state
        for _ in range(n):
            state, metrics = self.compiled(state, self.x, self.key)
        jax.block_until_ready(metrics)
        self.state = state

    def time(self, windows: int, window_s: float) -> list[float]:
        """steps/s of `windows` timed windows (`time_windows`)."""
        return time_windows(self.run, windows, window_s)


def bare_step(exp, windows: int, window_s: float, x: np.ndarray | None = None) -> dict:
    """Compiles and times the bare step: lower_s (trace and lower), compile_s,
    flops_per_step, step_temp_mb and the rates of `summarize`."""
    bare = BareStep(exp, x)
    return {**bare.compile_info, **summarize(bare.time(windows, window_s), bare.batch_size)}


def chunk_compile(exp, compiles: int = COMPILES) -> dict:
    """Seconds to trace, lower and compile the trainer's chunk of steps as the training loop
    builds it (K scanned steps, or one unrolled step for convolutions on CPU), from shapes:
    the median of `compiles` compilations (`median_of_compiles`)."""
    from aejax import parallel, train

    dp = parallel.DataParallel.create("jit", 1, exp.config.batch_size)
    k, unroll = train.steps_per_dispatch(exp, exp.config.steps_per_dispatch, dp.platform)
    chunk = dp.compile_chunk(train.make_train_chunk(exp.train_step, unroll))
    shape = lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype)
    state = jax.tree.map(shape, jax.eval_shape(exp.init_state))
    train_x = shape(exp.dataset.train_x)
    idx = jax.ShapeDtypeStruct((k, exp.config.batch_size), jnp.int32)

    def compile_once():
        t0 = time.perf_counter()
        chunk.lower(state, train_x, idx, exp.keys[1]).compile()
        return time.perf_counter() - t0, 0.0, None

    (seconds, _, _), spread = median_of_compiles(compile_once, compiles)
    return {
        "chunk_steps": k,
        "chunk_unrolled": unroll,
        "chunk_compile_s": seconds,
        "chunk_compile_spread_s": spread,
    }


def e2e_schedule(
    spe: int, unit: int, bare_rate: float, epochs: int, epoch_s: float
) -> tuple[int, int]:
    """The end-to-end run's (steps per epoch, epochs): every variant's timed stretch lasts
    about `epochs * epoch_s` seconds at `bare_rate` steps/s.

    A slow variant keeps `epochs` epochs, each cut to about `epoch_s` seconds, but a whole
    number of `unit` steps (dispatches and log windows: MNIST's 468 steps are 12 x 39;
    other chunk lengths would compile anew inside the timed stretch). A fast one, whose
    whole epoch of `spe` steps is shorter, trains more whole epochs instead (three 0.7 s
    epochs of the reference AE were at the mercy of one slow second).
    """
    steps = max(1, round(epoch_s * bare_rate / unit)) * unit
    if steps < spe:
        return steps, epochs
    return spe, max(epochs, round(epochs * epoch_s * bare_rate / spe))


def end_to_end(
    config, bare_rate: float, epochs: int, epoch_s: float, workdir: str, with_eval: bool
) -> dict:
    """Times `train_and_evaluate` for `epochs` epochs (see the module docstring).

    Args:
      config: the experiment's config (at its normal log and checkpoint cadence); changed
        here: the epochs and, for slow variants, the data fraction.
      bare_rate: the bare step's steps/s, which sizes the fraction of the data.
      epochs: how many epochs (of `epoch_s`; more, shorter ones for a fast variant).
      epoch_s: about how long an epoch should last.
      with_eval: evaluate on the test split each epoch, as the configs do, and time from the
        first evaluation to the last; else evaluate only once the run is over and time the
        training loop alone (data, steps, logging and checkpoints) from its first log row
        to its last.
    Returns:
      steps/s and examples/s over the timed stretch, its length, the median and spread of
      the rates the loop logged for its windows, and what happened in the stretch.
    """
    from aejax import data, train

    full = data.load_dataset(config.data)
    n_train, n_test = full.num_train, len(full.test_x)
    del full
    spe = n_train // config.batch_size
    unit = math.lcm(config.steps_per_dispatch, config.log_every_steps)
    steps, epochs = e2e_schedule(spe, unit, bare_rate, epochs, epoch_s)
    fraction = 1.0
    if steps < spe:
        fraction = steps / spe
        config.data.max_train = steps * config.batch_size
        config.data.max_test = max(1, round(n_test * fraction))
        config.eval_batch_size = min(config.eval_batch_size, config.data.max_test)
        # Checkpoints as often as in the full run (every `spe` steps), not every short epoch.
        config.checkpoint_every_steps = config.checkpoint_every_steps or spe
    epoch_steps = (config.data.max_train or n_train) // config.batch_size
    config.num_epochs = epochs
    config.num_steps = 0
    if not with_eval:
        config.eval_every_steps = epochs * epoch_steps
    rows = []  # (step, time, is_eval, logged steps/s)
    record = lambda step, scalars: rows.append(
        (step, time.perf_counter(), "eval/loss" in scalars, scalars.get("train/steps_per_s"))
    )
    t0 = time.perf_counter()
    train.train_and_evaluate(config, workdir, on_write=record)
    wall = time.perf_counter() - t0
    # From the first row of the kind timed (after the chunk and, with evaluations, the eval
    # step have compiled) to the last: whole epochs of steady state.
    first = [r for r in rows if r[2] == with_eval][0]
    last = [r for r in rows if r[2] == with_eval][-1]
    steps, seconds = last[0] - first[0], last[1] - first[1]
    inside = [r for r in rows if first[1] < r[1] <= last[1]]
    window_rates = [r[3] for r in inside if r[3] is not None]
    prefix = "e2e_eval_" if with_eval else "e2e_"
    out = {
        "steps_per_s": steps / seconds,
        "examples_per_s": steps / seconds * config.batch_size,
        "steps": steps,
        "seconds": seconds,
        "window_steps_per_s_median": statistics.median(window_rates) if window_rates else None,
        "window_steps_per_s_min": min(window_rates) if window_rates else None,
        "window_steps_per_s_max": max(window_rates) if window_rates else None,
        "evaluations": sum(1 for r in inside if r[2]),
        "checkpoints": sum(
            1
            for s in range(first[0] + 1, last[0] + 1)
            if s % (config.checkpoint_every_steps or epoch_steps) == 0
        ),
        "data_fraction": fraction,
        "epochs": epochs,
        "wall_s": wall,
    }
    return {prefix + k: v for k, v in out.items()}


def measure_variant(
    name: str,
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    e2e: bool = True,
    e2e_eval: bool = True,
    e2e_epochs: int = 3,
    e2e_epoch_s: float = 8.0,
) -> dict:
    """Every JAX measurement of one variant (run it in a fresh process: see `run_isolated`).

    The bare step is timed before and after the end-to-end runs (half the windows each),
    so that both see the same machine when it is shared.
    """
    from aejax import train

    config = variant_config(name, batch_size)
    variant = VARIANTS[name]
    out = {"variant": name, "config": variant.config, "about": variant.about}
    out["overrides"] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in variant.overrides.items()
    }
    out["batch_size"] = config.batch_size
    out["load_before"] = os.getloadavg()[0]
    if jax.default_backend() == "cpu":  # as train_and_evaluate does
        out["keep_freed_host_memory"] = train.keep_freed_host_memory()
    with tempfile.TemporaryDirectory(prefix="aejax-bench-") as tmp:
        exp = train.Experiment.from_config(config, os.path.join(tmp, "bare"))
        bare = BareStep(exp)
        out.update(bare.compile_info)
        out["params"] = sum(np.size(p) for p in jax.tree.leaves(bare.state.params))
        rates = bare.time(windows if not e2e else (windows + 1) // 2, window_s)
        out.update(chunk_compile(exp))
        out.update({f"bare_{k}": v for k, v in peak_memory().items()})
        if e2e:
            bare_rate = statistics.median(rates)
            for with_eval in (False, True) if e2e_eval else (False,):
                config = variant_config(name, batch_size)
                workdir = os.path.join(tmp, f"run-{with_eval}")
                out.update(
                    end_to_end(config, bare_rate, e2e_epochs, e2e_epoch_s, workdir, with_eval)
                )
            rates += bare.time(windows // 2 or 1, window_s)
        out.update(summarize(rates, config.batch_size))
        for key in ("e2e_", "e2e_eval_"):
            if key + "steps_per_s" in out:
                out[key + "over_bare"] = out[key + "steps_per_s"] / out["steps_per_s"]
    out.update(peak_memory())
    out["load_after"] = os.getloadavg()[0]
    return out


def measure_compile(name: str, cache_dir: str, batch_size: int = 0) -> dict:
    """Seconds to compile a variant's bare step and training chunk with JAX's persistent
    compilation cache in `cache_dir` (run twice in fresh processes: the first fills the
    cache, the second reads it, as a rerun or a resumed run does)."""
    from aejax import train

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    config = variant_config(name, batch_size)
    exp = train.Experiment.from_config(config, "")
    step = exp.train_step()
    x = jax.ShapeDtypeStruct((config.batch_size, *exp.dataset.example_shape), jnp.float32)
    state = jax.eval_shape(exp.init_state)
    t0 = time.perf_counter()
    jax.jit(step, donate_argnums=0).lower(state, x, exp.keys[1]).compile()
    out = {"variant": name, "step_s": time.perf_counter() - t0}
    out.update(chunk_compile(exp, compiles=1))  # a second compilation would read the cache
    return out


# --------------------------------------------------------------------------- PyTorch peer


def torch_peer(config, example_shape, device: str = "cpu"):
    """The variant in plain PyTorch on `device`: (model, loss of (model output, x),
    optimizer, input shape), or None where there is no peer. Written out: MLP and conv
    autoencoders with a plain mse or bce loss, and MLP and conv VAEs (latent vector) with
    "bce + β*kl_normal", one latent sample per example; no corruption, dropout, batch norm
    or top-k code.

    The same layers, initialization aside; Adam (or the config's optimizer) at a constant
    learning rate (the JAX step follows a cosine schedule, a few scalar operations).
    """
    import torch
    from torch import nn

    from aejax import losses
    from aejax.models.conv import code_spatial_shape

    m = config.model
    weights = losses.parse_recipe(config.loss)
    vae = m.name in ("vae", "conv_vae")
    if vae:
        recipe_ok = set(weights) == {"bce", "kl_normal"} and m.get("x_logvar", "none") == "none"
        recipe_ok &= m.get("num_samples", 1) == 1
    else:
        recipe_ok = weights in ({"mse": 1.0}, {"bce": 1.0})
    plain = (
        recipe_ok
        and config.corruption.name == "none"
        and not config.extra_phases
        and not m.get("dropout", 0.0)
        and not m.get("batch_norm", False)
        and not m.get("top_k", 0)
    )
    acts = {
        "linear": nn.Identity,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softplus": nn.Softplus,
    }
    if not plain or any(m[f] not in acts for f in ("activation", "code_activation")):
        return None
    act, code_act = acts[m.activation], acts[m.code_activation]
    d = math.prod(example_shape)
    if m.name in ("mlp", "vae"):
        enc = tuple(m.encoder_widths)
        dec = tuple(reversed(enc[:-1])) if m.decoder_widths is None else tuple(m.decoder_widths)
        out = (*enc[:-1], 2 * enc[-1]) if vae else enc  # a VAE's means and log-variances
        encoder, width = [nn.Flatten()], d
        for i, w in enumerate(out):
            encoder += [nn.Linear(width, w), act() if i < len(out) - 1 else code_act()]
            width = w
        decoder, width = [], enc[-1]
        for w in dec:
            decoder += [nn.Linear(width, w), act()]
            width = w
        decoder.append(nn.Linear(width, d))
        shape = (d,)
    elif m.name in ("conv", "conv_vae") and (m.get("latent_dim", 0) > 0) == vae:

        class Crop(nn.Module):
            """[B, C, H', W'] -> [B, C, h, w]: the decoder's overshoot cropped off."""

            def forward(self, x):
                return x[:, :, : example_shape[0], : example_shape[1]]

        c = example_shape[2]
        k = m.get("kernel_size", 3)
        features = tuple(m.features)
        encoder, ch = [], c
        for i, f in enumerate(features):
            encoder.append(nn.Conv2d(ch, f, k, padding=k // 2))
            if i < len(features) - 1 or vae:
                encoder.append(act())
            encoder.append(nn.MaxPool2d(2, ceil_mode=True))  # SAME pooling
            ch = f
        decoder = []
        if vae:  # a dense bottleneck to the means and log-variances, and back
            h, w = code_spatial_shape(example_shape, len(features))
            encoder += [nn.Flatten(), nn.Linear(h * w * ch, 2 * m.latent_dim)]
            decoder += [nn.Linear(m.latent_dim, h * w * ch), act(), nn.Unflatten(1, (ch, h, w))]
        else:
            encoder.append(code_act())
        for f in reversed(features[:-1]):
            decoder += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(ch, f, k, padding=k // 2)]
            decoder.append(act())
            ch = f
        decoder += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(ch, c, k, padding=k // 2)]
        decoder.append(Crop())
        shape = (c, *example_shape[:2])
    else:
        return None
    per_image = lambda v: v.flatten(1).sum(1)

    if vae:

        class VAE(nn.Module):
            """x -> (logits, mean, logvar), z = mean + exp(logvar / 2) * eps."""

            def __init__(self):
                super().__init__()
                self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

            def forward(self, x):
                mean, logvar = self.encoder(x).chunk(2, dim=1)
                z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
                return self.decoder(z), mean, logvar

        model = VAE()

        def loss_fn(out, x):
            logits, mean, logvar = out
            bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
            kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
            return (weights["bce"] * per_image(bce) + weights["kl_normal"] * per_image(kl)).mean()
    else:
        model = nn.Sequential(*encoder, *decoder)
        if "mse" in weights:

            def loss_fn(logits, x):
                return per_image((torch.sigmoid(logits) - x).square()).mean()
        else:

            def loss_fn(logits, x):
                bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
                return per_image(bce).mean()

    model = model.to(device)
    lr = float(config.optimizer.learning_rate)
    o = config.optimizer
    if o.name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif o.name == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=o.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=o.momentum)
    return model, loss_fn, opt, shape


def measure_torch(
    name: str,
    mode: str,
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    threads: int = 0,
) -> dict:
    """Times the PyTorch peer of a variant, `mode` "eager" or "compile" (`torch.compile` of
    the whole step: forward, loss, backward, optimizer), like `bare_step`, with `threads`
    intra-op threads (0: one per CPU)."""
    import torch

    from aejax import train

    out_alloc = train.keep_freed_host_memory()  # the same allocator settings as JAX's runs
    config = variant_config(name, batch_size)
    example_shape = (28, 28, 1)  # the MNIST presets
    out = {"variant": name, "framework": "torch", "mode": mode, "torch": torch.__version__}
    out["keep_freed_host_memory"] = out_alloc
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out["device"] = device
    peer = torch_peer(config, example_shape, device)
    if peer is None:
        return {**out, "skipped": "no PyTorch peer for this variant"}
    model, loss_fn, opt, shape = peer
    precision = jax.config.jax_default_matmul_precision or "float32"
    if device == "cuda":  # CPU float32 products are full float32 in either setting
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # PyTorch >= 2.9
            torch.backends.cuda.matmul.fp32_precision = MATMUL_PRECISIONS[precision]
            torch.backends.cudnn.conv.fp32_precision = MATMUL_PRECISIONS[precision]
        else:
            tf32 = MATMUL_PRECISIONS[precision] == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    torch.set_num_threads(threads or cpus())
    out["threads"] = torch.get_num_threads()
    out["params"] = sum(p.numel() for p in model.parameters())
    torch.manual_seed(0)
    x = torch.rand(config.batch_size, *shape, device=device)

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
        return loss.detach()

    fn = torch.compile(step) if mode == "compile" else step
    t0 = time.perf_counter()
    fn(x).item()
    out["compile_s"] = time.perf_counter() - t0  # eager: the first step

    def run(n):
        for _ in range(n):
            loss = fn(x)
        loss.item()  # waits for the steps (on a GPU too)

    out.update(summarize(time_windows(run, windows, window_s), config.batch_size))
    out.update(peak_memory(jax_device=False))
    if device == "cuda":
        out["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
    # JAX never started a backend here: on a GPU it would have claimed most of the memory.
    out["jax_started"] = xla_flags.backends_started()
    return out


# --------------------------------------------------------------------------- sweeps

SWEEPS = {
    # name: (what varies, values)
    "batch": ("batch_size", (32, 64, 128, 256, 512, 1024)),
    "input": ("input_shape", ((28, 28, 1), (32, 32, 3), (64, 64, 3))),
    "code": ("code", (8, 32, 128, 512)),
}


def _synthetic_experiment(config, input_shape, n: int = 2048):
    """An Experiment of `config` on uniform random data of `input_shape` (for sweeps)."""
    from aejax import corruption, data, losses, models, optim, train

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, *input_shape)).astype(np.float32)
    dataset = data.Dataset(x, None, x[:256], None, f"uniform {input_shape}")
    weights = losses.parse_recipe(config.loss)
    return train.Experiment(
        config=config,
        workdir="",
        dataset=dataset,
        model=models.build_model(config.model, input_shape),
        weights=weights,
        options=losses.term_options(config.loss_options, weights),
        corrupt=corruption.get_corruption(config.corruption),
        tx=optim.make_optimizer(config.optimizer, 1000),
        total_steps=1000,
        steps_per_epoch=n // config.batch_size,
    )


def measure_sweep_point(
    variant: str, what: str, value, windows: int = 3, window_s: float = 0.5
) -> dict:
    """The bare step of `variant` ("ae" or "conv_ae") with one of batch size, input shape or
    code size changed, on synthetic data."""
    config = variant_config(variant)
    shape = (28, 28, 1)
    if what == "batch_size":
        config.batch_size = int(value)
    elif what == "input_shape":
        shape = tuple(value)
    elif what == "code":
        if config.model.name == "mlp":
            config.model.encoder_widths = (*config.model.encoder_widths[:-1], int(value))
        else:  # the conv AE with a dense bottleneck to a code vector of this size
            config.model.latent_dim = int(value)
            config.model.code_activation = "linear"
    from aejax import train

    if jax.default_backend() == "cpu":
        train.keep_freed_host_memory()
    exp = _synthetic_experiment(config, shape, max(2048, config.batch_size))
    out = {"variant": variant, "what": what, "value": value, "batch_size": config.batch_size}
    out.update(bare_step(exp, windows, window_s))
    out.update(peak_memory())
    return out


# --------------------------------------------------------------------------- processes


def run_isolated(
    function: str, timeout: float = 3600, matmul_precision: str = "float32", **kwargs
) -> dict:
    """Runs `function(**kwargs)` of this module in a fresh Python process, with
    `matmul_precision` set there (`set_matmul_precision`), and returns its dict with the
    precision added (so each measurement has its own memory peak, caches and thread pools).
    A failure comes back as {"error": ...}."""
    check_matmul_precision(matmul_precision)  # here, not in the child
    cmd = [sys.executable, "-m", "aejax.benchmark", function, json.dumps(kwargs)]
    cmd.append(matmul_precision)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**kwargs, "error": f"timed out after {timeout} s"}
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        # The last line of a traceback names the exception and its message.
        tail = result.stderr.strip().splitlines()[-20:]
        error = tail[-1] if tail else f"exit code {result.returncode}"
        return {**kwargs, "error": error, "stderr_tail": tail}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- the run

TARGETS = """Targets (issue 6), on the reference 784-256-32 MLP AE at batch 128 with Adam:
end to end >= 95% of the bare step; end to end >= 2x PyTorch eager and >= 1.3x
torch.compile; the exact contractive AE >= 40% of the plain AE's steps/s, and its `auto`
mode no slower than the better of jacfwd and jacrev; compilation <= 2 s for every config."""


def check_targets(variants: dict[str, dict], peers: dict[tuple[str, str], dict]) -> list[dict]:
    """Each target with its measured ratio and whether it is met (None: not measured)."""
    out = []

    def add(target, value, threshold):
        met = None if value is None else bool(value >= threshold)
        out.append({"target": target, "value": value, "threshold": threshold, "met": met})

    rate = lambda name, key="steps_per_s": variants.get(name, {}).get(key)
    ratio = lambda a, b: a / b if a is not None and b else None
    for name, r in variants.items():
        if "e2e_over_bare" in r:
            add(f"{name}: training loop end to end / bare step", r["e2e_over_bare"], 0.95)
    for mode, threshold in (("eager", 2.0), ("compile", 1.3)):
        torch_rate = peers.get(("ae", mode), {}).get("steps_per_s")
        add(
            f"ae: end to end / PyTorch {mode}",
            ratio(rate("ae", "e2e_steps_per_s"), torch_rate),
            threshold,
        )
    for mode in ("auto", "closed_form"):
        add(f"cae_{mode} / ae (bare steps/s)", ratio(rate(f"cae_{mode}"), rate("ae")), 0.4)
    best = max(filter(None, (rate("cae_jacfwd"), rate("cae_jacrev"))), default=None)
    add("cae_auto / max(cae_jacfwd, cae_jacrev)", ratio(rate("cae_auto"), best), 1.0)
    for name, r in variants.items():
        if "compile_s" in r:
            add(
                f"{name}: 2 s / step compile (lower + compile)",
                2.0 / (r["lower_s"] + r["compile_s"]),
                1.0,
            )
            add(f"{name}: 2 s / chunk compile", 2.0 / r["chunk_compile_s"], 1.0)
        if "cache_warm_chunk_s" in r:
            add(f"{name}: 2 s / chunk compile, cache filled", 2.0 / r["cache_warm_chunk_s"], 1.0)
    return out


def _fmt(value, spec=".1f", missing="-"):
    return missing if value is None else format(value, spec)


def _spread(spread, before: str = "", after: str = "") -> str:
    """A (min, max) of compile seconds as "1.90-2.31", between `before` and `after`; ""
    without one."""
    return f"{before}{spread[0]:.2f}-{spread[1]:.2f}{after}" if spread else ""


def variant_table(variants: list[dict], peak_flops: float = 0.0) -> str:
    """A Markdown table of the JAX measurements."""
    head = (
        "| variant | step compile s (trace + XLA, kernels; min-max) "
        "| chunk compile s (min-max; cached) "
        "| bare steps/s (min-max) "
        "| bare ex/s "
        "| e2e steps/s | e2e / bare | e2e+eval / bare | GFLOP/step | GFLOP/s | peak RSS MB "
        "| load |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in variants:
        if "error" in r:
            lines.append(f"| {r.get('name', r.get('variant'))} | error: {r['error'][:200]} |")
            continue
        flops = r.get("flops_per_step")
        gflops_s = flops * r["steps_per_s"] / 1e9 if flops else None
        util = f" ({gflops_s * 1e9 / peak_flops:.1%})" if gflops_s and peak_flops else ""
        lines.append(
            f"| {r['variant']} | {r['lower_s'] + r['compile_s']:.2f} "
            f"({r['lower_s']:.2f} + {r['compile_s']:.2f}, {_fmt(r.get('kernels'), 'd')}"
            f"{_spread(r.get('step_compile_spread_s'), before='; ')}) "
            f"| {_fmt(r.get('chunk_compile_s'), '.2f')} "
            f"({_spread(r.get('chunk_compile_spread_s'), after='; ')}"
            f"{_fmt(r.get('cache_warm_chunk_s'), '.2f')}) "
            f"| {r['steps_per_s']:.1f} ({r['steps_per_s_min']:.0f}-{r['steps_per_s_max']:.0f}) "
            f"| {r['examples_per_s']:.0f} | {_fmt(r.get('e2e_steps_per_s'))} "
            f"| {_fmt(r.get('e2e_over_bare'), '.2f')} | {_fmt(r.get('e2e_eval_over_bare'), '.2f')} "
            f"| {_fmt(flops and flops / 1e9, '.3f')} "
            f"| {_fmt(gflops_s)}{util} | {r['peak_rss_mb']:.0f} "
            f"| {r['load_before']:.1f}/{r['load_after']:.1f} |"
        )
    return "\n".join(lines)


def peer_table(
    variants: dict[str, dict], peers: dict[tuple[str, str], dict], peak_flops: float = 0.0
) -> str:
    """A Markdown table of JAX against its PyTorch peers. With `peak_flops`, also each one's
    model FLOP utilization: the JAX step's FLOPs (XLA's count, the same model and batch for
    the peer) times its steps/s, over the peak."""
    head = (
        "| variant | params JAX/torch | JAX bare | JAX e2e | torch eager (threads) "
        "| torch.compile (threads, compile s) | e2e / eager | e2e / compile | bare / eager "
        "| bare / compile |"
    )
    if peak_flops:
        head += " MFU bare / e2e / eager / compile |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in sorted({n for n, _ in peers}):
        jx = variants.get(name, {})
        eager = peers.get((name, "eager"), {})
        comp = peers.get((name, "compile"), {})
        if "steps_per_s" not in eager and "steps_per_s" not in comp:
            continue
        r = lambda a, b: _fmt(a / b if a and b else None, ".2f")
        bare, e2e = jx.get("steps_per_s"), jx.get("e2e_steps_per_s")
        te, tc = eager.get("steps_per_s"), comp.get("steps_per_s")
        params = f"{jx.get('params', '-')}/{eager.get('params', comp.get('params', '-'))}"
        lines.append(
            f"| {name} | {params} | {_fmt(bare)} | {_fmt(e2e)} "
            f"| {_fmt(te)} ({eager.get('threads', '-')}) "
            f"| {_fmt(tc)} ({comp.get('threads', '-')}, {_fmt(comp.get('compile_s'))}) "
            f"| {r(e2e, te)} | {r(e2e, tc)} "
            f"| {r(bare, te)} | {r(bare, tc)} |"
        )
        if peak_flops:
            flops = jx.get("flops_per_step")
            mfu = [
                _fmt(flops * rate / peak_flops if flops and rate else None, ".1%")
                for rate in (bare, e2e, te, tc)
            ]
            lines[-1] += f" {' / '.join(mfu)} |"
    return "\n".join(lines)


def sweep_table(points: list[dict], peak_flops: float = 0.0) -> str:
    """A Markdown table of sweep points: one row per (what, value), one column per variant."""
    names = sorted({p["variant"] for p in points})
    head = (
        "| sweep | value | "
        + " | ".join(f"{n} steps/s | {n} ex/s | {n} GFLOP/s" for n in names)
        + " |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keys = []
    for p in points:
        key = (p["what"], json.dumps(p["value"]))
        if key not in keys:
            keys.append(key)
    for what, value in keys:
        cells = []
        for n in names:
            hit = [
                p
                for p in points
                if (p["what"], json.dumps(p["value"])) == (what, value) and p["variant"] == n
            ]
            p = hit[0] if hit else {}
            if "steps_per_s" not in p:
                cells += ["-", "-", "-"]
                continue
            flops = p.get("flops_per_step")
            cells += [
                f"{p['steps_per_s']:.1f}",
                f"{p['examples_per_s']:.0f}",
                _fmt(flops and flops * p["steps_per_s"] / 1e9),
            ]
        lines.append(f"| {what} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_benchmark(
    names: list[str],
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    e2e: bool = True,
    e2e_eval: bool = True,
    e2e_epochs: int = 3,
    e2e_epoch_s: float = 8.0,
    peer: str = "",
    peak_flops: float = 0.0,
    warm_compile: bool = True,
    sweeps: tuple[str, ...] = (),
    json_path: str = "",
    matmul_precision: str = "float32",
    log: Callable[[str], None] = print,
) -> dict:
    """Measures the variants `names` (and their PyTorch peers, and the sweeps), each in a
    fresh process with `matmul_precision` (`MATMUL_PRECISIONS`) set for JAX and PyTorch
    alike; prints the tables and the targets, writes everything as JSON."""
    check_arguments(
        names=names,
        sweeps=sweeps,
        peer=peer,
        batch_size=batch_size,
        windows=windows,
        window_s=window_s,
        e2e_epochs=e2e_epochs,
        e2e_epoch_s=e2e_epoch_s,
        peak_flops=peak_flops,
        json_path=json_path,
    )
    isolated = functools.partial(run_isolated, matmul_precision=matmul_precision)
    info = isolated("machine")
    log(f"machine: {json.dumps(info)}")
    variants: dict[str, dict] = {}
    peers: dict[tuple[str, str], dict] = {}  # the faster thread count of each
    all_peers: list[dict] = []
    points: list[dict] = []
    results: dict = {
        "machine": info,
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "variants": [],
        "peers": all_peers,
        "sweeps": points,
    }

    def save():  # after each measurement: a run cut short keeps what it measured
        results["variants"] = list(variants.values())
        _save_json(results, json_path)

    for name in names:
        r = isolated(
            "measure_variant",
            name=name,
            batch_size=batch_size,
            windows=windows,
            window_s=window_s,
            e2e=e2e,
            e2e_eval=e2e_eval,
            e2e_epochs=e2e_epochs,
            e2e_epoch_s=e2e_epoch_s,
        )
        if peak_flops and r.get("flops_per_step"):
            r["flop_s"] = r["flops_per_step"] * r["steps_per_s"]
            r["flop_utilization"] = r["flop_s"] / peak_flops
        variants[name] = r
        save()
        log(f"{name}: {_summary(r)}")
        if warm_compile and "error" not in r:
            with tempfile.TemporaryDirectory(prefix="aejax-jax-cache-") as cache_dir:
                for kind in ("cold", "warm"):
                    c = isolated(
                        "measure_compile", name=name, cache_dir=cache_dir, batch_size=batch_size
                    )
                    if "error" not in c:
                        r[f"cache_{kind}_step_s"] = c["step_s"]
                        r[f"cache_{kind}_chunk_s"] = c["chunk_compile_s"]
            log(
                f"{name}: compile with a persistent cache, empty then filled: step "
                f"{_fmt(r.get('cache_cold_step_s'), '.2f')} -> "
                f"{_fmt(r.get('cache_warm_step_s'), '.2f')} s, chunk "
                f"{_fmt(r.get('cache_cold_chunk_s'), '.2f')} -> "
                f"{_fmt(r.get('cache_warm_chunk_s'), '.2f')} s"
            )
        if peer == "torch":
            # With one thread per CPU and with one thread: a machine shared with other jobs
            # can make PyTorch's threads wait on each other; its better figure counts.
            for mode in ("eager", "compile"):
                for threads in sorted({info.get("cpus", 1), 1}, reverse=True):
                    p = isolated(
                        "measure_torch",
                        name=name,
                        mode=mode,
                        batch_size=batch_size,
                        windows=windows,
                        window_s=window_s,
                        threads=threads,
                    )
                    if "skipped" in p:
                        break
                    all_peers.append(p)
                    save()
                    log(f"{name}: torch {mode}, {threads} threads: {_summary(p)}")
                    best = peers.get((name, mode), {}).get("steps_per_s", 0)
                    if p.get("steps_per_s", 0) > best:
                        peers[(name, mode)] = p
    for sweep in sweeps:
        what, values = SWEEPS[sweep]
        for variant in ("ae", "conv_ae"):
            for value in values:
                p = isolated(
                    "measure_sweep_point",
                    variant=variant,
                    what=what,
                    value=value,
                    windows=max(3, windows // 2),
                    window_s=window_s / 2,
                )
                points.append(p)
                save()
                log(f"sweep {what}={value} {variant}: {_summary(p)}")
    results["targets"] = check_targets(variants, peers)
    log("")
    log(variant_table(results["variants"], peak_flops))
    if peers:
        log("")
        log(peer_table(variants, peers, peak_flops))
    if points:
        log("")
        log(sweep_table(points, peak_flops))
    log("")
    log(TARGETS)
    for t in results["targets"]:
        status = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        log(f"  {t['target']}: {_fmt(t['value'], '.2f')} (>= {t['threshold']}) {status}")
    if json_path:
        save()
        log(f"wrote {json_path}")
    return results


def check_arguments(
    *,
    names: list[str],
    sweeps: tuple[str, ...] = (),
    peer: str = "",
    batch_size: int = 0,
    windows: int = 5,
    window_s: float = 1.0,
    e2e_epochs: int = 3,
    e2e_epoch_s: float = 8.0,
    peak_flops: float = 0.0,
    json_path: str = "",
) -> None:
    """Raises ConfigError, naming the flag, for a `run_benchmark` argument that would fail
    or mislead only after minutes of measuring; also for a `json_path` that holds earlier
    results (they are never overwritten) or whose folder cannot be made."""
    for name in names:
        errors.lookup(VARIANTS, name, what="variant", where="--configs")
    for sweep in sweeps:
        errors.lookup(SWEEPS, sweep, what="sweep", where="--sweep")
    if peer not in ("", "torch"):
        raise errors.ConfigError(f"--peer={peer!r} is not a known peer; valid: torch")
    for flag, value, least in (
        ("batch_size", batch_size, 0),
        ("windows", windows, 1),
        ("e2e_epochs", e2e_epochs, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise errors.ConfigError(f"--{flag}={value!r} must be an integer >= {least}")
    for flag, value, zero_ok in (
        ("window_s", window_s, False),
        ("e2e_epoch_s", e2e_epoch_s, False),
        ("peak_flops", peak_flops, True),
    ):
        if not (math.isfinite(value) and (value > 0 or (zero_ok and value == 0))):
            kind = "a finite number >= 0 (0: none)" if zero_ok else "a finite number > 0"
            raise errors.ConfigError(f"--{flag}={value!r} must be {kind}")
    if json_path:
        if os.path.exists(json_path):
            raise errors.ConfigError(
                f"--json={json_path} already exists; earlier results are not overwritten: "
                "pass another path, or move that file"
            )
        folder = os.path.dirname(os.path.abspath(json_path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise errors.ConfigError(f"--json={json_path}: cannot make its folder: {e}") from e
        if not os.access(folder, os.W_OK):
            raise errors.ConfigError(f"--json={json_path}: its folder {folder} is not writable")


def _save_json(results: dict, json_path: str) -> None:
    """Writes `results` to `json_path` (if any) whole or not at all."""
    if not json_path:
        return
    tmp = f"{json_path}.tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, default=_json_default)
    os.replace(tmp, json_path)


def _summary(r: dict) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    text = f"{r['steps_per_s']:.1f} steps/s ({r['steps_per_s_min']:.1f}-{r['steps_per_s_max']:.1f})"
    if "e2e_steps_per_s" in r:
        text += f", end to end {r['e2e_steps_per_s']:.1f} ({r['e2e_over_bare']:.2f} of bare)"
    if "e2e_eval_steps_per_s" in r:
        text += f", with evaluations {r['e2e_eval_steps_per_s']:.1f}"
    if "compile_s" in r:
        text += f", compile {r.get('lower_s', 0) + r['compile_s']:.2f} s"
    return text


_WORKERS = {
    "measure_variant": measure_variant,
    "measure_torch": measure_torch,
    "measure_compile": measure_compile,
    "measure_sweep_point": measure_sweep_point,
    "machine": lambda: machine(),
}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":  # the child side of `run_isolated`
    set_matmul_precision(sys.argv[3])
    result = _WORKERS[sys.argv[1]](**json.loads(sys.argv[2]))
    print(json.dumps({**result, "matmul_precision": sys.argv[3]}, default=_json_default))
