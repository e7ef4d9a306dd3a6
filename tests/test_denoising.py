"""Denoising AE: trained on corrupted inputs against clean targets, it removes the noise."""

import jax
import numpy as np
import pytest

from aejax import config as config_lib
from aejax import corruption, train


def load_config(name: str, preset: str):
    """The bundled config's get_config(preset), loaded the way the commands load it."""
    return config_lib.load_config(f"{name}:{preset}")


def _short(config, steps: int):
    config.num_steps = steps
    config.eval_every_steps = config.checkpoint_every_steps = steps
    config.log_every_steps = config.steps_per_dispatch = 50
    config.progress_bar = False
    return config


def _reconstruct(workdir: str, x: np.ndarray) -> np.ndarray:
    exp = train.Experiment.from_workdir(workdir)
    state = exp.restore_or_init(require_checkpoint=True)
    return np.asarray(exp.model.apply({"params": state.params}, x)[0])


STEPS = 300


@pytest.fixture(scope="module")
def plain_ae(tmp_path_factory) -> str:
    """The workdir of the same model trained without corruption."""
    workdir = str(tmp_path_factory.mktemp("plain") / "ae")
    config = _short(load_config("dae.py", "digits"), STEPS)
    config.corruption.name = "none"
    train.train_and_evaluate(config, workdir)
    return workdir


@pytest.mark.parametrize(
    "noise", [("gaussian", "sigma", 0.3), ("masking", "fraction", 0.25)], ids=lambda n: n[0]
)
def test_dae_removes_noise_better_than_a_plain_ae(tmp_path, plain_ae, noise):
    name, field, value = noise
    dae = _short(load_config("dae.py", "digits"), STEPS)
    dae.corruption.name = name
    dae.corruption[field] = value
    train.train_and_evaluate(dae, str(tmp_path / "dae"))

    x = train.Experiment.from_workdir(plain_ae).dataset.test_x  # held out
    x_noisy = np.asarray(corruption.get_corruption(dae.corruption)(jax.random.key(7), x))
    err = lambda y: float(np.mean(np.square(y - x)))
    noisy, denoised = err(x_noisy), err(_reconstruct(str(tmp_path / "dae"), x_noisy))
    plain = err(_reconstruct(plain_ae, x_noisy))
    print(f"{name}: corrupted {noisy:.4f}, DAE {denoised:.4f}, plain AE {plain:.4f}")
    assert denoised < 0.7 * noisy, (denoised, noisy)
    assert denoised < 0.9 * plain, (denoised, plain)
