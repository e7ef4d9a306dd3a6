"""The benchmark's run: every measurement in a fresh Python process (`run_isolated`: this
file is the child's script), with one float32 matmul precision set for JAX and PyTorch
alike (`timing.MATMUL_PRECISIONS`), the results saved as JSON after each one, then the
tables and the targets (`run_benchmark`). `benchmarks/benchmark.py` is the script;
docs/BENCHMARKS.md holds the tables.
"""

import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from aejax import errors, registry
from measure import (
    SWEEPS,
    VARIANTS,
    measure_compile,
    measure_sweep_point,
    measure_variant,
    variant_config,
)
from speed_tables import TARGETS, check_targets, fmt, peer_table, sweep_table, variant_table
from timing import check_matmul_precision, machine, set_matmul_precision
from torch_peer import measure_torch

# --------------------------------------------------------------------------- processes


def run_isolated(
    function: str, timeout: float = 3600, matmul_precision: str = "float32", **kwargs
) -> dict:
    """Runs `function(**kwargs)` (a key of `_WORKERS`) in a fresh Python process, with
    `matmul_precision` set there (`set_matmul_precision`), and returns its dict with the
    precision added (so each measurement has its own memory peak, caches and thread pools).
    A failure comes back as {"error": ...}."""
    check_matmul_precision(matmul_precision)  # here, not in the child
    cmd = [sys.executable, os.path.abspath(__file__), function, json.dumps(kwargs)]
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
                f"{fmt(r.get('cache_cold_step_s'), '.2f')} -> "
                f"{fmt(r.get('cache_warm_step_s'), '.2f')} s, chunk "
                f"{fmt(r.get('cache_cold_chunk_s'), '.2f')} -> "
                f"{fmt(r.get('cache_warm_chunk_s'), '.2f')} s"
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
        log(f"  {t['target']}: {fmt(t['value'], '.2f')} (>= {t['threshold']}) {status}")
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
        registry.lookup(VARIANTS, name, what="variant", where="--configs")
    for sweep in sweeps:
        registry.lookup(SWEEPS, sweep, what="sweep", where="--sweep")
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
    _check_data(names)
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


def _check_data(names: list[str]) -> None:
    """DataError before anything is measured when a variant's data folder is missing (each
    variant would otherwise fail in its own process, minutes later)."""
    for name in names:
        data = variant_config(name).data
        if data.source != "idx":
            continue
        if not data.data_dir or not os.path.isdir(os.path.join(data.data_dir, data.name)):
            where = os.path.join(data.data_dir or "DATA_DIR", data.name)
            raise errors.DataError(
                f"variant {name} needs the IDX files of {data.name} in {where} (set "
                "AEJAX_DATA_DIR to the folder that holds it)"
            )


def failures(results: dict) -> list[str]:
    """One line per failed measurement of `run_benchmark`'s results ("ae: KeyError: ...")."""
    rows = results["variants"] + results["peers"] + results["sweeps"]
    return [f"{r.get('name') or r.get('variant')}: {r['error']}" for r in rows if "error" in r]


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
