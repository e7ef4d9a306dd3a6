"""A researcher's own loss term, trained from a config without editing aejax."""

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from aejax import losses
from aejax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_MODULE = textwrap.dedent(
    '''
    import jax.numpy as jnp

    def code_l2(*, z, **_):
        """Σ_j z_j², per example."""
        return jnp.sum(jnp.square(z), axis=1)
    '''
)


def test_module_function_term_trains_from_the_command_line(tmp_path):
    """The term lives in a module outside aejax, named in the recipe as module:function."""
    (tmp_path / "my_terms.py").write_text(USER_MODULE)
    workdir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "experiments", "train.py"),
            "--workdir",
            str(workdir),
            "--config.loss=mse + 0.01*my_terms:code_l2",
            "--config.num_steps=40",
            "--config.log_every_steps=20",
            "--config.progress_bar=false",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/my_terms:code_l2" in r]
    eval_rows = [r for r in rows if "eval/my_terms:code_l2" in r]
    assert train_rows and eval_rows
    last = train_rows[-1]
    # The total is the recipe's weighted sum of the two logged terms.
    np.testing.assert_allclose(
        last["train/loss"], last["train/mse"] + 0.01 * last["train/my_terms:code_l2"], rtol=1e-4
    )
    assert eval_rows[-1]["eval/my_terms:code_l2"] > 0


def test_register_loss_in_code():
    def code_abs(*, z, **_):
        return jnp.sum(jnp.abs(z), axis=1)

    losses.register_loss("test_code_abs", code_abs)
    try:
        weights = losses.parse_recipe("mse + 2*test_code_abs")
        z = jnp.array([[1.0, -2.0]])
        total, metrics = losses.total_loss(weights, x=z, x_hat=z + 1.0, z=z)
        np.testing.assert_allclose(metrics["test_code_abs"], 3.0)
        np.testing.assert_allclose(total, 2.0 + 2 * 3.0)
        with pytest.raises(ConfigError, match="registered already"):
            losses.register_loss("test_code_abs", lambda **_: 0)
    finally:
        del losses.LOSSES["test_code_abs"]


@pytest.mark.parametrize(
    "recipe, message",
    [
        ("mse + no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("mse + math:no_such_function", "module 'math' has no function 'no_such_function'"),
    ],
)
def test_bad_module_terms(recipe, message):
    with pytest.raises(ConfigError, match=message):
        losses.parse_recipe(recipe)
