"""Kills, divergence, damaged checkpoints and bad inputs: none may cost a user their run."""

import functools
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import tiny_config

from aejax import checkpoint, data, train
from aejax.errors import AejaxError, DataError, TrainingDiverged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_ARGS = [
    "--config.num_steps=400",
    "--config.checkpoint_every_steps=20",
    "--config.eval_every_steps=400",
    "--config.log_every_steps=20",
    "--config.steps_per_dispatch=1",
    "--config.model.encoder_widths=(32,8)",
    "--config.progress_bar=false",
]


def _state(workdir, step=None):
    state = train.Experiment.from_workdir(workdir).restore_or_init(step, require_checkpoint=True)
    return jax.tree.map(np.asarray, state)


def _assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _train_process(workdir):
    cmd = [sys.executable, os.path.join(ROOT, "experiments/train.py"), "--workdir", workdir]
    return subprocess.Popen(cmd + KILL_ARGS, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _checkpoint_steps(workdir):
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(s) for s in os.listdir(folder) if s.isdigit())


def _passed(workdir, step):
    return any(s >= step for s in _checkpoint_steps(workdir))


def _saving(workdir):
    return bool(glob.glob(os.path.join(workdir, "checkpoints", "*tmp*")))  # orbax's temporary


def _kill_when(proc, ready, delay=0.0, timeout=120.0):
    """SIGKILLs `proc` `delay` seconds after `ready()` first holds; False if it never held
    before `proc` ended or `timeout` passed (then `proc` is killed anyway)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready():
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005)
    proc.kill()
    return False


def test_sigkill_then_resume_is_bit_exact(tmp_path):
    """Several trials: killed at random moments and during saves, then run again to the end;
    each ends with the parameters of a run that never stopped."""
    reference = str(tmp_path / "reference")
    assert _train_process(reference).wait(timeout=300) == 0
    expected = _state(reference)
    rng = random.Random(0)
    outcomes = []
    for trial, how in enumerate(["random", "random", "save", "save"]):
        workdir = str(tmp_path / f"trial{trial}")
        proc = _train_process(workdir)
        if how == "random":
            # Start-up time varies between machines, so the moment is drawn relative to the
            # run's progress: a little after some checkpoint, with >= 60 steps (three saves,
            # about 150 ms here) still to go.
            passed = functools.partial(_passed, workdir, rng.randrange(20, 341, 20))
            killed = _kill_when(proc, passed, delay=rng.uniform(0.0, 0.02))
        else:
            killed = _kill_when(proc, functools.partial(_saving, workdir))
        proc.wait(timeout=60)
        steps = _checkpoint_steps(workdir)
        resumed = _train_process(workdir)
        assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
        got = _state(workdir)
        assert int(got.step) == 400
        _assert_trees_equal(expected, got)
        outcomes.append((how, proc.returncode, killed, steps[-1] if steps else None))
    # Every trial was killed before its run ended, two of them while a save was in progress.
    assert all(k and code == -signal.SIGKILL for _, code, k, _ in outcomes), outcomes


def test_damaged_newest_checkpoint_is_passed_over(tmp_path, caplog):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(), workdir)  # checkpoints at 4 and 8
    for path in glob.glob(os.path.join(workdir, "checkpoints", "8", "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "wb") as f:
                f.write(b"\0")
    state = _state(workdir)
    assert int(state.step) == 4
    _assert_trees_equal(state, _state(workdir, step=4))
    # Restoring writes nothing; resuming sets the damaged folder aside (nothing is deleted),
    # so that the run can save step 8 again, and it ends where an uninterrupted run ends.
    checkpoints = os.path.join(workdir, "checkpoints")
    assert sorted(os.listdir(checkpoints)) == ["4", "8", "digests.json"]
    train.train_and_evaluate(tiny_config(), workdir)
    assert sorted(os.listdir(checkpoints)) == ["4", "8", "8.damaged-1", "digests.json"]
    reference = str(tmp_path / "reference")
    train.train_and_evaluate(tiny_config(), reference)
    _assert_trees_equal(_state(workdir), _state(reference))


def test_a_flipped_bit_is_caught_by_the_checksum(tmp_path):
    """One bit flipped in the largest file of the newest checkpoint: orbax still reads it
    (with wrong numbers); its checksum does not match, so it is passed over like a damaged
    one, and the resumed run ends where an uninterrupted one does."""
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(), workdir)  # checkpoints at 4 and 8
    files = [
        p
        for p in glob.glob(os.path.join(workdir, "checkpoints", "8", "**", "*"), recursive=True)
        if os.path.isfile(p)
    ]
    largest = max(files, key=os.path.getsize)
    assert os.path.getsize(largest) > 1000
    with open(largest, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)[0]
        f.seek(1000)
        f.write(bytes([byte ^ 0x10]))
    # orbax alone reads the file, with other numbers than were saved...
    exp = train.Experiment.from_workdir(workdir)
    ckpt = exp.checkpointer()
    try:
        raw = ckpt.restore(exp.init_state(), 8)
        assert checkpoint.state_digest(raw) != ckpt.digests()["8"]
    finally:
        ckpt.close()
    # ...and the checksum turns it away.
    state = _state(workdir)
    assert int(state.step) == 4
    train.train_and_evaluate(tiny_config(), workdir)
    assert "8.damaged-1" in os.listdir(os.path.join(workdir, "checkpoints"))
    reference = str(tmp_path / "reference")
    train.train_and_evaluate(tiny_config(), reference)
    _assert_trees_equal(_state(workdir), _state(reference))


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(num_steps=4), workdir)
    os.remove(os.path.join(workdir, "config.json"))  # as if the config were lost
    with pytest.raises(AejaxError, match="checkpoint 4 .* does not fit the config's model"):
        train.train_and_evaluate(tiny_config(**{"model.encoder_widths": (16, 4)}), workdir)
    assert not os.path.exists(os.path.join(workdir, "config.json"))  # nothing written


def _diverging(**kw):
    return tiny_config(
        num_steps=6,
        checkpoint_every_steps=1,
        log_every_steps=1,
        keep_checkpoints=10,
        **{"optimizer.name": "sgd", "optimizer.learning_rate": 1e25, "optimizer.momentum": 0.0},
        **kw,
    )


def test_divergence_stops_on_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    workdir = str(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"^step 2: grad_norm, loss, mse became non-fin"):
        train.train_and_evaluate(_diverging(), workdir)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "digests.json"]
    state = _state(workdir)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state.params))
    # As the message says: the run continues from its last good checkpoint with 'skip'; it
    # still ends in an error, since step 1's huge parameters give a non-finite test loss.
    with pytest.raises(TrainingDiverged, match="the final evaluation is not finite"):
        train.train_and_evaluate(_diverging(on_nonfinite="skip"), workdir)
    resumed = _state(workdir)
    assert int(resumed.step) > int(state.step)
    _assert_trees_equal(state.params, resumed.params)  # every later step was skipped


def test_divergence_can_skip_updates_and_count_them(tmp_path):
    workdir = str(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match="the final evaluation is not finite"):
        train.train_and_evaluate(_diverging(on_nonfinite="skip"), workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if "train/skipped_steps" in line]
    assert [r["train/skipped_steps"] for r in rows] == [0, 1, 1, 1, 1, 1]
    _assert_trees_equal(_state(workdir, step=1).params, _state(workdir, step=6).params)


def test_nonfinite_detection_does_not_change_a_healthy_run(tmp_path):
    """'stop' and 'skip' differ only on bad steps: a healthy run is identical under both."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train.train_and_evaluate(tiny_config(), a)
    train.train_and_evaluate(tiny_config(on_nonfinite="skip"), b)
    _assert_trees_equal(_state(a).params, _state(b).params)


