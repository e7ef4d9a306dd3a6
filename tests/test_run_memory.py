"""A workdir's memory of its config: each checkpoint keeps the config it was trained with,
checked on resume and on evaluation; a finished run may be trained longer."""

import os

import jax
import numpy as np
import pytest
from conftest import tiny_config

from aejax import train
from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel
from aejax.train.workdir import config_dict


def _params_equal(a, b) -> bool:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in pairs)


def test_each_checkpoint_keeps_its_config(tmp_path):
    config = tiny_config()
    train.train_and_evaluate(config, str(tmp_path))
    ckpt = train.Experiment.from_config(config, str(tmp_path)).checkpointer()
    try:
        assert ckpt.saved_config(8) == config_dict(config)
        assert ckpt.saved_config(4) == config_dict(config)
    finally:
        ckpt.close()


def test_without_config_json_another_config_is_refused_by_the_checkpoints(tmp_path):
    train.train_and_evaluate(tiny_config(), str(tmp_path))
    os.remove(tmp_path / "config.json")
    with pytest.raises(AejaxError, match=r"checkpoint 8 .* different config .*config.seed: 0"):
        train.train_and_evaluate(tiny_config(seed=5), str(tmp_path))


def test_evaluation_recovers_the_config_from_the_checkpoint(tmp_path):
    state, _ = train.train_and_evaluate(tiny_config(), str(tmp_path))
    os.remove(tmp_path / "config.json")
    model = TrainedModel.load(str(tmp_path))
    assert model.step == 8
    assert model.exp.config.model.encoder_widths == (32, 8)
    assert _params_equal(model.variables["params"], state.params)


def test_an_edited_budget_does_not_pass_off_a_checkpoint_as_an_earlier_one(tmp_path):
    train.train_and_evaluate(tiny_config(), str(tmp_path))
    path = tmp_path / "config.json"
    path.write_text(path.read_text().replace('"num_steps": 8', '"num_steps": 4'))
    with pytest.raises(AejaxError, match=r"checkpoint 8 .* past this config's end at step 4"):
        TrainedModel.load(str(tmp_path))
    assert TrainedModel.load(str(tmp_path), step=4).step == 4


def test_a_finished_run_trains_longer_bit_exactly_under_a_constant_schedule(tmp_path):
    constant = {"optimizer.schedule": "constant"}
    train.train_and_evaluate(tiny_config(**constant), str(tmp_path / "run"))
    longer, metrics = train.train_and_evaluate(
        tiny_config(num_steps=12, **constant), str(tmp_path / "run")
    )
    assert metrics["step"] == 12
    straight, _ = train.train_and_evaluate(
        tiny_config(num_steps=12, **constant), str(tmp_path / "straight")
    )
    assert _params_equal(longer.params, straight.params)


def test_continuing_says_where_it_resumed_and_how_the_schedule_changed(tmp_path, capsys):
    train.train_and_evaluate(tiny_config(), str(tmp_path))
    capsys.readouterr()
    train.train_and_evaluate(tiny_config(num_steps=12), str(tmp_path))
    out = capsys.readouterr().out
    assert f"resumed from checkpoint 8 in {tmp_path}; training to step 12" in out
    assert "(saved under num_epochs=10, num_steps=8)" in out
    assert "the cosine schedule now decays to step 12" in out
    assert f"outputs in {tmp_path}: config.json, checkpoints/, metrics.jsonl" in out
