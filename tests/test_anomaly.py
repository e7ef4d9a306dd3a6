"""Anomaly detection: scores and metrics against scikit-learn and numpy, the protocols on
tiny data, and the script's outputs and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import IsolationForest

import anomaly_protocols
from aejax import anomaly, metrics
from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel
from aejax.train import train_and_evaluate
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_summarize_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.uniform(size=400) < 0.3
    scores = rng.normal(size=400) + 1.2 * labels
    valid = rng.normal(size=200)
    out = anomaly.summarize(scores, labels, valid, fpr=0.1)
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert out["average_precision"] == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12
    )
    assert out["threshold"] == pytest.approx(np.quantile(valid, 0.9))
    assert out["target_fpr"] == 0.1
    flagged = scores > out["threshold"]
    assert out["precision"] == pytest.approx(skm.precision_score(labels, flagged))
    assert out["recall"] == pytest.approx(skm.recall_score(labels, flagged))
    assert out["f1"] == pytest.approx(skm.f1_score(labels, flagged))
    assert out["false_positive_rate"] == pytest.approx(flagged[~labels].mean())
    # Without validation scores: the ranking metrics only.
    assert set(anomaly.summarize(scores, labels)) == {"auroc", "average_precision"}


def test_baseline_scores_against_numpy_and_sklearn():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(300, 4, 3)) @ rng.normal(size=(3, 3)) + 2.0
    test, valid = rng.normal(size=(50, 4, 3)), rng.normal(size=(20, 4, 3))
    out = anomaly.baseline_scores(train, test, k=5, seed=3, valid_x=valid)
    # PCA by SVD of the centred training data, independently of aejax.metrics.PCA.
    flat = train.reshape(300, -1)
    mean = flat.mean(0)
    v = np.linalg.svd(flat - mean, full_matrices=False)[2][:5]
    error = lambda a: np.sum(((a - mean) @ v.T @ v + mean - a) ** 2, axis=1)
    np.testing.assert_allclose(out["PCA"][0], error(test.reshape(50, -1)), rtol=1e-8)
    np.testing.assert_allclose(out["PCA"][1], error(valid.reshape(20, -1)), rtol=1e-8)
    forest = IsolationForest(random_state=3).fit(flat)
    np.testing.assert_allclose(
        out["IsolationForest"][0], -forest.score_samples(test.reshape(50, -1))
    )
    none = anomaly.baseline_scores(train, test, k=2, seed=0)
    assert none["PCA"][1] is None and none["IsolationForest"][1] is None
    # An overcomplete code (k = 100 > D = 12) gets all 12 components: PCA then reconstructs
    # every example exactly.
    over = anomaly.baseline_scores(train, test, k=100, seed=0)
    np.testing.assert_allclose(over["PCA"][0], 0.0, atol=1e-9)


def test_negative_elbo_is_the_likelihood_plus_kl(tmp_path):
    # A β-VAE (β = 4): the score is bce + kl_normal, not the training objective.
    config = tiny_config(num_steps=2)
    config.model.name = "vae"
    config.loss = "bce + 4.0*kl_normal"
    train_and_evaluate(config, str(tmp_path))
    trained = TrainedModel.load(str(tmp_path))
    x = trained.dataset.test_x[:50]
    scores = anomaly.model_scores(trained, x)
    per_example = trained.per_example(x)
    assert set(scores) == {"reconstruction error", "negative ELBO"}
    np.testing.assert_allclose(
        scores["negative ELBO"], per_example["bce"] + per_example["kl_normal"], rtol=1e-6
    )
    np.testing.assert_allclose(scores["reconstruction error"], per_example["sq_err_per_image"])


def _tabular_dir(root, n=400, dim=5):
    """A data_dir with adbench_classical/1_fake.npz: normals near a 2-d plane, 10% far off."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2)) @ rng.normal(size=(2, dim)) + 0.05 * rng.normal(size=(n, dim))
    y = (rng.uniform(size=n) < 0.1).astype(np.int32)
    x[y == 1] += 3.0 * rng.normal(size=(int(y.sum()), dim))
    folder = root / "adbench_classical"
    folder.mkdir(parents=True)
    np.savez(folder / "1_fake.npz", X=x, y=y)
    return str(root)


