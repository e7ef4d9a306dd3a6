"""The scoring classifier (deterministic from its seed, saved and loaded with its config)
and experiments/zoo_score.py on a tiny case."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from aejax import features
from aejax.errors import AejaxError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Data:
    name = "random"

    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.train_x = rng.uniform(size=(n, 784)).astype(np.float32)
        self.train_y = rng.integers(0, 10, n).astype(np.int32)


def _tiny(seed=0):
    return features.classifier_config(seed=seed, batch_size=16, max_steps=3)


def test_training_is_deterministic_from_the_seed_and_save_load_round_trips(tmp_path):
    data = _Data(64)
    a = features.train_classifier(_tiny(), data)
    b = features.train_classifier(_tiny(), data)
    c = features.train_classifier(_tiny(seed=1), data)
    same = jax.tree.map(lambda u, v: bool(np.array_equal(u, v)), a, b)
    assert all(jax.tree.leaves(same))
    assert not np.array_equal(a["Dense_0"]["kernel"], c["Dense_0"]["kernel"])
    # Both input shapes give the same features, [N, 128].
    x = data.train_x[:5]
    feats = features.features(a, x)
    assert feats.shape == (5, features.FEATURE_DIM) and feats.dtype == np.float32
    for shape in ((5, 28, 28, 1), (5, 1, 28, 28), (5, 28, 28)):
        np.testing.assert_array_equal(feats, features.features(a, x.reshape(shape)))

    features.save(str(tmp_path / "clf"), a, _tiny(), test_accuracy=0.5)
    loaded, info = features.load(str(tmp_path / "clf"))
    assert info == {"config": _tiny(), "test_accuracy": 0.5}
    np.testing.assert_array_equal(features.features(loaded, x), feats)

    # Weights of another shape (another network) are refused in one line.
    bad = jax.tree.map(lambda v: v, a)
    bad["Dense_0"]["kernel"] = np.zeros((10, 128), np.float32)
    features.save(str(tmp_path / "bad"), bad, _tiny())
    with pytest.raises(AejaxError, match=r"Dense_0.*kernel.* shape \(10, 128\).*\(1568, 128\)"):
        features.load(str(tmp_path / "bad"))
    with pytest.raises(AejaxError, match="does not exist"):
        features.load(str(tmp_path / "none"))
    (tmp_path / "bad" / "params.npz").write_bytes(b"truncated")
    with pytest.raises(AejaxError, match="unreadable"):
        features.load(str(tmp_path / "bad"))


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((4, 28, 28, 3)), r"shape \(4, 28, 28, 3\)"),
        (np.zeros((4, 100)), r"shape \(4, 100\)"),
        (np.zeros((4, 14, 56)), r"shape \(4, 14, 56\)"),
        (np.zeros(784), "shape"),
        (np.full((2, 784), 1.5), r"values in \[1.5, 1.5\]"),
        (np.full((2, 784), np.nan), "NaN"),
    ],
)
def test_bad_images_give_one_line_errors(x, message):
    with pytest.raises(AejaxError, match=message):
        features.as_images(x)


def test_bad_classifier_configs_give_one_line_errors():
    with pytest.raises(ConfigError, match="unknown field 'epochs'"):
        features.classifier_config(epochs=1)
    with pytest.raises(ConfigError, match="batch_size=0 must be an int >= 1"):
        features.classifier_config(batch_size=0)
    with pytest.raises(ConfigError, match="learning_rate='big' must be a number > 0"):
        features.classifier_config(learning_rate="big")


def _score(*args, data_dir):
    env = dict(os.environ, AEJAX_DATA_DIR=data_dir, PYTHONPATH=ROOT)
    script = os.path.join(ROOT, "experiments", "zoo_score.py")
    return subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_zoo_score_trains_then_reuses_the_classifier_and_scores_files(tmp_path, data_dir):
    mnist = features.load_mnist(data_dir)
    copy, noise = tmp_path / "copy.npy", tmp_path / "noise.npy"
    np.save(copy, mnist.test_x[:300].reshape(300, 784))  # the reference itself
    np.save(noise, np.random.default_rng(0).uniform(size=(300, 28, 28, 1)).astype(np.float32))
    clf, out = str(tmp_path / "clf"), str(tmp_path / "scores.json")
    tiny = ["--classifier_max_train=2000", "--classifier_max_steps=30", "--num_reference=300"]
    result = _score(f"--classifier_dir={clf}", f"--samples={copy}", f"--json={out}", *tiny,
                    data_dir=data_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "training the classifier" in result.stdout
    scores = json.load(open(out))
    # 30 steps on 2,000 images already beat chance (0.1) by far.
    assert scores["classifier"]["test_accuracy"] > 0.6
    floor, same = scores["rows"]
    assert floor["samples"] == "mnist train[:300] (floor)" and floor["n"] == 300
    assert 0 < floor["fd"] and 0.5 < floor["precision"] < 1 and 0.5 < floor["recall"] < 1
    assert same["fd"] < 1e-6 and same["precision"] == same["recall"] == 1.0

    result = _score(f"--classifier_dir={clf}", f"--samples={noise}", *tiny, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "training" not in result.stdout and f"classifier {clf}: test accuracy" in result.stdout
    noise_row = result.stdout.strip().splitlines()[-1].split()
    assert noise_row[0] == str(noise) and float(noise_row[2]) > 10 * floor["fd"]
    assert float(noise_row[3]) == 0.0  # no noise image lies on the digits' manifold

    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((5, 784), 255.0, np.float32))
    result = _score(f"--classifier_dir={clf}", f"--samples={bad}", data_dir=data_dir)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --samples: {bad} hold values in [255, 255]; expected pixels in [0, 1]"
    )
