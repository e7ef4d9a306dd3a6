"""The numbers the bundled configs' docstrings promise: every preset on the embedded digits
states one, and the cheapest are held to a run of the preset as it ships."""

import pytest

from aejax import config as config_lib
from aejax import train
from variants_table import expected, presets


def test_every_digits_preset_states_its_expected_number():
    missing = [f"{n}:{p}" for n, p in presets("digits") if not expected(n, p)]
    assert not missing, missing


def test_tagged_lines_give_each_preset_its_own_number():
    # cae's `sigmoid` paragraph holds the digits and the MNIST presets' lines.
    assert expected("cae", "sigmoid") == {"test/mse_per_pixel": 0.0123}
    assert expected("cae", "sigmoid_mnist") == {"test/mse_per_pixel": 0.0099}
    assert expected("ae", "mnist") == {"test/mse_per_pixel": 0.007}


@pytest.mark.parametrize("name, preset", [("ae", "digits"), ("vae", "digits"), ("rae", "l2")])
def test_a_docstrings_number_is_what_the_preset_gives(name, preset, tmp_path):
    config = config_lib.load_config(f"{name}:{preset}")
    config.progress_bar = False
    _, metrics = train.train_and_evaluate(config, str(tmp_path))
    for metric, value in expected(name, preset).items():
        # The docstrings round to 2-4 digits; other CPUs may differ in the last bits.
        assert metrics[metric] == pytest.approx(value, rel=0.02), (metric, metrics[metric])
