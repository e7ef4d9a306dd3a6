"""Metrics and classical baselines for evaluating what an autoencoder learned.

`reconstruction_metrics` is a pure jax function of a batch (used inside the eval step).
The rest are pure functions of host arrays (numpy, float64; the linear probe's solver is jitted):
anomaly-detection scores (AUROC, average precision, a threshold chosen on validation
data), PCA (the linear baseline every autoencoder is compared with) and a linear probe on
frozen features. They take
codes or scores that the model produced elsewhere, so any method's numbers go through the
same code.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.stats import rankdata

from aejax.errors import AejaxError


def reconstruction_metrics(x: jax.Array, x_hat: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction metrics for data in [0, 1].

    Args:
      x: targets, [B, ...].
      x_hat: reconstructions, same shape.
    Returns:
      dict of [B] arrays: `sq_err_per_image` (Σ_i (x̂_i − x_i)²), `mse_per_pixel`
      (its mean over the D features), `bce_per_pixel` (mean binary cross-entropy of x̂
      clipped to [1e-7, 1 − 1e-7], in nats) and `psnr` (10·log10(1 / mse_per_pixel), in dB,
      for a peak value of 1).
    """
    b = x.shape[0]
    x = x.reshape(b, -1)
    x_hat = x_hat.reshape(b, -1)
    sq = jnp.sum(jnp.square(x_hat - x), axis=1)
    mse = sq / x.shape[1]
    p = jnp.clip(x_hat, 1e-7, 1.0 - 1e-7)
    bce = -jnp.mean(x * jnp.log(p) + (1.0 - x) * jnp.log1p(-p), axis=1)
    psnr = 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-12))
    return {"sq_err_per_image": sq, "mse_per_pixel": mse, "bce_per_pixel": bce, "psnr": psnr}


def residuals(x, x_hat) -> np.ndarray:
    """x̂ − x per example, flattened: [N, D] float64 from two [N, ...] arrays."""
    flat = lambda a: np.asarray(a, np.float64).reshape(len(x), -1)
    return flat(x_hat) - flat(x)


def _scores_labels(scores, is_anomaly) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(is_anomaly).reshape(-1)
    if scores.shape != labels.shape:
        raise AejaxError(f"{scores.shape[0]} scores for {labels.shape[0]} labels")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise AejaxError("anomaly metrics need both normal and anomalous examples")
    if not np.all(np.isfinite(scores)):
        raise AejaxError("anomaly scores hold NaN or Inf")
    return scores, labels


def auroc(scores, is_anomaly) -> float:
    """Area under the ROC curve: P(score of an anomaly > score of a normal example), ties
    counted one half (the Mann-Whitney U statistic over n_anomalous·n_normal).

    Args:
      scores: [N] anomaly scores, higher = more anomalous.
      is_anomaly: [N] booleans (or 0/1).
    """
    scores, labels = _scores_labels(scores, is_anomaly)
    ranks = rankdata(scores)  # average ranks: a tie between classes counts 1/2
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores, is_anomaly) -> float:
    """Average precision: Σ_t (R_t − R_{t−1}) · P_t over the distinct score thresholds t,
    from the highest down, with anomalies as the positive class (the step-wise area under
    the precision-recall curve, without interpolation).

    Args:
      scores: [N] anomaly scores, higher = more anomalous.
      is_anomaly: [N] booleans (or 0/1).
    """
    scores, labels = _scores_labels(scores, is_anomaly)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # thresholds at distinct values
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_for_fpr(normal_scores, fpr: float = 0.05) -> float:
    """The score above which a fraction `fpr` of held-out normal examples would be flagged.

    Chosen on validation data that holds normal examples only, it fixes the false-alarm
    rate one is willing to pay, which needs no anomalies to tune on.

    Args:
      normal_scores: [N] scores of normal validation examples.
      fpr: the target false-positive rate in (0, 1).
    """
    if not 0.0 < fpr < 1.0:
        raise AejaxError(f"fpr={fpr} must be in (0, 1)")
    scores = np.asarray(normal_scores, np.float64).reshape(-1)
    if not scores.size:
        raise AejaxError("threshold_for_fpr needs the scores of at least one normal example")
    if not np.all(np.isfinite(scores)):
        raise AejaxError("normal scores for the threshold hold NaN or Inf")
    return float(np.quantile(scores, 1.0 - fpr))