def test_adbench_protocol_on_a_fake_set(tmp_path):
    data_dir = _tabular_dir(tmp_path / "data")
    config = tiny_config(num_steps=6)
    config.data.data_dir = data_dir
    config.model.encoder_widths = (16, 2)
    config.model.output_activation = "linear"
    assert anomaly_protocols.adbench_names(data_dir) == ["1_fake"]
    lines = []
    results = anomaly_protocols.adbench(config, str(tmp_path / "runs"), log=lines.append)
    (row,) = results["rows"]
    assert row["name"] == "1_fake" and row["pca_components"] == 2
    normals = 400 - row["n_anomalies"]
    assert row["n_train"] + row["n_valid"] == round(0.7 * normals)
    assert row["n_test"] == normals - round(0.7 * normals) + row["n_anomalies"]
    chosen = anomaly_protocols.CHOSEN_NAME
    assert set(row["methods"]) == {"reconstruction error", chosen, "PCA", "IsolationForest"}
    assert results["mean"]["PCA"]["auroc"] > 0.9  # the anomalies are far off the plane
    assert lines and lines[0].startswith("1_fake: AUROC")
    assert not row["resumed"]
    # A second call reuses the finished run: nothing is retrained, the numbers are the same.
    again = anomaly_protocols.adbench(config, str(tmp_path / "runs"))
    assert again["rows"][0]["resumed"] and again["rows"][0]["step"] == 6
    assert again["rows"][0]["methods"] == row["methods"]
    # Codes 1, 2, 4 (all below the 5 features): the config's own code 2 is the main run, the
    # others have their own; the chosen code and score are the validation AUROC's argmax.
    assert sorted(os.listdir(tmp_path / "runs")) == ["1_fake", "1_fake-code1", "1_fake-code4"]
    valid = row["choice"]["valid_auroc"]
    assert set(valid) == {f"code {k}, {s}" for k in (1, 2, 4) for s in ("squared", "standardized")}
    assert row["choice"]["chosen"] == max(valid, key=valid.get)
    assert row["choice"]["steps"] == 2 * 6  # the runs of codes 1 and 4
    k = int(row["choice"]["chosen"].split(",")[0].split()[1])
    run = tmp_path / "runs" / ("1_fake" if k == 2 else f"1_fake-code{k}")
    trained = TrainedModel.load(str(run))
    ds = trained.dataset
    kind = row["choice"]["chosen"].split(", ")[1]
    test = anomaly.residual_scores(trained, ds.train_x, test=ds.test_x)[kind]["test"]
    expected = anomaly.summarize(test, ds.test_y != 0)["auroc"]
    assert row["methods"][chosen]["auroc"] == pytest.approx(expected)
    # The code must be smaller than the features; checked before anything is trained.
    config.model.encoder_widths = (16, 5)
    with pytest.raises(AejaxError, match="1_fake has 5 features but the model's code has 5"):
        anomaly_protocols.adbench(config, str(tmp_path / "runs2"))
    assert not os.path.exists(tmp_path / "runs2")


def test_residual_scores_by_hand(tmp_path):
    """Squared and standardized errors against numpy on the model's own reconstructions."""
    data_dir = _tabular_dir(tmp_path / "data")
    config = tiny_config(num_steps=3)
    config.model.encoder_widths = (16, 2)
    config.model.output_activation = "linear"
    config = anomaly_protocols._with_data(
        config,
        source="npz",
        data_dir=data_dir,
        name="adbench_classical/1_fake",
        train_classes=(0,),
        train_fraction=0.7,
    )
    train_and_evaluate(config, str(tmp_path / "run"))
    trained = TrainedModel.load(str(tmp_path / "run"))
    ds = trained.dataset
    scores = anomaly.residual_scores(trained, ds.train_x, a=ds.test_x[:7])
    r_train = np.asarray(trained.reconstruct(ds.train_x), np.float64) - ds.train_x
    r = np.asarray(trained.reconstruct(ds.test_x[:7]), np.float64) - ds.test_x[:7]
    s = np.sqrt(np.mean(r_train**2, axis=0))
    np.testing.assert_allclose(scores["squared"]["a"], np.sum(r**2, axis=1), rtol=1e-6)
    np.testing.assert_allclose(scores["standardized"]["a"], np.sum((r / s) ** 2, axis=1), rtol=1e-6)
    # On the training rows each feature's standardized squared residual averages to 1.
    on_train = anomaly.residual_scores(trained, ds.train_x, t=ds.train_x)["standardized"]["t"]
    assert np.mean(on_train) == pytest.approx(ds.train_x.shape[1], rel=1e-6)


