"""aejax/xla_flags.py: convolutions through Eigen on CPU, set before JAX starts, and never
over a user's own setting."""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from aejax import xla_flags

TESTED = importlib.metadata.version("jaxlib").startswith(xla_flags._TESTED_JAXLIB)

# Compiles a strided NHWC convolution (the conv AE's first layer) with the process's flags
# and again with YNNPACK's convolutions asked for explicitly, and prints what it found.
PROBE = """
import json, os, sys
before = os.environ.get("XLA_FLAGS")
if sys.argv[1] == "jax-first":
    import jax
    jax.numpy.ones(1).block_until_ready()
import aejax
import jax, jax.numpy as jnp
import numpy as np
conv = lambda x, w: jax.lax.conv_general_dilated(
    x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
x = jax.random.normal(jax.random.key(0), (16, 28, 28, 1))
w = jax.random.normal(jax.random.key(1), (3, 3, 1, 32))
lowered = jax.jit(conv).lower(x, w)
default = lowered.compile()
ynn = lowered.compile(compiler_options={
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"})
print(json.dumps({
    "before": before,
    "after": os.environ.get("XLA_FLAGS"),
    "default_uses_ynn": "__ynn_fusion" in default.as_text(),
    "ynn_uses_ynn": "__ynn_fusion" in ynn.as_text(),
    "max_diff": float(np.max(np.abs(np.asarray(default(x, w)) - np.asarray(ynn(x, w))))),
}))
"""


def _probe(env_updates: dict, order: str = "aejax-first") -> dict:
    unset = ("XLA_FLAGS", "AEJAX_EIGEN_CONVOLUTIONS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_updates, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, order], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not TESTED, reason="the flag is applied on the tested jaxlib versions only")
def test_import_routes_convolutions_through_eigen_keeping_other_flags():
    devices = "--xla_force_host_platform_device_count=2"
    got = _probe({"XLA_FLAGS": devices})
    assert got["after"] == f"{devices} {xla_flags.EIGEN_CONVOLUTIONS}"
    assert not got["default_uses_ynn"]
    assert got["ynn_uses_ynn"]  # the option is what moves the convolution
    assert got["max_diff"] < 1e-5  # the two libraries agree to rounding


@pytest.mark.skipif(not TESTED, reason="the flag is applied on the tested jaxlib versions only")
@pytest.mark.parametrize(
    "env, order",
    [
        ({"AEJAX_EIGEN_CONVOLUTIONS": "0"}, "aejax-first"),  # opted out
        ({}, "jax-first"),  # the backends had started: too late to change anything
    ],
)
def test_left_alone_when_opted_out_or_too_late(env, order):
    got = _probe(env, order)
    assert got["before"] is None and got["after"] is None
    assert got["default_uses_ynn"]  # XLA's default stands


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setattr(xla_flags, "backends_started", lambda: False)
    own = f"{xla_flags.YNN_FLAG}= --xla_cpu_enable_fast_math=false"
    monkeypatch.setenv("XLA_FLAGS", own)
    assert xla_flags.prefer_eigen_convolutions() is False
    assert os.environ["XLA_FLAGS"] == own
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_flags.prefer_eigen_convolutions() is TESTED
    assert os.environ.get("XLA_FLAGS") == (xla_flags.EIGEN_CONVOLUTIONS if TESTED else None)


def test_untested_jaxlib_is_left_alone(monkeypatch):
    monkeypatch.setattr(xla_flags, "backends_started", lambda: False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.99.0")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert xla_flags.prefer_eigen_convolutions() is False
    assert "XLA_FLAGS" not in os.environ
