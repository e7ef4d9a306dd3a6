"""Disentanglement metrics, as defined by Locatello et al. (2019, "Challenging Common
Assumptions in the Unsupervised Learning of Disentangled Representations", ICML) and their
library, disentanglement_lib: the β-VAE score, the FactorVAE score, MIG and DCI.

Each takes a *representation* `represent(images) -> codes` (numpy [N, ...] -> [N, d];
for a VAE, the posterior means) and *ground-truth data* (`aejax.data.sprites.GroundTruth`:
`factor_sizes`, `sample_factors(n, rng)`, `images(factors)`), and draws everything it
needs from `rng`, so a seed gives the same number. The defaults are the library's
(batches of 64; 10,000 training and 5,000 evaluation points).

- `beta_vae_score` (Higgins et al., 2017): for pairs of batches that share one factor, the
  mean absolute code difference; a logistic regression predicts the shared factor.
- `factor_vae_score` (Kim & Mnih, 2018): for batches that share one factor, the code
  dimension of least variance (normalized by its variance over the data); a majority
  vote maps dimensions to factors.
- `mig` (Chen et al., 2018): per factor, the gap between the two largest mutual
  informations with a code dimension (codes discretized into 20 histogram bins), over the
  factor's entropy.
- `dci` (Eastwood & Williams, 2018): gradient-boosted trees predict each factor from the
  codes; their feature importances give disentanglement (each code dimension explains one
  factor) and completeness (each factor is explained by one dimension); their accuracy
  is the informativeness.
"""

import numpy as np
import scipy.stats
from sklearn import ensemble, linear_model, metrics

Represent = object  # a callable: images [N, ...] -> codes [N, d]


# Images rendered and encoded per call: the metrics' batches of 64 are gathered, so that a
# representation that runs in fixed batches (a trained model's: 1,000 images a call) is
# not called once per small batch, padded.
CHUNK_IMAGES = 8192


def _codes(represent, images: np.ndarray) -> np.ndarray:
    codes = np.asarray(represent(images), np.float64)
    return codes.reshape(len(codes), -1)


def _encoded(represent, data, factors: np.ndarray) -> np.ndarray:
    """Codes [n, d] of the images of factors [n, num_factors], CHUNK_IMAGES a call."""
    return np.concatenate(
        [
            _codes(represent, data.images(factors[i : i + CHUNK_IMAGES]))
            for i in range(0, len(factors), CHUNK_IMAGES)
        ]
    )


def _drawn(represent, data, n: int, draw):
    """Calls `draw()` n times, in order; each returns (label, [factors [b, num_factors],
    ...]). Yields each draw's label and the codes of its factor arrays, rendering and
    encoding the draws' images about CHUNK_IMAGES at a time. The draws take the random
    numbers in the same order as drawing and encoding one by one would."""
    done = 0
    while done < n:
        group, images = [], 0
        while done < n and images < CHUNK_IMAGES:
            label, sets = draw()
            group.append((label, sets))
            images += sum(len(f) for f in sets)
            done += 1
        codes = _encoded(represent, data, np.concatenate([f for _, sets in group for f in sets]))
        start = 0
        for label, sets in group:
            out = []
            for f in sets:
                out.append(codes[start : start + len(f)])
                start += len(f)
            yield label, out


def codes_and_factors(represent, data, n: int, rng: np.random.Generator):
    """n random points: codes [n, d] and their factors [n, num_factors]."""
    factors = data.sample_factors(n, rng)
    return _encoded(represent, data, factors), factors


# --- the β-VAE score ---------------------------------------------------------------------


def _beta_vae_points(represent, data, n, rng, batch_size):
    def draw():
        k = rng.integers(len(data.factor_sizes))
        f1, f2 = data.sample_factors(batch_size, rng), data.sample_factors(batch_size, rng)
        f2[:, k] = f1[:, k]
        return k, [f1, f2]

    features, labels = [], []
    for k, (z1, z2) in _drawn(represent, data, n, draw):
        features.append(np.mean(np.abs(z1 - z2), axis=0))
        labels.append(k)
    return np.stack(features), np.asarray(labels)


def beta_vae_score(
    represent, data, rng, *, batch_size=64, num_train=10_000, num_eval=5_000
) -> dict[str, float]:
    """The β-VAE score: the accuracy of a logistic regression that tells, from the mean
    |z1 − z2| of a batch of pairs, which factor the pairs share.

    Returns:
      {"train_accuracy", "eval_accuracy"} in [0, 1]; chance is 1/num_factors.
    """
    x, y = _beta_vae_points(represent, data, num_train, rng, batch_size)
    model = linear_model.LogisticRegression(random_state=int(rng.integers(2**31)))
    model.fit(x, y)
    x_eval, y_eval = _beta_vae_points(represent, data, num_eval, rng, batch_size)
    return {"train_accuracy": model.score(x, y), "eval_accuracy": model.score(x_eval, y_eval)}


# --- the FactorVAE score -----------------------------------------------------------------


