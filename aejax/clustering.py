"""Scoring a clustering against class labels: each cluster is given a class, then the
error is the fraction of examples whose cluster's class is not their own.

Makhzani et al. (2016, "Adversarial Autoencoders", §6) give each cluster a class from
labelled validation examples and score the test split with those classes. Two rules:
`majority_labels` (the most frequent class among the cluster's validation examples) and
`max_posterior_labels` (the paper's words: the class of the validation example with the
highest q(y_i|x)). The classes are chosen on examples held out from the test split, so the
test split is only scored.
"""

import numpy as np

from aejax.errors import AejaxError

UNLABELLED = -1  # the class of a cluster no labelling example fell into: always wrong


def _as_ints(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise AejaxError(f"{name} must be a 1-D integer array, got {a.dtype} shaped {a.shape}")
    return a.astype(np.int64)


def _pair(assignments, labels, where: str) -> tuple[np.ndarray, np.ndarray]:
    a = _as_ints(assignments, f"{where} assignments")
    y = _as_ints(labels, f"{where} labels")
    if len(a) != len(y):
        raise AejaxError(f"{where}: {len(a)} assignments but {len(y)} labels")
    if (a < 0).any() or (y < 0).any():
        raise AejaxError(f"{where}: assignments and labels must be >= 0")
    return a, y


def majority_labels(assignments, labels, num_clusters: int | None = None) -> np.ndarray:
    """Each cluster's most frequent class among the given examples.

    Args:
      assignments: [N] cluster of each example, integers in [0, K).
      labels: [N] class of each example, integers >= 0.
      num_clusters: K (default: max(assignments) + 1).
    Returns:
      [K] int64: cluster k's majority class (the smallest class on a tie), or UNLABELLED
      (-1) for a cluster without examples.
    """
    a, y = _pair(assignments, labels, "majority_labels")
    k = int(a.max()) + 1 if num_clusters is None else num_clusters
    if len(a) and a.max() >= k:
        raise AejaxError(f"majority_labels: an assignment is {a.max()}, not below K={k}")
    counts = np.zeros((k, int(y.max()) + 1 if len(y) else 1), np.int64)
    np.add.at(counts, (a, y), 1)
    return np.where(counts.sum(1) > 0, counts.argmax(1), UNLABELLED)


def max_posterior_labels(probabilities, labels) -> np.ndarray:
    """Each cluster's class by the paper's rule: the class of the example with the highest
    probability of that cluster.

    Args:
      probabilities: [N, K] q(y|x) of each labelling example.
      labels: [N] their classes.
    Returns:
      [K] int64 classes.
    """
    p = np.asarray(probabilities)
    y = _as_ints(labels, "max_posterior_labels labels")
    if p.ndim != 2 or len(p) != len(y) or not len(y):
        raise AejaxError(
            f"max_posterior_labels: probabilities {p.shape} must be [N, K] with N = "
            f"{len(y)} > 0 labels"
        )
    return y[np.argmax(p, axis=0)]


def cluster_error(assignments, labels, cluster_classes) -> float:
    """The fraction of examples whose cluster's class (`cluster_classes[assignment]`) is
    not their label: assignments, labels [N]; cluster_classes [K]. In [0, 1]."""
    a, y = _pair(assignments, labels, "cluster_error")
    classes = np.asarray(cluster_classes)
    if len(a) and a.max() >= len(classes):
        raise AejaxError(f"cluster_error: an assignment is {a.max()}, but {len(classes)} classes")
    return float(np.mean(classes[a] != y)) if len(a) else 0.0


def cluster_accuracy(
    assignments,
    labels,
    valid_assignments=None,
    valid_labels=None,
    num_clusters: int | None = None,
) -> dict:
    """The accuracy of a clustering, each cluster labelled by the majority class of its
    validation examples (Makhzani et al., 2016, §6).

    Args:
      assignments: [N] cluster of each scored (test) example, integers in [0, K).
      labels: [N] their classes.
      valid_assignments: [M] clusters of the labelling (validation) examples; None: label
        the clusters on the scored examples themselves (the clustering's purity, which
        sees the test labels: for reference only).
      valid_labels: [M] their classes.
      num_clusters: K (default: one more than the largest assignment seen).
    Returns:
      {"accuracy", "error" (1 − accuracy), "cluster_classes" ([K] list, −1 for a cluster no
      validation example fell into: its examples count as errors), "empty_clusters" (how
      many clusters the scored examples never use)}.
    """
    a, y = _pair(assignments, labels, "cluster_accuracy")
    if (valid_assignments is None) != (valid_labels is None):
        raise AejaxError("cluster_accuracy: give both valid_assignments and valid_labels")
    va, vy = (a, y) if valid_assignments is None else (valid_assignments, valid_labels)
    va = _as_ints(va, "cluster_accuracy valid_assignments")
    if num_clusters is None:
        num_clusters = int(max(a.max(initial=-1), va.max(initial=-1))) + 1
    classes = majority_labels(va, vy, num_clusters)
    error = cluster_error(a, y, classes)
    used = np.unique(a)
    return {
        "accuracy": 1.0 - error,
        "error": error,
        "cluster_classes": classes.tolist(),
        "empty_clusters": int(num_clusters - len(used)),
    }
