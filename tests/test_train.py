import json
import os

import jax
import numpy as np
import optax
import pytest
from conftest import tiny_config

from aejax import config as config_lib
from aejax import optim, train
from aejax.errors import AejaxError, ConfigError
from aejax.evaluate import TrainedModel, evaluate_run


def _params(workdir):
    """The parameters of a run's latest checkpoint, as numpy arrays."""
    state = train.Experiment.from_workdir(workdir).restore_or_init(require_checkpoint=True)
    return jax.tree.map(np.asarray, state), int(state.step)


def _assert_trees_equal(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_train_and_evaluate_writes_everything(tmp_path):
    workdir = str(tmp_path / "run")
    config = tiny_config()
    state, metrics = train.train_and_evaluate(config, workdir)
    assert metrics["step"] == 8
    assert sorted(os.listdir(workdir)) == [
        ".lock",  # one run per workdir (an flock, released when the run ends)
        "checkpoints",
        "config.json",
        "metrics.jsonl",
        "reconstructions.png",
        "tb",
    ]
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "8", "digests.json"]
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["model"]["encoder_widths"] == [32, 8]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    train_rows = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8]
    assert {"train/mse", "train/grad_norm", "train/steps_per_s"} <= set(train_rows[0])
    eval_rows = [r for r in rows if "test/loss" in r]
    assert [r["step"] for r in eval_rows] == [4, 8]
    assert eval_rows[-1]["test/mse_per_pixel"] == pytest.approx(metrics["test/mse_per_pixel"])
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tb")))
    with open(os.path.join(workdir, "reconstructions.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The saved run evaluates to the metrics the training loop reported.
    saved = evaluate_run(workdir)
    assert saved["step"] == 8
    assert saved["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    # The returned state is the one saved last, bit for bit.
    restored = train.Experiment.from_workdir(workdir).restore_or_init(require_checkpoint=True)
    assert int(state.step) == 8
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_training_reduces_the_test_loss(tmp_path):
    config = tiny_config(
        num_steps=100,
        eval_every_steps=100,
        checkpoint_every_steps=100,
        **{"optimizer.learning_rate": 1e-2},
    )
    exp = train.Experiment.from_config(config, str(tmp_path))
    before = exp.evaluate(exp.init_state())["test/loss"]
    after = train.train_and_evaluate(config, str(tmp_path / "run"))[1]["test/loss"]
    assert after < 0.7 * before


def test_same_seed_same_parameters_other_seed_other(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train.train_and_evaluate(tiny_config(seed=seed, num_steps=4), str(tmp_path / name))
    a, b, c = (_params(str(tmp_path / n))[0] for n in "abc")
    _assert_trees_equal(a, b)
    assert not np.array_equal(
        a.params["encoder"]["stack"]["dense_0"]["kernel"],
        c.params["encoder"]["stack"]["dense_0"]["kernel"],
    )


@pytest.mark.parametrize("steps_per_dispatch", [1, 3])
def test_resume_is_bit_exact(tmp_path, steps_per_dispatch):
    """N steps in one go equal N/2 steps, a stop, and N/2 more from the checkpoint."""
    config = tiny_config(
        num_steps=12,
        checkpoint_every_steps=6,
        eval_every_steps=6,
        log_every_steps=3,
        steps_per_dispatch=steps_per_dispatch,
        **{"model.dropout": 0.2, "corruption.name": "gaussian", "corruption.sigma": 0.1},
    )
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train.train_and_evaluate(config, straight)
    _, first = train.train_and_evaluate(config, resumed, stop_after=6)
    assert first["step"] == 6
    assert not os.path.exists(os.path.join(resumed, "reconstructions.png"))
    train.train_and_evaluate(config, resumed)
    a, step_a = _params(straight)
    b, step_b = _params(resumed)
    assert step_a == step_b == 12
    _assert_trees_equal(a, b)
    # The checkpoint saved mid-run is the state at its step, though training went on while
    # it was written (the step donates its input buffers).
    mid = lambda w: train.Experiment.from_workdir(w).restore_or_init(step=6)
    _assert_trees_equal(
        jax.tree.map(np.asarray, mid(straight)), jax.tree.map(np.asarray, mid(resumed))
    )
    # TensorBoard is told to drop the first run's points past the checkpoint it resumed from.
    assert _tb_purge_steps(straight) == [] and _tb_purge_steps(resumed) == [7]


def _tb_purge_steps(workdir):
    """Steps of the TensorBoard purge markers (SessionLog START) in workdir/tb's event files
    (TFRecords: length u64, its CRC u32, the Event, the Event's CRC u32)."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    steps = []
    for name in sorted(os.listdir(os.path.join(workdir, "tb"))):
        data = open(os.path.join(workdir, "tb", name), "rb").read()
        at = 0
        while at < len(data):
            length = int.from_bytes(data[at : at + 8], "little")
            event = Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            if event.session_log.status == SessionLog.START:
                steps.append(event.step)
    return steps


def test_resume_after_the_end_does_no_more_steps(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(), workdir)
    before, _ = _params(workdir)
    assert train.train_and_evaluate(tiny_config(), workdir)[1]["step"] == 8
    _assert_trees_equal(before, _params(workdir)[0])


def test_workdir_with_another_experiment_is_refused(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(num_steps=4), workdir)
    before = os.listdir(os.path.join(workdir, "checkpoints"))
    with pytest.raises(AejaxError, match=r"different experiment .*config.model.encoder_widths"):
        train.train_and_evaluate(
            tiny_config(num_steps=4, **{"model.encoder_widths": (16, 4)}), workdir
        )
    assert os.listdir(os.path.join(workdir, "checkpoints")) == before
    # A machine-specific field may differ.
    train.train_and_evaluate(tiny_config(num_steps=4, progress_bar=True), workdir)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.name": "nope"}, "config.model.name='nope' is not a known model"),
        ({"loss": "mse + klx"}, "'klx' is not a known loss term"),
        ({"loss": "bce", "model.output_activation": "linear"}, None),  # bce from logits: fine
        ({"corruption.name": "blur"}, "config.corruption.name='blur' is not a known corruption"),
        ({"corruption.fraction": 1.5}, r"fraction=1.5 must be a finite number in \[0, 1\]"),
        ({"corruption.sigma": float("nan")}, "sigma=nan must be a finite number >= 0"),
        ({"optimizer.learning_rate": float("inf")}, "learning_rate=inf must be a finite"),
        ({"optimizer.momentum": float("nan")}, "momentum=nan must be a finite number"),
        ({"optimizer.weight_decay": -1e9}, "weight_decay=-1000000000.0 must be a finite"),
        ({"optimizer.end_lr_fraction": -3.0}, r"end_lr_fraction=-3.0 must be .* in \[0, 1\]"),
        ({"optimizer.warmup_steps": 2}, "warmup_steps=2 is not shorter than the run"),
        ({"model.encoder_widths": (32.7, 8.9)}, "encoder_widths=.* positive integers"),
        ({"loss": "1e999*mse"}, "the weight of 'mse' is not finite"),
        ({"corruption.name": "masking"}, "fraction=0 leaves the input unchanged"),
        (
            {"loss": "mse + kl_sparsity", "loss_options.kl_sparsity": {"rho": 1.0}},
            r"kl_sparsity.rho=1.0 must be in \(0, 1\)",
        ),
        ({"corruption.name": "gaussian", "corruption.sigma": 0.0}, "sigma=0 leaves the input"),
        ({"data.source": "cifar"}, "config.data.source='cifar' is not a known data source"),
        ({"optimizer.name": "lbfgs"}, "config.optimizer.name='lbfgs' is not a known optimizer"),
        ({"optimizer.schedule": "step"}, "schedule='step' is not known"),
        ({"optimizer.learning_rate": 0.0}, "learning_rate=0.0 must be a finite number > 0"),
        ({"batch_size": 0}, "config.batch_size=0 must be an integer >= 1"),
        ({"batch_size": 5000}, "batch_size=5000 is larger than the 1438 training examples"),
        ({"num_steps": 0, "num_epochs": 0}, "nothing to train"),
        ({"parallelism": "tpu"}, "config.parallelism='tpu' is not known"),
        ({"model.encoder_widths": (8, -1)}, "encoder_widths=.* positive integers"),
        ({"seed": -1}, r"config.seed=-1 must be an integer in \[0, 2\*\*32\)"),
        ({"seed": 2**32}, r"config.seed=4294967296 must be an integer in"),
        ({"data.valid_fraction": 0.1, "data.split_seed": -1}, "split_seed=-1 must be an integer"),
    ],
)
def test_config_errors_before_any_work(tmp_path, overrides, message):
    workdir = str(tmp_path / "run")
    config = tiny_config(**{"num_steps": 2, **overrides})
    if message is None:
        train.train_and_evaluate(config, workdir)
        return
    with pytest.raises(ConfigError, match=message):
        train.train_and_evaluate(config, workdir)
    assert not os.path.exists(workdir)


def test_workdir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(AejaxError, match="exists and is not a folder"):
        train.train_and_evaluate(tiny_config(), str(path))
    assert path.read_text() == "keep me"


def test_schedules_and_optimizers():
    cfg = tiny_config().optimizer
    cfg.warmup_steps = 10
    schedule = optim.make_schedule(cfg, 110)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(5e-4)
    assert float(schedule(10)) == pytest.approx(1e-3)
    assert float(schedule(110)) == pytest.approx(1e-5)  # end_lr_fraction 0.01
    cfg.schedule, cfg.warmup_steps = "constant", 0
    assert float(optim.make_schedule(cfg, 100)(77)) == pytest.approx(1e-3)
    # Clipping bounds the update of a huge gradient: SGD step = lr * clipped gradient.
    cfg.name, cfg.clip_norm, cfg.momentum = "sgd", 1.0, 0.0
    tx = optim.make_optimizer(cfg, 100)
    params = {"w": np.zeros(4, np.float32)}
    updates, _ = tx.update({"w": np.full(4, 100.0, np.float32)}, tx.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(1e-3, rel=1e-5)
    cfg.name = "adamw"
    assert optim.make_optimizer(cfg, 100).init(params) is not None


def test_a_validation_split_is_evaluated_beside_the_test_split(tmp_path):
    config = tiny_config(**{"data.valid_fraction": 0.2})
    _, metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    trained = TrainedModel.load(str(tmp_path / "run"))
    ds = trained.dataset
    for prefix, x in (("test", ds.test_x), ("valid", ds.valid_x)):
        per_example = trained.per_example(x)
        for key in ("loss", "mse_per_pixel", "sq_err_per_image"):
            assert metrics[f"{prefix}/{key}"] == pytest.approx(per_example[key].mean(), rel=1e-5)
    assert metrics["valid/loss"] != metrics["test/loss"]
    # Without a validation split there is nothing to log under valid/.
    _, plain = train.train_and_evaluate(tiny_config(), str(tmp_path / "plain"))
    assert not any(k.startswith("valid/") for k in plain)


def test_trained_model_at_an_earlier_step_matches_loading_it(tmp_path):
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(tiny_config(), workdir)  # checkpoints at steps 4 and 8
    newest = TrainedModel.load(workdir)
    earlier = newest.at_step(4)
    assert (newest.step, earlier.step) == (8, 4) and earlier.exp is newest.exp
    reference = TrainedModel.load(workdir, step=4)
    leaves = lambda m: jax.tree_util.tree_leaves(m.variables)
    for a, b in zip(leaves(earlier), leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(leaves(earlier), leaves(newest), strict=True)
    )


def test_bare_config_names_are_the_bundled_configs(tmp_path, monkeypatch):
    """A bare "vae.py" or "vae" is aejax/configs/vae.py even where the working directory holds
    a file of that name (as experiments/ holds results.py); a path to that file still loads
    it."""
    (tmp_path / "vae.py").write_text("def get_config(preset=None):\n    raise RuntimeError\n")
    monkeypatch.chdir(tmp_path)
    assert config_lib.load_config("vae.py:digits").model.name == "vae"
    assert config_lib.load_config("vae:mnist").model.encoder_widths == (512, 256, 20)
    with pytest.raises(RuntimeError):
        config_lib.load_config("./vae.py:digits")
    (tmp_path / "mine.py").write_text(
        "from aejax.config import base_config\n\n\ndef get_config(preset=None):\n"
        "    c = base_config()\n    c.seed = 7\n    return c\n"
    )
    assert config_lib.load_config("mine.py").seed == 7  # not a bundled config: the local file