def test_synthetic_anomalies_types():
    rng = np.random.default_rng(1)
    train = np.c_[rng.normal(size=300), rng.integers(0, 3, 300), rng.uniform(5, 6, 300)]
    syn = anomaly.synthetic_anomalies(train.astype(np.float32), 101, seed=0)
    assert syn.shape == (101, 3) and syn.dtype == np.float32
    dependency, uniform = syn[:50], syn[50:]
    for j in range(3):  # each feature of the first half is one of that feature's values
        assert np.isin(dependency[:, j], train[:, j].astype(np.float32)).all()
    lo, hi = train.min(0), train.max(0)
    w = hi - lo
    assert ((uniform >= lo - 0.1 * w - 1e-5) & (uniform <= hi + 0.1 * w + 1e-5)).all()
    assert (uniform[:, 1] != np.round(uniform[:, 1])).all()  # not drawn from the values
    again = anomaly.synthetic_anomalies(train.astype(np.float32), 101, seed=0)
    np.testing.assert_array_equal(syn, again)


def _run(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "experiments", "anomaly.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_script_one_class_digits_end_to_end(tmp_path):
    workdir = tmp_path / "w"
    args = [
        "--protocol=mnist_one_class",
        "--config=ae",
        "--config.num_steps=6",
        "--config.eval_every_steps=6",
        "--config.steps_per_dispatch=6",
        "--config.progress_bar=false",
        "--classes=0,1",
        f"--workdir={workdir}",
    ]
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    assert "0: AUROC" in result.stdout and "total" in result.stdout
    results = json.loads((workdir / "anomaly.json").read_text())
    assert results["protocol"] == "one_class_mnist"
    assert [r["class"] for r in results["rows"]] == [0, 1]
    for row in results["rows"]:
        assert row["step"] == 6 and row["n_anomalies"] > 250  # 359 test digits, ~36 normal
        for name in ("reconstruction error", "PCA", "IsolationForest"):
            m = row["methods"][name]
            assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["average_precision"] <= 1.0
            assert {"threshold", "precision", "recall", "f1", "false_positive_rate"} <= set(m)
    assert set(results["mean"]) == {
        "reconstruction error",
        anomaly_protocols.LP_NAME,
        "PCA",
        "IsolationForest",
    }
    for row in results["rows"]:  # p is the validation AUROC's argmax
        valid = row["lp_choice"]["valid_auroc"]
        assert valid[str(row["lp_choice"]["p"])] == max(valid.values())
    # The L_p errors against the model's own per-example metrics and by hand.
    trained = TrainedModel.load(str(workdir / "class_0"))
    x = trained.dataset.test_x[:50]
    err = anomaly.lp_errors(trained, x)
    np.testing.assert_allclose(err[2], trained.per_example(x)["sq_err_per_image"], rtol=1e-5)
    d = np.abs(trained.reconstruct(x) - x).reshape(50, -1).astype(np.float64)
    np.testing.assert_allclose(err[3], (d**3).sum(1), rtol=1e-6)
    p = results["rows"][0]["lp_choice"]["p"]
    test_err = anomaly.lp_errors(trained, trained.dataset.test_x, (p,))[p]
    auroc = results["rows"][0]["methods"][anomaly_protocols.LP_NAME]["auroc"]
    assert auroc == pytest.approx(metrics.auroc(test_err, trained.dataset.test_y != 0))
    markdown = (workdir / "anomaly.md").read_text()
    assert "| mean |" in markdown and "Ruff et al." in markdown
    assert (workdir / "anomaly_auroc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (workdir / "class_1" / "checkpoints").is_dir()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--protocol=outlier", "--workdir=W"], "flag --protocol=outlier"),
        (
            ["--protocol=mnist_one_class", "--workdir=W", "--classes=0,x"],
            "--classes='0,x' must be integers",
        ),
        (
            [
                "--protocol=mnist_one_class",
                "--workdir=W",
                "--config=ae",
                "--config.data.source=npz",
                "--config.data.name=nolabels",
            ],
            "has no labels y, so config.data.train_classes cannot apply",
        ),
        (["--protocol=adbench", "--workdir=W", "--sets=0_missing"], "0_missing.npz does not exist"),
    ],
)
def test_script_bad_input_is_one_line_exit_2(tmp_path, args, message):
    data_dir = tmp_path / "data"
    (data_dir / "adbench_classical").mkdir(parents=True)
    np.savez(data_dir / "nolabels.npz", X=np.ones((20, 3)))
    args = [a.replace("W", str(tmp_path / "w")) for a in args]
    result = _run(*args, f"--config.data.data_dir={data_dir}")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "w").exists()
