"""Data parallelism: jit over a `data` mesh and pmap, on 8 simulated CPU devices and on two
processes with 4 devices each, all end with the single-device parameters.

The work runs in subprocesses (tests/parallel_worker.py) because the device count is fixed
when JAX starts; the rest of the suite keeps one device.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "parallel_worker.py")
TOLERANCE = 1e-5


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _worker(*args: str, devices: int, timeout: int) -> dict:
    """Runs parallel_worker.py with `devices` CPU devices; returns its last line's JSON."""
    result = subprocess.run(
        [sys.executable, WORKER, *args],
        capture_output=True,
        text=True,
        env=_env(devices),
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return _last_json(result.stdout)


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_jit_and_pmap_on_8_devices_match_one_device(tmp_path):
    """AE, VAE and CAE: 20 steps with each compiler on 8 devices, and a run resumed from a
    checkpoint of a sharded run, end within 1e-5 of 20 steps on one device; so does a
    batch-norm AE with dropout under jit (pmap refuses batch norm on several devices)."""
    out = _worker(str(tmp_path), devices=8, timeout=600)
    assert out.pop("devices") == 8
    assert out.pop("bn/pmap_refused") is True  # batch norm under pmap: a clear error
    assert out.pop("kl/pmap_refused") is True  # so is kl_sparsity
    kinds = ("jit", "pmap", "resumed")
    assert set(out) == {f"{m}/{k}" for m in ("ae", "vae", "cae") for k in kinds} | {"bn/jit"}
    for name, diff in out.items():
        assert diff <= TOLERANCE, (name, diff)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    """Two processes of 4 CPU devices each, talking over loopback, train the AE to the
    parameters of one process with 8 devices (and of one device)."""
    _worker(str(tmp_path), "--reference", devices=8, timeout=300)
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, str(tmp_path), "--distributed", str(port), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(4),
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("the two-process run did not finish in 300 s")
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(_last_json(stdout))
    assert [o["process"] for o in outs] == [0, 1]
    assert all(o["devices"] == 8 and o["local"] == 4 for o in outs)
    diff = _worker(str(tmp_path), "--compare", devices=1, timeout=120)
    assert diff["2proc_vs_1dev"] <= TOLERANCE, diff
    assert diff["8dev_vs_1dev"] <= TOLERANCE, diff
    # Only process 0 writes logs and pictures.
    workdir = tmp_path / "ae-2proc"
    assert (workdir / "metrics.jsonl").exists() and (workdir / "reconstructions.png").exists()


def test_batch_that_does_not_divide_over_the_devices_is_refused(tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(os.path.dirname(HERE), "experiments", "train.py"),
            "--workdir",
            str(workdir),
            "--config.batch_size=30",
        ],
        capture_output=True,
        text=True,
        env=_env(8),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: config.batch_size=30 does not divide over 8 devices"
    ), result.stderr
    assert not workdir.exists()
