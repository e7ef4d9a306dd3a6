"""Workdirs and saved configs that cannot be used end in one line, never a traceback."""

import os
import subprocess
import sys

import pytest
from conftest import tiny_config

from aejax import train
from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_empty_and_dangling_workdirs(tmp_path):
    with pytest.raises(AejaxError, match="is empty"):
        train.train_and_evaluate(tiny_config(), "")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(AejaxError, match="symbolic link to nothing"):
        train.train_and_evaluate(tiny_config(), str(dangling))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(AejaxError, match="symbolic link to nothing"):
        train.train_and_evaluate(tiny_config(), str(loop))
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("null", "a JSON null, not an object"),
        ("[1, 2]", "a JSON array, not an object"),
        ('{"batch_size": "abc"}', "do not fit the config"),
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
    ],
)
def test_a_saved_config_of_the_wrong_shape_is_one_clear_error(tmp_path, text, message):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text(text)
    with pytest.raises(AejaxError, match=message):
        train.train_and_evaluate(tiny_config(), str(workdir))
    with pytest.raises(AejaxError, match=message):
        TrainedModel.load(str(workdir))
    assert (workdir / "config.json").read_text() == text  # nothing overwritten


def test_the_scripts_say_it_in_one_line(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text("[1, 2]")
    for script in ("train.py", "evaluate.py"):
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "experiments", script), "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, (script, result.stderr[-2000:])
        assert "not an object of config fields" in lines[0]
