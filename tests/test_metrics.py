"""Host-side metrics against scikit-learn and hand computations."""

import numpy as np
import pytest
from sklearn import decomposition
from sklearn import metrics as skm

from aejax.errors import AejaxError
from aejax.metrics import (
    PCA,
    auroc,
    average_precision,
    decision_metrics,
    linear_probe,
    threshold_for_fpr,
)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_auroc_and_average_precision_match_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    labels = rng.uniform(size=300) < 0.2
    scores = rng.normal(size=300) + 1.5 * labels
    if ties:  # few distinct values: ties within and across classes
        scores = np.round(scores)
    assert auroc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(scores, labels) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12
    )


def test_anomaly_metrics_by_hand():
    # Anomalies score 3 and 1; normals 2, 0, 0. Pairs (anomaly > normal): 3 beats all three,
    # 1 beats the two zeros: 5 of 6.
    scores, labels = [3.0, 2.0, 1.0, 0.0, 0.0], [1, 0, 1, 0, 0]
    assert auroc(scores, labels) == pytest.approx(5 / 6)
    # Thresholds from the top: recall 1/2 at precision 1, then recall 1 at precision 2/3.
    assert average_precision(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    d = decision_metrics(scores, labels, threshold=0.5)  # flags 3, 2, 1
    assert d == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "false_positive_rate": 1 / 3}
    )


def test_threshold_for_fpr_flags_that_fraction_of_normals():
    normal = np.random.default_rng(0).normal(size=10_000)
    t = threshold_for_fpr(normal, 0.05)
    assert np.mean(normal > t) == pytest.approx(0.05, abs=1e-3)
    with pytest.raises(AejaxError, match="fpr=1.5 must be in"):
        threshold_for_fpr(normal, 1.5)
    # A NaN score would make a NaN threshold, which flags nothing: both are refused.
    with pytest.raises(AejaxError, match="normal scores for the threshold hold NaN or Inf"):
        threshold_for_fpr([1.0, np.nan, 2.0])
    with pytest.raises(AejaxError, match="at least one normal example"):
        threshold_for_fpr([])
    with pytest.raises(AejaxError, match="threshold is NaN"):
        decision_metrics([0.1, 0.9], [0, 1], threshold=float("nan"))


def test_anomaly_metrics_reject_one_class_and_mismatched_lengths():
    with pytest.raises(AejaxError, match="both normal and anomalous"):
        auroc([0.1, 0.2], [0, 0])
    with pytest.raises(AejaxError, match="3 scores for 2 labels"):
        average_precision([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(AejaxError, match="NaN"):
        auroc([np.nan, 0.2], [0, 1])


def test_pca_matches_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12)) + 3.0
    ours = PCA.fit(x.reshape(500, 3, 4), 5)
    ref = decomposition.PCA(5).fit(x)
    np.testing.assert_allclose(ours.explained_variance, ref.explained_variance_, rtol=1e-8)
    # Directions agree up to sign; reconstructions (sign-free) agree exactly.
    np.testing.assert_allclose(np.abs(ours.components), np.abs(ref.components_), atol=1e-8)
    recon = ours.reconstruct(x.reshape(500, 3, 4))
    assert recon.shape == (500, 3, 4)
    np.testing.assert_allclose(
        recon.reshape(500, -1), ref.inverse_transform(ref.transform(x)), atol=1e-8
    )
    with pytest.raises(AejaxError, match="k=13 components"):
        PCA.fit(x, 13)


def test_linear_probe_separates_linear_labels_and_not_random_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 6))
    w = rng.normal(size=(6, 3))
    y = np.argmax(x @ w, axis=1)
    good = linear_probe(x[:1000], y[:1000], x[1000:], y[1000:])
    assert good["test_accuracy"] > 0.95
    noise = linear_probe(x[:1000], rng.integers(0, 3, 1000), x[1000:], rng.integers(0, 3, 200))
    assert noise["test_accuracy"] < 0.5


def test_linear_probe_matches_sklearns_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 8)) * np.arange(1, 9)  # features of different scales
    y = np.argmax(x @ rng.normal(size=(8, 4)) + rng.normal(size=(600, 4)) * 3, axis=1)
    ours = linear_probe(x[:500], y[:500], x[500:], y[500:], c=0.5)
    scaler = StandardScaler().fit(x[:500])
    ref = LogisticRegression(C=0.5, tol=1e-8, max_iter=5000).fit(scaler.transform(x[:500]), y[:500])
    assert ours["train_accuracy"] == pytest.approx(ref.score(scaler.transform(x[:500]), y[:500]))
    assert ours["test_accuracy"] == pytest.approx(ref.score(scaler.transform(x[500:]), y[500:]))
