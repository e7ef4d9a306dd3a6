"""The scripts people run: a real run and evaluation, and one-line errors with exit code 2."""

import gzip
import os
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
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
    assert "test/mse_per_pixel" in result.stdout
    result = _run("evaluate.py", "--workdir", workdir, "--sections=none")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.strip().splitlines()
    assert first == f"evaluating {workdir} on its test split ..."  # said before the wait
    lines = dict(line.split() for line in rest)
    assert int(float(lines["step"])) == 44
    assert 0 < float(lines["test/mse_per_pixel"]) < 0.2
    assert float(lines["test/sq_err_per_image"]) == pytest.approx(
        64 * float(lines["test/mse_per_pixel"]), rel=1e-4
    )


def _idx_dir(root, images=None, raw_images=None):
    """A data_dir whose `mnist/` folder holds valid labels and the given training images."""
    folder = root / "mnist"
    folder.mkdir(parents=True)

    def write(name, array=None, raw=None):
        if raw is None:
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            raw = header + array.astype(np.uint8).tobytes()
        (folder / name).write_bytes(gzip.compress(raw))

    write("train-images-idx3-ubyte.gz", images, raw_images)
    write("train-labels-idx1-ubyte.gz", np.zeros(4 if images is None else len(images)))
    write("t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
    write("t10k-labels-idx1-ubyte.gz", np.zeros(4))
    return [
        "--config.data.source=idx",
        "--config.data.name=mnist",
        f"--config.data.data_dir={root}",
    ]


def _trained_then_config_lost(workdir):
    from conftest import tiny_config

    from aejax.train import train_and_evaluate

    train_and_evaluate(tiny_config(num_steps=2), str(workdir))
    os.remove(workdir / "config.json")
    return []


def _npz_with_nan(root):
    """A tabular .npz whose feature matrix holds one NaN."""
    x = np.ones((50, 3))
    x[7, 1] = np.nan
    np.savez(root / "table.npz", X=x)
    return [
        "--config.data.source=npz",
        "--config.data.name=table",
        f"--config.data.data_dir={root}",
    ]


def _file(path):
    path.write_text("not a folder")
    return []


# Every bad input a user can give the training script, and the one line it must answer with.
# A setup takes (tmp_path, workdir) and returns extra arguments.
BAD_INPUTS = [
    ("unknown config key", ["--config.nope=1"], None, "unknown config key 'nope' in --config.nope"),
    ("unknown nested key", ["--config.model.nope=1"], None, "unknown config key 'nope'"),
    (
        "unknown model",
        ["--config.model.name=vgg"],
        None,
        "config.model.name='vgg' is not a known model; valid:",
    ),
    ("unknown loss term", ["--config.loss=mse+foo"], None, "'foo' is not a known loss term"),
    ("unknown corruption", ["--config.corruption.name=blur"], None, "is not a known corruption"),
    ("unknown data source", ["--config.data.source=csv"], None, "is not a known data source"),
    ("unknown preset", ["--config=ae:cifar"], None, "config ae: unknown preset 'cifar'"),
    ("missing config file", ["--config=missing.py"], None, "config file missing.py"),
    (
        "missing config file, the '--config PATH' form",
        ["--config", "missing.py:mnist"],
        None,
        "config file missing.py (from --config missing.py:mnist) does not exist",
    ),
    (
        "wrong type, said once",
        ["--config.batch_size=abc"],
        None,
        "flag --config.batch_size=abc: invalid literal for int() with base 10: 'abc'",
    ),
    (
        "non-positive size",
        ["--config.batch_size=0"],
        None,
        "config.batch_size=0 must be an integer >= 1",
    ),
    (
        "non-positive width",
        ["--config.model.encoder_widths=(32,0)"],
        None,
        "config.model.encoder_widths=(32, 0) must be a non-empty list of positive integers",
    ),
    (
        "batch larger than the data",
        ["--config.batch_size=5000"],
        None,
        "config.batch_size=5000 is larger than the 1438 training examples",
    ),
    (
        "data dir missing",
        [
            "--config.data.source=idx",
            "--config.data.name=mnist",
            "--config.data.data_dir=/nonexistent",
        ],
        None,
        "config.data: folder /nonexistent/mnist (data_dir/name) does not exist",
    ),
    (
        "images of the wrong shape",
        [],
        lambda t, w: _idx_dir(t / "d", np.zeros((4, 784))),
        "holds shape (4, 784), not [N, H, W]",
    ),
    (
        "images of the wrong dtype",
        [],
        lambda t, w: _idx_dir(t / "d", raw_images=b"\x00\x00\x0d\x03" + bytes(12 + 4 * 16)),
        "is not an IDX file of uint8 (bad magic number)",
    ),
    (
        "empty split",
        [],
        lambda t, w: _idx_dir(t / "d", np.zeros((0, 28, 28))),
        "the train split is empty",
    ),
    (
        "truncated data file",
        [],
        lambda t, w: _idx_dir(
            t / "d", raw_images=bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 28, 28) + bytes(100)
        ),
        "holds 116 bytes but its header (4, 28, 28) needs 3152",
    ),
    (
        "NaN in the data",
        [],
        lambda t, w: _npz_with_nan(t),
        "X holds 1 NaN or Inf values",
    ),
    (
        "checkpoint of another model",
        ["--config.model.encoder_widths=(16,4)"],
        lambda t, w: _trained_then_config_lost(w),
        "does not fit the config's model",
    ),
    ("workdir is a file", [], lambda t, w: _file(w), "exists and is not a folder"),
    (
        "workdir cannot be made",
        [],
        lambda t, w: _file(t / "f") + ["--workdir", str(t / "f/run")],
        "cannot be made",
    ),
    ("stray argument", ["stray"], None, "unexpected arguments: stray"),
]


def _snapshot(path):
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return sorted((str(p), p.stat().st_size) for p in path.rglob("*"))


def test_every_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    cases = []
    for i, (name, args, setup, message) in enumerate(BAD_INPUTS):
        root = tmp_path / f"case{i}"
        root.mkdir()
        workdir = root / "run"
        extra = setup(root, workdir) if setup else []
        if "--workdir" in extra:
            workdir = Path(extra[extra.index("--workdir") + 1])
        cases.append((name, args + extra, message, workdir, _snapshot(workdir)))
    # The script starts take most of the time: run four at once.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: _run("train.py", "--workdir", str(c[3]), *c[1]), cases))
    for (name, _, message, workdir, before), result in zip(cases, results, strict=True):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert message in lines[0], (name, lines[0])
        assert lines[0].count(message) == 1 and "bad --config" not in lines[0], lines[0]
        assert _snapshot(workdir) == before, name


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
