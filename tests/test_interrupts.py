"""One run per workdir, clean stops on SIGINT and SIGTERM, --start_over that checks before
it moves, and a bounded number of skipped steps: each with real processes where it is
about processes."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import tiny_config

from aejax import config as config_lib
from aejax import train
from aejax.errors import AejaxError, TrainingDiverged
from aejax.train.workdir import WorkdirLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "experiments", "train.py")
# aejax/configs/ae.py's default (the embedded digits) made long enough to be caught running.
LONG = ["--config.num_steps=30000", "--config.progress_bar=false"]


def _start(workdir, *args):
    cmd = [sys.executable, TRAIN, "--workdir", str(workdir), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(workdir, *args, timeout=300):
    cmd = [sys.executable, TRAIN, "--workdir", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _wait_for_training(proc, workdir, timeout=180.0):
    """Waits until the run has written a train log row (it holds the lock and is in the
    loop)."""
    deadline = time.time() + timeout
    rows = os.path.join(workdir, "metrics.jsonl")
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        if os.path.exists(rows) and os.path.getsize(rows) > 0:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the run never started training")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_second_run_on_a_busy_workdir_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    workdir = tmp_path / "run"
    first = _start(workdir, *LONG)
    try:
        _wait_for_training(first, workdir)
        config_before = (workdir / "config.json").read_text()
        files_before = sorted(os.listdir(workdir))
        second = _run(workdir, *LONG)  # the same experiment: only the lock refuses it
        assert second.returncode == 2
        lines = _error_lines(second.stderr)
        assert len(lines) == 1, second.stderr
        assert f"in use by another run (process {first.pid} on" in lines[0]
        assert (workdir / "config.json").read_text() == config_before  # nothing written
        assert sorted(os.listdir(workdir)) == files_before
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The kill released the lock: the same command resumes (here to a short end).
    assert first.returncode == -signal.SIGKILL
    lock = WorkdirLock(str(workdir)).acquire()
    lock.close()


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    held = WorkdirLock(str(tmp_path)).acquire()
    try:
        with pytest.raises(AejaxError, match=f"in use by another run \\(process {os.getpid()}"):
            WorkdirLock(str(tmp_path)).acquire()
    finally:
        held.close()
    WorkdirLock(str(tmp_path)).acquire().close()  # free again


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_step_reached_and_exits_in_one_line(tmp_path, sig, code):
    """SIGINT (Ctrl-C) and SIGTERM stop the run within seconds with one line and exit code
    128 + signal; the checkpoint of the step reached holds the parameters an uninterrupted
    run has at that step, bit for bit."""
    workdir = tmp_path / "run"
    proc = _start(workdir, *LONG)
    _wait_for_training(proc, workdir)
    proc.send_signal(sig)
    sent = time.time()
    _, stderr = proc.communicate(timeout=60)
    assert time.time() - sent < 30
    assert proc.returncode == code, stderr[-2000:]
    lines = _error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: stopped by SIG"), stderr[-2000:]
    step = int(lines[0].split(" at step ")[1].split(";")[0])
    assert 0 < step < 30000
    assert str(step) in os.listdir(workdir / "checkpoints")
    # The same config in this process, cut off at that step, reaches the same state.
    config = config_lib.load_config("ae.py")
    config.num_steps, config.progress_bar = 30000, False
    reference, _ = train.train_and_evaluate(config, str(tmp_path / "ref"), stop_after=step)
    saved = train.Experiment.from_workdir(str(workdir)).restore_or_init(step)
    assert int(saved.step) == step
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(saved), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_start_over_checks_the_config_before_moving_anything(tmp_path):
    workdir = tmp_path / "run"
    done = _run(workdir, "--config.num_steps=20", "--config.progress_bar=false")
    assert done.returncode == 0, done.stderr[-2000:]
    before = sorted(os.listdir(workdir))
    bad = _run(workdir, "--start_over", "--config.loss=mse + no_such_term")
    assert bad.returncode == 2 and "no_such_term" in bad.stderr
    assert sorted(os.listdir(workdir)) == before
    assert not os.path.exists(f"{workdir}.old-1")


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_start_over_moves_only_a_runs_workdir(tmp_path, kind):
    target = tmp_path / "notes"
    if kind == "folder":
        target.mkdir()
        (target / "paper.tex").write_text("mine")
    else:
        target.write_text("mine")
    result = _run(target, "--start_over", "--config.num_steps=4", "--config.progress_bar=false")
    assert result.returncode == 2
    assert "not a training run's workdir" in result.stderr
    assert target.exists() and not os.path.exists(f"{target}.old-1")


def test_start_over_moves_a_finished_run_aside(tmp_path):
    workdir = tmp_path / "run"
    args = ["--config.num_steps=20", "--config.progress_bar=false"]
    assert _run(workdir, *args).returncode == 0
    again = _run(workdir, "--start_over", *args, "--config.seed=1")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"moved the old run to {workdir}.old-1" in again.stdout
    old = json.loads((tmp_path / "run.old-1" / "config.json").read_text())
    assert old["seed"] == 0 and json.loads((workdir / "config.json").read_text())["seed"] == 1


def test_skipping_stops_after_the_limit_in_a_row(tmp_path):
    """SGD at a learning rate of 1e25 makes every step after the first non-finite: under
    'skip' the run stops once more than skip_limit steps in a row were skipped, instead of
    ending 'successfully' with a useless model."""
    config = tiny_config(
        num_steps=20,
        log_every_steps=1,
        on_nonfinite="skip",
        skip_limit=5,
        **{"optimizer.name": "sgd", "optimizer.learning_rate": 1e25, "optimizer.momentum": 0.0},
    )
    with pytest.raises(
        TrainingDiverged, match=r"^step 7: 6 steps in a row .*\(config.skip_limit=5\)"
    ):
        train.train_and_evaluate(config, str(tmp_path / "run"))


def test_window_metrics_counts_skips_in_a_row_across_windows():
    bad = lambda *flags: {"loss": np.array([1.0] * len(flags)), "nonfinite": np.array(flags)}
    out = train.loop.window_metrics([(0, bad(0.0, 1.0, 1.0))], "skip", 3, skipped_before=0)
    assert out["train/skipped_steps"] == 2 and out["train/skipped_in_a_row"] == 2
    out = train.loop.window_metrics([(3, bad(1.0, 0.0))], "skip", 3, skipped_before=2)
    assert out["train/skipped_in_a_row"] == 0
    with pytest.raises(TrainingDiverged, match="step 5: 4 steps in a row"):
        train.loop.window_metrics([(3, bad(1.0, 1.0))], "skip", 3, skipped_before=2)
