"""The installed `aejax` command: list, help, did-you-mean, missing data and extras, and a
real run and evaluation started from another directory."""

import json
import os
import subprocess
import sys

import pytest
import tomllib

from aejax import config as config_lib
from aejax import configs, corruption, data, losses, models
from aejax.errors import MissingExtra, import_extra

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The console script pip installs beside this Python, else the same entry point as a module
# (a checkout used without installing). PYTHONPATH keeps either on this tree's code.
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "aejax")
COMMAND = [_SCRIPT] if os.path.isfile(_SCRIPT) else [sys.executable, "-m", "aejax"]


def aejax(*args, cwd, data_dir=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": ROOT}
    if data_dir is not None:
        env["AEJAX_DATA_DIR"] = data_dir
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_pyproject_installs_the_command_and_keeps_tfds_an_extra():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["scripts"] == {"aejax": "aejax.commands:main"}
    names = lambda reqs: {r.split(">")[0].split("=")[0].split("[")[0] for r in reqs}
    extras = {k: names(v) for k, v in project["optional-dependencies"].items()}
    assert not names(project["dependencies"]) & {"tensorflow-datasets", "grain"}
    assert {"tensorflow-datasets", "grain"} <= extras["tfds"] <= extras["test"]
    assert "tensorboard" in extras["tensorboard"]


def test_list_names_every_config_preset_and_registered_name(tmp_path):
    result = aejax("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sections = [  # one per blank-line-separated block: name -> its line
        {line.split()[0]: line for line in block.splitlines()[1:]}
        for block in result.stdout.strip().split("\n\n")
    ]
    listed, *registries = sections
    assert set(listed) == set(configs.names())
    for name in configs.names():
        assert ", ".join(configs.presets(name)) in listed[name], name
    assert "Variational autoencoder" in listed["vae"]
    assert "[presets: digits, mnist, beta, gaussian, iwae]" in listed["vae"]
    expected = (models.MODELS, losses.LOSSES, corruption.CORRUPTIONS, data.SOURCES)
    assert [set(r) for r in registries] == [set(r) for r in expected]
    for lines in registries:
        for name, line in lines.items():
            assert len(line.split()) > 1, f"{name} has no description"
    assert "Binary cross-entropy from logits" in registries[1]["bce"]


@pytest.mark.parametrize(
    "args, shows",
    [
        (
            ["train", "--help"],
            [
                "usage: aejax train [CONFIG[:PRESET]]",
                "--config:",
                "--workdir:",
                "--start_over:",
                "--verbose:",
                "digits, mnist, beta, gaussian",
            ],
        ),
        (["evaluate", "-h"], ["usage: aejax evaluate WORKDIR", "--sections:", "--iwae_k:"]),
        (["--help"], ["train", "evaluate", "list"]),
    ],
)
def test_help_shows_the_flags_and_exits_0(tmp_path, args, shows):
    result = aejax(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in shows:
        assert text in result.stdout, text


def test_the_train_script_has_the_same_help():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", "train.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: experiments/train.py [CONFIG[:PRESET]]")
    assert "--workdir:" in result.stdout and "vae " in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--config.lerning_rate=1"],
            "unknown config key 'lerning_rate' in "
            "--config.lerning_rate (did you mean 'optimizer.learning_rate'?)",
        ),
        (
            ["train", "vae", "--config.model.encoder_widht=(8,)"],
            "unknown config key 'encoder_widht' in --config.model.encoder_widht (did you mean "
            "'encoder_widths'?)",
        ),
        (
            ["train", "vae:betta"],
            "config vae: unknown preset 'betta'; valid: digits, mnist, "
            "beta, gaussian, iwae (did you mean 'beta'?)",
        ),
        (
            ["train", "vea"],
            "config file vea (from --config=vea) does not exist (did you mean 'vae'?)",
        ),
        (["trian"], "unknown command 'trian' (did you mean 'train'?)"),
    ],
)
def test_mistakes_get_a_did_you_mean(tmp_path, args, message):
    workdir = tmp_path / "run"
    result = aejax(*args, "--workdir", str(workdir), cwd=tmp_path)
    assert message in _one_error_line(result)
    assert not workdir.exists()


@pytest.mark.parametrize("spec", ["vae:beta", "conv_ae:deep"])
def test_a_preset_without_its_data_names_what_it_needs_and_where(tmp_path, spec):
    result = aejax("train", spec, "--workdir", str(tmp_path / "run"), cwd=tmp_path, data_dir="")
    assert _one_error_line(result) == (
        f"error: config {spec}: data source 'idx' needs the IDX files of MNIST in "
        "DATA_DIR/mnist, but no data folder is set (set AEJAX_DATA_DIR or "
        "--config.data.data_dir)"
    )


def test_train_and_evaluate_from_another_directory(tmp_path):
    elsewhere, workdir = tmp_path / "elsewhere", tmp_path / "run"
    elsewhere.mkdir()
    result = aejax(
        "train",
        "ae",
        "--workdir",
        str(workdir),
        "--config.num_epochs=1",
        "--config.progress_bar=false",
        cwd=elsewhere,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1 step 22" in result.stdout
    with open(workdir / "config.json") as f:
        assert json.load(f)["model"]["encoder_widths"] == [128, 64, 16]  # ae:digits
    result = aejax("evaluate", str(workdir), "--sections=none", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.strip().splitlines()
    assert first == f"evaluating {workdir} on its test split ..."  # said before the wait
    lines = dict(line.split() for line in rest)
    assert int(float(lines["step"])) == 22
    assert os.listdir(elsewhere) == []  # everything went to the workdir


def test_a_config_file_by_path_still_works(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from aejax.config import base_config\n\n\ndef get_config(preset='a'):\n"
        "    c = base_config()\n    c.seed = {'a': 1, 'b': 2}[preset]\n"
        "    c.model.encoder_widths = (8, 4)\n    c.num_steps = 2\n    c.batch_size = 16\n"
        "    c.progress_bar = False\n    return c\n"
    )
    result = aejax("train", "mine.py:b", "--workdir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "run" / "config.json") as f:
        assert json.load(f)["seed"] == 2


def test_importing_the_commands_defines_no_flag():
    code = (
        "import aejax.cli, aejax.commands\nfrom absl import flags\n"
        "print(sorted({'config', 'workdir', 'verbose', 'start_over'} & set(flags.FLAGS)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_bundled_preset_loads_and_the_first_is_the_default():
    for name in configs.names():
        presets = configs.presets(name)
        for preset in presets:
            config_lib.validate(config_lib.load_config(f"{name}:{preset}"))
        default = config_lib.to_json(config_lib.load_config(name))
        assert default == config_lib.to_json(config_lib.load_config(f"{name}:{presets[0]}"))


def test_a_missing_extra_is_named(monkeypatch):
    from aejax.data.tfds_source import open_tfds

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    with pytest.raises(
        MissingExtra,
        match=r"^TFDS dataset 'mnist' needs the package "
        r"tensorflow_datasets, which is not installed: pip install 'aejax\[tfds\]'$",
    ):
        open_tfds("mnist", "train")
    with pytest.raises(MissingExtra, match=r"pip install 'aejax\[bench\]'"):
        import_extra("no_such_package_here", "bench", "this")
