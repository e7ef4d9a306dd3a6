"""Configs that cannot work say so in one ConfigError before anything runs: a function
that is not a loss term, config files without get_config or returning something else, and
a process id outside its cluster."""

import pytest
from conftest import tiny_config

from aejax import config as config_lib
from aejax import losses, parallel
from aejax.errors import ConfigError


@pytest.mark.parametrize("name", ["os:getcwd", "math:sqrt", "json:dumps"])
def test_a_function_that_is_not_a_loss_term_is_refused(name):
    with pytest.raises(ConfigError, match=f"'{name}' is not a loss term"):
        losses.parse_recipe(f"mse + {name}")
    assert name not in losses.LOSSES


def test_config_files_without_get_config_or_returning_a_dict(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(ConfigError, match="has no get_config"):
        config_lib.load_config(str(empty))
    as_dict = tmp_path / "as_dict.py"
    as_dict.write_text("def get_config(arg=None):\n    return {'batch_size': 3}\n")
    with pytest.raises(ConfigError, match="returned a dict, not an ml_collections.ConfigDict"):
        config_lib.load_config(str(as_dict))


@pytest.mark.parametrize("process_id, num_processes", [(2, 2), (-1, 2), (0, 0)])
def test_a_process_outside_its_cluster_is_refused_before_connecting(process_id, num_processes):
    cfg = tiny_config().distributed
    cfg.enabled, cfg.coordinator_address = True, "127.0.0.1:1"
    cfg.process_id, cfg.num_processes = process_id, num_processes
    with pytest.raises(ConfigError, match="config.distributed"):
        parallel.initialize_distributed(cfg)
