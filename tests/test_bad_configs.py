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


def test_a_model_too_large_for_memory_is_refused_from_its_shapes(tmp_path):
    from aejax import train

    config = tiny_config(**{"model.encoder_widths": (10**12, 16)})
    with pytest.raises(
        ConfigError, match=r"needs at least .* GiB .*/dense_\d/kernel \[1000000000000"
    ):
        train.Experiment.from_config(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_an_unreachable_coordinator_is_one_line_after_the_timeout():
    import socket

    from aejax.errors import AejaxError

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tiny_config().distributed
    cfg.enabled, cfg.coordinator_address = True, f"127.0.0.1:{port}"
    cfg.process_id, cfg.num_processes, cfg.timeout_s = 1, 2, 1
    with pytest.raises(
        AejaxError, match=f"cannot reach the coordinator at 127.0.0.1:{port} within 1 s"
    ):
        parallel.initialize_distributed(cfg)
    for bad in (0, -5):
        cfg.timeout_s = bad
        with pytest.raises(ConfigError, match="config.distributed.timeout_s"):
            parallel.initialize_distributed(cfg)
    cfg.timeout_s, cfg.coordinator_address = 1, "no-port"
    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        parallel.initialize_distributed(cfg)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"iwae_k": 0}, "report option iwae_k=0 must be an integer >= 1"),
        ({"probe_train": -5}, "report option probe_train=-5 must be an integer >= 0"),
        ({"seed": 1.5}, "report option seed=1.5 must be an integer"),
        ({"fpr": 1.0}, r"report option fpr=1.0 must be a finite number in \(0, 1\)"),
    ],
)
def test_report_options_are_checked_before_any_work(options, message):
    from aejax import report

    with pytest.raises(ConfigError, match=message):
        report.check_request(("reconstruction",), **options)


def test_streaming_a_source_that_cannot_stream_is_refused():
    from aejax import data

    cfg = tiny_config(**{"data.stream": True}).data
    with pytest.raises(ConfigError, match="config.data.stream=True: .*'digits' .* cannot stream"):
        data.load_dataset(cfg)


def test_results_and_anomaly_settings_are_checked_before_training(tmp_path):
    from aejax.errors import AejaxError
    from anomaly_protocols import one_class_mnist
    from results_compute import Options

    with pytest.raises(ConfigError, match="--iwae_k=0 must be an integer >= 1"):
        Options(iwae_k=0)
    with pytest.raises(ConfigError, match="--valid_k=-3 must be an integer >= 1"):
        Options(valid_k=-3)
    with pytest.raises(AejaxError, match=r"class\(es\) -1, 12 not in digits's labels"):
        one_class_mnist(tiny_config(), str(tmp_path / "runs"), classes=[-1, 3, 12])
    assert not (tmp_path / "runs").exists()
