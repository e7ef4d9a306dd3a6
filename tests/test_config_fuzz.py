"""Bad values of config fields, drawn at random: each is refused before anything is written,
with one line that names the field; a few also through the command line (exit 2)."""

import os
import random
import subprocess
import sys

import ml_collections
import pytest
from conftest import tiny_config

from aejax import train
from aejax.errors import AejaxError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (A boolean is refused where a count is expected; a float field turns True into 1.0.)
NOT_NUMBERS = [float("nan"), float("inf"), float("-inf"), "abc", None, [1, 2]]
# field -> bad values beyond NOT_NUMBERS (each outside the field's range).
FIELDS = {
    "batch_size": [0, -1, -(10**9), 2.5, True],
    "eval_batch_size": [0, -5, 1.5],
    "log_every_steps": [0, -1, 0.5],
    "keep_checkpoints": [0, -2, True],
    "steps_per_dispatch": [0, -1, 3.5],
    "skip_limit": [0, -1],
    "num_steps": [-1, -(10**12), 2.5, True],
    "num_epochs": [-1, 1.5],
    "eval_every_steps": [-1, 0.5],
    "checkpoint_every_steps": [-3, 7.5],
    "seed": [-1, 2**32, 2**40, 1.5],
    "optimizer.learning_rate": [0.0, -1e-3, -1e300],
    "optimizer.warmup_steps": [-1, 2.5],
    "optimizer.end_lr_fraction": [-3.0, 1.5, 1e300],
    "optimizer.weight_decay": [-1e9, -1e-9],
    "optimizer.momentum": [-0.1, 1.0, 7.0],
    "optimizer.clip_norm": [-1.0, -1e300],
    "optimizer.eps": [0.0, -1e-8, -1e300],
    "optimizer.rho": [-0.1, 1.0, 1.5],
    "corruption.clip": [1, 0.0, "yes"],
    "model.kernel_init": ["glorot", "he", "", 3],
    "corruption.sigma": [-0.5, -1e300],
    "corruption.fraction": [-0.1, 1.5],
    "model.dropout": [-0.1, 1.0, 3.0],
    "data.max_train": [-1, 2.5],
    "data.max_test": [-1, 0.5],
}


def _bad_configs(n: int, seed: int = 0):
    rng = random.Random(seed)
    fields = sorted(FIELDS)
    for _ in range(n):
        field = rng.choice(fields)
        value = rng.choice(FIELDS[field] + NOT_NUMBERS)
        yield field, value


def _config(field, value) -> ml_collections.ConfigDict:
    # Not type-safe, as a config file may build it: the trainer's checks must catch it.
    config = ml_collections.ConfigDict(tiny_config(num_steps=4).to_dict(), type_safe=False)
    node = config
    *path, last = field.split(".")
    for name in path:
        node = node[name]
    node[last] = value
    return config


@pytest.mark.parametrize("chunk", range(4))
def test_random_bad_values_are_refused_in_one_line_before_anything_is_written(tmp_path, chunk):
    """200 draws (4 chunks of 50) over 26 fields: NaN, infinities, negative, huge, zero
    sizes, fractional counts, strings, None, lists, booleans as counts, unknown names."""
    draws = list(_bad_configs(200))[50 * chunk : 50 * (chunk + 1)]
    for i, (field, value) in enumerate(draws):
        workdir = str(tmp_path / f"run{i}")
        with pytest.raises(AejaxError) as e:
            train.train_and_evaluate(_config(field, value), workdir)
        message = str(e.value)
        assert "\n" not in message, (field, value, message)
        assert field.split(".")[-1] in message, (field, value, message)
        assert not os.path.exists(workdir), (field, value)


@pytest.mark.parametrize(
    "flag",
    [
        "--config.optimizer.learning_rate=inf",
        "--config.corruption.sigma=nan",
        "--config.optimizer.momentum=nan",
        "--config.optimizer.end_lr_fraction=-3",
        "--config.model.encoder_widths=(32.7,8.9)",
        "--config.batch_size=abc",
        "--config.optimizer.eps=0",
        "--config.model.kernel_init=glorot",
    ],
)
def test_bad_values_on_the_command_line_end_in_one_line_and_exit_2(tmp_path, flag):
    workdir = tmp_path / "run"
    cmd = [sys.executable, os.path.join(ROOT, "experiments", "train.py"), "--workdir", str(workdir)]
    result = subprocess.run(
        [*cmd, flag, "--config.progress_bar=false"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert not workdir.exists()