def _factor_vae_votes(represent, data, n, rng, batch_size, scale, active):
    def draw():
        k = rng.integers(len(data.factor_sizes))
        f = data.sample_factors(batch_size, rng)
        f[:, k] = f[0, k]
        return k, [f]

    votes = np.zeros((len(scale), len(data.factor_sizes)), np.int64)
    for k, (z,) in _drawn(represent, data, n, draw):
        local = np.var(z, axis=0, ddof=1)
        dim = np.flatnonzero(active)[np.argmin(local[active] / scale[active])]
        votes[dim, k] += 1
    return votes


def factor_vae_score(
    represent,
    data,
    rng,
    *,
    batch_size=64,
    num_train=10_000,
    num_eval=5_000,
    num_variance_estimate=10_000,
) -> dict[str, float]:
    """The FactorVAE score: the accuracy of a majority-vote classifier from the code
    dimension of least normalized variance, in batches sharing one factor, to that factor.

    Dimensions whose variance over the data is 0 (collapsed) take no part, as in
    disentanglement_lib; with none left the score is 0.

    Returns:
      {"train_accuracy", "eval_accuracy", "num_active_dims"}.
    """
    codes, _ = codes_and_factors(represent, data, num_variance_estimate, rng)
    scale = np.var(codes, axis=0, ddof=1)
    active = scale > 0
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train = _factor_vae_votes(represent, data, num_train, rng, batch_size, scale, active)
    classifier = np.argmax(train, axis=1)  # each dimension's majority factor
    rows = np.arange(len(scale))
    evals = _factor_vae_votes(represent, data, num_eval, rng, batch_size, scale, active)
    return {
        "train_accuracy": train[rows, classifier].sum() / train.sum(),
        "eval_accuracy": evals[rows, classifier].sum() / evals.sum(),
        "num_active_dims": int(active.sum()),
    }


# --- MIG ---------------------------------------------------------------------------------


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each code dimension [N, d] cut into `num_bins` equal-width bins of its range (the
    library's histogram discretization): int [N, d]."""
    out = np.zeros(codes.shape, np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], num_bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mutual_information(codes_discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """I(code_i; factor_k) in nats of discrete arrays [N, d] and [N, K]: [d, K]."""
    return np.array(
        [
            [
                metrics.mutual_info_score(factors[:, k], codes_discrete[:, i])
                for k in range(factors.shape[1])
            ]
            for i in range(codes_discrete.shape[1])
        ]
    )


def mig(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """The mutual information gap of codes [N, d] (d ≥ 2) with factors [N, K]: the mean over
    factors of (the largest − the second largest I(code_i; factor)) / H(factor)."""
    if codes.shape[1] < 2:
        raise ValueError(f"MIG needs codes of at least 2 dimensions, got {codes.shape[1]}")
    mi = np.sort(mutual_information(discretize(codes, num_bins), factors), axis=0)[::-1]
    entropy = np.array([metrics.mutual_info_score(f, f) for f in factors.T])
    return float(np.mean((mi[0] - mi[1]) / entropy))


# --- DCI ---------------------------------------------------------------------------------


def importance_matrix(train_codes, train_factors, test_codes, test_factors, classifier=None):
    """Feature importances [d, K] of one classifier per factor (gradient-boosted trees, the
    library's default), and its mean train and test accuracies."""
    make = classifier or (lambda: ensemble.GradientBoostingClassifier(random_state=0))
    d, k = train_codes.shape[1], train_factors.shape[1]
    importance, train_acc, test_acc = np.zeros((d, k)), [], []
    for j in range(k):
        if len(np.unique(train_factors[:, j])) < 2:  # one value seen: nothing to explain
            train_acc.append(1.0)
            test_acc.append(float(np.mean(test_factors[:, j] == train_factors[0, j])))
            continue
        model = make().fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(train_codes) == train_factors[:, j]))
        test_acc.append(np.mean(model.predict(test_codes) == test_factors[:, j]))
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix [d codes, K factors]:
    1 − the entropy (base K) of each code's importances over factors, weighted by the
    code's share of all importance; and 1 − the entropy (base d) of each factor's
    importances over codes, weighted by the factor's share."""
    d, k = importance.shape
    total = importance.sum()
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=k)
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=d)
    disentanglement = np.sum(per_code * importance.sum(axis=1) / total) if k > 1 else 1.0
    completeness = np.sum(per_factor * importance.sum(axis=0) / total) if d > 1 else 1.0
    return float(disentanglement), float(completeness)


def dci(train_codes, train_factors, test_codes, test_factors, classifier=None) -> dict:
    """Disentanglement, completeness and informativeness (train and test accuracy).

    Args:
      train_codes, test_codes: [N, d]; train_factors, test_factors: int [N, K].
      classifier: a constructor of sklearn classifiers with `feature_importances_`
        (default: GradientBoostingClassifier, as the library; slow on large N).
    """
    importance, train_acc, test_acc = importance_matrix(
        train_codes, train_factors, test_codes, test_factors, classifier
    )
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }
