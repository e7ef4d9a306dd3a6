"""The scripts people run: a real run and evaluation, and one-line errors with exit code 2."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_train_then_evaluate(tmp_path):
    workdir = str(tmp_path / "run")
    result = _run(
        "train.py", "--workdir", workdir, "--config.num_epochs=2", "--config.progress_bar=false"
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 2 step 44" in result.stdout
    assert "eval/mse_per_pixel" in result.stdout
    result = _run("evaluate.py", "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split() for line in result.stdout.strip().splitlines())
    assert int(float(lines["step"])) == 44
    assert 0 < float(lines["eval/mse_per_pixel"]) < 0.2
    assert float(lines["eval/sq_err_per_image"]) == pytest.approx(
        64 * float(lines["eval/mse_per_pixel"]), rel=1e-4
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config.nope=1"], "error: unknown config key 'nope' in --config.nope"),
        (["--config.model.encoder_widths=(32,0)"], "error: config.model.encoder_widths="),
        (["--config.batch_size=abc"], "error: flag --config.batch_size=abc"),
        (["--config=configs/ae.py:cifar"], "unknown preset 'cifar'"),
        (["--config=missing.py"], "error: config file missing.py"),
        (["--config.model.name=vgg"], "error: config.model.name='vgg' is not a known model"),
        (
            [
                "--config.data.source=idx",
                "--config.data.name=mnist",
                "--config.data.data_dir=/nonexistent",
            ],
            "error: config.data: folder /nonexistent/mnist",
        ),
        (["stray"], "error: unexpected arguments: stray"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    workdir = tmp_path / "run"
    result = _run("train.py", "--workdir", str(workdir), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not workdir.exists()


def test_evaluate_without_a_run(tmp_path):
    result = _run("evaluate.py", "--workdir", str(tmp_path))
    assert result.returncode == 2
    assert "holds no config.json" in result.stderr


def test_verbose_shows_the_traceback(tmp_path):
    result = _run(
        "train.py", "--workdir", str(tmp_path / "r"), "--config.model.name=vgg", "--verbose"
    )
    assert result.returncode == 2
    assert "Traceback" in result.stderr
