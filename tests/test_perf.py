"""aejax/perf.py: nothing happens on import; CPU convolutions through Eigen by a compiler
option of each compilation, the same program as the XLA_FLAGS route, whatever was
imported first."""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

from aejax import perf

TESTED = importlib.metadata.version("jaxlib").startswith(perf._TESTED_JAXLIB)
EIGEN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"

# Compiles the gradient of a strided NHWC convolution with dense layers after it and a mean
# over the batch (a conv AE's layers and its loss), with the gradient's squared norm (a
# reduction YNNPACK takes, as in the step's grad_norm), and prints the program.
PROBE = """
import json, os, re, sys
if sys.argv[1] == "jax-first":
    import jax
    jax.numpy.ones(1).block_until_ready()
import aejax
from aejax import perf
import jax, jax.numpy as jnp
flags_after_import = os.environ.get("XLA_FLAGS")
def f(x, w, m, v):
    dims = ("NHWC", "HWIO", "NHWC")
    y = jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dims)
    h = jax.nn.relu(y.reshape(128, -1) @ m)
    return jnp.mean(jnp.sum(jnp.square(jax.nn.sigmoid(h @ v) - x.reshape(128, -1)), axis=1))
args = (jnp.ones((128, 28, 28, 1)), jnp.ones((3, 3, 1, 16)), jnp.ones((14 * 14 * 16, 32)),
        jnp.ones((32, 784)))
options = perf.cpu_compiler_options(sys.argv[2]) if sys.argv[2] in ("eigen", "xla") else None
if sys.argv[2].startswith("LIBRARY"):  # a setting given as is, for the test's own check
    options = {"xla_cpu_experimental_ynn_fusion_type": sys.argv[2]}
def step(*args):
    grads = jax.grad(f, (1, 2, 3))(*args)
    return grads, sum(jnp.sum(jnp.square(g)) for g in grads)
compiled = jax.jit(step, compiler_options=options).lower(*args).compile()
text = re.sub(r", metadata=\\{[^}]*\\}", "", compiled.as_text())
print(json.dumps({"flags": flags_after_import, "program": re.sub(r"\\s+", " ", text)}))
"""


def _probe(order: str, setting: str, xla_flags: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, order, setting],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_changes_no_environment():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = "import os; import aejax; print(os.environ.get('XLA_FLAGS'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


@pytest.mark.skipif(not TESTED, reason="the option is passed on the tested jaxlib versions only")
@pytest.mark.parametrize("order", ["aejax-first", "jax-first"])
def test_eigen_option_compiles_the_xla_flags_program_whatever_came_first(order):
    """The per-compilation option gives, byte for byte, the program that XLA_FLAGS gives
    when set before JAX starts, also when JAX started before aejax was imported; XLA's
    default program is another one."""
    by_option = _probe(order, "eigen")
    by_flag = _probe("aejax-first", "env", EIGEN_FLAG)
    default = _probe("aejax-first", "xla")
    assert by_option["flags"] is None
    assert by_option["program"] == by_flag["program"]
    assert default["program"] != by_option["program"]
    # The probe tells settings apart: matrix products alone through YNNPACK (without its
    # reductions) compile another program.
    dots_only = _probe("aejax-first", "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT")
    assert dots_only["program"] != by_option["program"]


def test_settings():
    assert perf.cpu_compiler_options("xla") is None
    assert perf.cpu_compiler_options("eigen", platform="gpu") is None
    with pytest.raises(ValueError, match="valid: eigen, xla"):
        perf.cpu_compiler_options("ynnpack")