def test_wrong_shaped_and_wrong_typed_data(tmp_path, monkeypatch):
    digits = data.SOURCES["digits"]
    shapes = lambda cfg: data.Dataset(np.zeros((4, 3)), None, np.zeros((2, 5)), None, "bad")
    monkeypatch.setitem(data.SOURCES, "shapes", shapes)
    with pytest.raises(DataError, match="train examples have shape .*3.* test examples .*5"):
        data.load_dataset(tiny_config(**{"data.source": "shapes"}).data)
    strings = lambda cfg: data.Dataset(np.array([["a"]]), None, np.array([["b"]]), None, "str")
    monkeypatch.setitem(data.SOURCES, "strings", strings)
    with pytest.raises(DataError, match="holds <U1 values, not numbers"):
        data.load_dataset(tiny_config(**{"data.source": "strings"}).data)
    assert digits is data.SOURCES["digits"]


def test_workdir_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AejaxError, match="cannot be made: .*file is not a folder"):
        train.train_and_evaluate(tiny_config(), str(blocker / "run"))


def test_start_over_moves_the_old_run_aside(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(num_steps=4), workdir)
    assert checkpoint.move_aside(workdir) == workdir + ".old-1"
    assert os.path.exists(os.path.join(workdir + ".old-1", "checkpoints", "4"))
    train.train_and_evaluate(tiny_config(num_steps=4, **{"model.encoder_widths": (16, 4)}), workdir)
    assert checkpoint.move_aside(str(tmp_path / "nothing")) is None