def decision_metrics(scores, is_anomaly, threshold: float) -> dict[str, float]:
    """Yes/no decisions `score > threshold` against the labels.

    Returns:
      precision, recall (= true-positive rate), f1 and false_positive_rate.
    """
    scores, labels = _scores_labels(scores, is_anomaly)
    if np.isnan(threshold):  # every comparison with NaN is False: nothing would be flagged
        raise AejaxError("the decision threshold is NaN")
    flagged = scores > threshold
    tp = float(np.sum(flagged & labels))
    precision = tp / max(flagged.sum(), 1)
    recall = tp / labels.sum()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    fpr = float(np.sum(flagged & ~labels)) / (~labels).sum()
    return {"precision": precision, "recall": recall, "f1": f1, "false_positive_rate": fpr}


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal component analysis fitted by SVD of the centred data (float64).

    Attributes:
      mean: [D] the training mean.
      components: [k, D] orthonormal principal directions, largest variance first.
      explained_variance: [k] the variance along each direction (divided by N − 1).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    @classmethod
    def fit(cls, x, k: int) -> "PCA":
        """Fits k components to x [N, ...] (flattened to [N, D])."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if not 0 < k <= min(x.shape):
            raise AejaxError(f"PCA: k={k} components must be in [1, {min(x.shape)}]")
        mean = x.mean(axis=0)
        # The covariance's eigenvectors are the right singular vectors; with N >> D the
        # D x D eigenproblem is much cheaper than the SVD of the N x D matrix.
        xc = x - mean
        values, vectors = np.linalg.eigh(xc.T @ xc)
        top = np.argsort(values)[::-1][:k]
        components = vectors[:, top].T
        # Fix each direction's sign (largest |entry| positive) so results are reproducible.
        components *= np.sign(components[np.arange(k), np.abs(components).argmax(1)])[:, None]
        return cls(mean, components, np.maximum(values[top], 0.0) / (len(x) - 1))

    def encode(self, x) -> np.ndarray:
        """x [N, ...] -> codes [N, k]."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return (x - self.mean) @ self.components.T

    def decode(self, codes) -> np.ndarray:
        """codes [N, k] -> reconstructions [N, D] (flat)."""
        return np.asarray(codes, np.float64) @ self.components + self.mean

    def reconstruct(self, x) -> np.ndarray:
        """x [N, ...] -> its projection on the k components, shaped like x."""
        return self.decode(self.encode(x)).reshape(np.shape(x))


def linear_probe(
    train_features, train_y, test_features, test_y, c: float = 1.0, max_iter: int = 200
) -> dict[str, float]:
    """Multinomial logistic regression on frozen features: fitted on train, scored on test.

    Each feature is standardized with the training mean and std first, so one
    regularization strength suits codes, PCA codes and pixels alike. The objective is
    scikit-learn's `LogisticRegression(C=c)`: Σ_n cross-entropy + ½‖W‖²/c (the intercept
    not penalized), minimized by L-BFGS (optax) in one jitted loop, which is far faster on
    60k x 1000 features than scikit-learn's solver on these CPUs; the test holds it to
    scikit-learn's.

    Args:
      train_features: [N, ...] (flattened); train_y: [N] integer labels.
      test_features: [M, ...]; test_y: [M].
      c: inverse L2 weight, as scikit-learn's C.
      max_iter: L-BFGS iterations at most (it stops when the gradient norm is < 1e-5).
    Returns:
      train_accuracy and test_accuracy in [0, 1], iterations, and converged (False when
      L-BFGS used all `max_iter` iterations before its gradient norm fell below 1e-5: the
      accuracies are then likely those of a point short of the optimum).
    """
    flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1)
    x_train, x_test = flat(train_features), flat(test_features)
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = ((x - mean) / std for x in (x_train, x_test))
    y_train, y_test = np.asarray(train_y, np.int32), np.asarray(test_y, np.int32)
    k = int(max(y_train.max(), y_test.max())) + 1
    params, iterations = _fit_softmax(
        jnp.asarray(x_train, jnp.float32),
        jnp.asarray(y_train),
        k,
        1.0 / (c * len(x_train)),
        max_iter,
    )
    w, b = (np.asarray(p, np.float64) for p in params)
    accuracy = lambda x, y: float(np.mean(np.argmax(x @ w + b, 1) == y))
    return {
        "train_accuracy": accuracy(x_train, y_train),
        "test_accuracy": accuracy(x_test, y_test),
        "iterations": int(iterations),
        "converged": int(iterations) < max_iter,
    }


@functools.partial(jax.jit, static_argnums=(2, 4))
def _fit_softmax(x: jax.Array, y: jax.Array, k: int, l2: float, max_iter: int):
    """argmin over (W [D, k], b [k]) of mean cross-entropy + ½·l2·‖W‖², by L-BFGS."""

    def objective(p):
        logits = x @ p[0] + p[1]
        ce = jax.nn.logsumexp(logits, 1) - jnp.take_along_axis(logits, y[:, None], 1)[:, 0]
        return jnp.mean(ce) + 0.5 * l2 * jnp.sum(jnp.square(p[0]))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(p, updates), state

    def running(carry):
        _, state = carry
        count = optax.tree_utils.tree_get(state, "count")
        grad_norm = optax.tree_utils.tree_norm(optax.tree_utils.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (grad_norm >= 1e-5))

    p0 = (jnp.zeros((x.shape[1], k)), jnp.zeros(k))
    p, state = jax.lax.while_loop(running, step, (p0, opt.init(p0)))
    return p, optax.tree_utils.tree_get(state, "count")
