"""Shared fixtures: a tiny fast config, and the offline data folder (skip when absent)."""

import os

import pytest

from aejax.config import base_config


def tiny_config(**overrides):
    """An MLP AE on the embedded digits that trains a few steps in about a second."""
    config = base_config()
    config.model.encoder_widths = (32, 8)
    config.batch_size = 32
    config.num_steps = 8
    config.eval_every_steps = 4
    config.checkpoint_every_steps = 4
    config.log_every_steps = 2
    config.eval_batch_size = 128
    config.progress_bar = False
    for key, value in overrides.items():
        node = config
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return config


@pytest.fixture
def data_dir():
    """The shared offline data folder ($AEJAX_DATA_DIR, or ../shared/data); skips if absent."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("AEJAX_DATA_DIR", ""), os.path.join(here, "../../shared/data")]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "mnist")):
            return os.path.abspath(path)
    pytest.skip("offline data (AEJAX_DATA_DIR with mnist/) is not present")
