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

# Compiles a strided NHWC convolution (the conv AE's first layer) and a matrix product (the
# MLP AE's first layer) with the process's flags, and again with YNNPACK asked for
# explicitly, and prints what it found.
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
cases = {
    "conv": (conv, (16, 28, 28, 1), (3, 3, 1, 32), "CONVOLUTION"),
    "dot": (jnp.dot, (128, 784), (784, 256), "DOT"),
}
found = {"before": before, "after": os.environ.get("XLA_FLAGS")}
for name, (f, x_shape, w_shape, kind) in cases.items():
    x = jax.random.normal(jax.random.key(0), x_shape)
    w = jax.random.normal(jax.random.key(1), w_shape)
    lowered = jax.jit(f).lower(x, w)
    default = lowered.compile()
    ynn = lowered.compile(compiler_options={
        "xla_cpu_experimental_ynn_fusion_type": f"LIBRARY_FUSION_TYPE_INDIVIDUAL_{kind}"})
    diff = np.max(np.abs(np.asarray(default(x, w)) - np.asarray(ynn(x, w))))
    found[name] = {
        "default_uses_ynn": "__ynn_fusion" in default.as_text(),
        "ynn_uses_ynn": "__ynn_fusion" in ynn.as_text(),
        "relative_diff": float(diff / np.max(np.abs(np.asarray(ynn(x, w))))),
    }
print(json.dumps(found))
"""


def _probe(env_updates: dict, order: str = "aejax-first") -> dict:
    unset = ("XLA_FLAGS", "AEJAX_EIGEN", "AEJAX_EIGEN_CONVOLUTIONS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_updates, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, order], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not TESTED, reason="the flag is applied on the tested jaxlib versions only")
def test_import_routes_convolutions_and_products_through_eigen_keeping_other_flags():
    devices = "--xla_force_host_platform_device_count=2"
    got = _probe({"XLA_FLAGS": devices})
    assert got["after"] == f"{devices} {xla_flags.EIGEN}"
    for case in ("conv", "dot"):
        assert not got[case]["default_uses_ynn"], case
        assert got[case]["ynn_uses_ynn"], case  # the option is what moves the operation
        assert got[case]["relative_diff"] < 1e-5, case  # the two libraries agree to rounding


@pytest.mark.skipif(not TESTED, reason="the flag is applied on the tested jaxlib versions only")
@pytest.mark.parametrize(
    "env, order",
    [
        ({"AEJAX_EIGEN": "0"}, "aejax-first"),  # opted out
        ({"AEJAX_EIGEN_CONVOLUTIONS": "0"}, "aejax-first"),  # by the setting's former name
        ({}, "jax-first"),  # the backends had started: too late to change anything
    ],
)
def test_left_alone_when_opted_out_or_too_late(env, order):
    got = _probe(env, order)
    assert got["before"] is None and got["after"] is None
    assert got["conv"]["default_uses_ynn"] and got["dot"]["default_uses_ynn"]  # XLA's default


def test_a_users_own_setting_wins(monkeypatch):
    monkeypatch.setattr(xla_flags, "_backends_started", lambda: False)
    own = f"{xla_flags.YNN_FLAG}= --xla_cpu_enable_fast_math=false"
    monkeypatch.setenv("XLA_FLAGS", own)
    assert xla_flags.prefer_eigen() is False
    assert os.environ["XLA_FLAGS"] == own
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_flags.prefer_eigen() is TESTED
    assert os.environ.get("XLA_FLAGS") == (xla_flags.EIGEN if TESTED else None)


def test_untested_jaxlib_is_left_alone(monkeypatch):
    monkeypatch.setattr(xla_flags, "_backends_started", lambda: False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.99.0")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert xla_flags.prefer_eigen() is False
    assert "XLA_FLAGS" not in os.environ
