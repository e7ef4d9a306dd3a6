"""How every measurement of the benchmark is timed: the one timing loop (`time_windows`)
and its summary, peak memory, the matmul precision set alike for JAX and the PyTorch peer
(`MATMUL_PRECISIONS`), the machine's description, and the compiled bare step.

The bare step is the trainer's one step body (`aejax.train.make_train_step`: forward, the
loss recipe, gradients, the optimizer update, the non-finite guard), jitted, called over
and over on one device-resident batch (`BareStep`). Its trace + lower and compile seconds
are the median of three compilations, with their spread (`median_of_compiles`); so are
those of the training loop's chunk of steps (`chunk_compile`). XLA's cost analysis gives
the model FLOPs per step and the step's temporary buffers (`_cost`).
"""

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax import errors

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
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


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
            options = exp.compiler_options(jax.default_backend())
            jitted = jax.jit(step, donate_argnums=0, compiler_options=options)
            lowered = jitted.lower(self.state, self.x, self.key)
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
    from aejax.train.dispatch import steps_per_dispatch

    dp = parallel.DataParallel.create("jit", 1, exp.config.batch_size)
    k, unroll = steps_per_dispatch(exp, exp.config.steps_per_dispatch, dp.platform)
    chunk = dp.compile_chunk(
        train.make_train_chunk(exp.train_step, unroll), exp.compiler_options(dp.platform)
    )
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
