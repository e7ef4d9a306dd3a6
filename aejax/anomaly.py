"""Anomaly scores of autoencoders: per-example scores, classical baselines and metrics.

An autoencoder trained on normal data only reconstructs normal inputs well and others
badly, so its per-example reconstruction error is an anomaly score (higher = more
anomalous); a VAE also gives its negative ELBO, an upper bound on −log p(x). Every method is
scored with the same functions of `aejax.metrics`: AUROC and average precision on the test
split (anomalies are the positive class), and yes/no decisions at the threshold that flags
a fraction `fpr` of *validation* normal examples (no anomaly is needed to set it).

Baselines on the same training data: PCA reconstruction error with as many components as
the autoencoder's code (the linear autoencoder of the same size) and scikit-learn's
IsolationForest (Liu et al., 2008) with default settings.

These are plain functions of a trained run (`TrainedModel`) and arrays; they train
nothing. The benchmark protocols that train one run per class or data set and score it
with them (one-class MNIST, ADBench) are in experiments/anomaly_protocols.py.
"""

import math
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from aejax import metrics
from aejax.evaluate import TrainedModel
from aejax.likelihood import LIKELIHOOD_TERMS
from aejax.models import interface

# Models whose code is a Gaussian posterior q(z|x) with a standard normal prior.

RECONSTRUCTION = "reconstruction error"
# `lp_errors`: Σ_i |x̂_i − x_i|^p (the L_p norm's p-th power) for each of these p. Larger p
# weighs a few badly reconstructed pixels (a stroke the digit does not have) over many
# slightly wrong ones.
LP_NORMS = (1, 2, 3, 4)
NEGATIVE_ELBO = "negative ELBO"
PCA_NAME = "PCA"
IFOREST_NAME = "IsolationForest"
# The two scores of `residual_scores`.
SQUARED, STANDARDIZED = "squared", "standardized"


def model_scores(trained: TrainedModel, x) -> dict[str, np.ndarray]:
    """Per-example anomaly scores of a trained run (higher = more anomalous).

    Args:
      trained: a run loaded with `TrainedModel.load`.
      x: [N, *example_shape] examples in the run's data scale.
    Returns:
      "reconstruction error": [N] Σ_i (x̂_i − x_i)² (`sq_err_per_image`; a VAE's x̂ is
      decoded from the eval step's sampled z, or from z = μ when `model.sample_at_eval` is
      False). For a model with a Gaussian posterior (`aejax.models.interface`) whose recipe holds
      one likelihood term (bce, gaussian_nll, gaussian_nll_learned) and `kl_normal`, also
      "negative ELBO": [N] likelihood term + kl_normal, in nats, whatever the terms'
      weights (so a β-VAE is scored by its ELBO, not its training objective). It is a
      one-sample estimate: the eval step draws z with a fixed key (`jax.random.key(0)` for
      every batch), so it is deterministic but noisy; for the recipe `lik + kl_normal` it is
      the eval step's `loss`.
    """
    per_example = trained.per_example(np.asarray(x))
    out = {RECONSTRUCTION: per_example["sq_err_per_image"]}
    terms = trained.exp.all_weights
    likelihood = [t for t in terms if t in LIKELIHOOD_TERMS]
    if (
        interface.has_gaussian_posterior(trained.model)
        and len(likelihood) == 1
        and "kl_normal" in terms
    ):
        out[NEGATIVE_ELBO] = per_example[likelihood[0]] + per_example["kl_normal"]
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def baseline_scores(
    train_x, test_x, k: int, seed: int, valid_x=None
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Classical anomaly scores fitted on `train_x` (normal examples only).

    Args:
      train_x: [N, ...] training examples (flattened to [N, D]).
      test_x: [M, ...] examples to score.
      k: PCA components (e.g. the autoencoder's code size), >= 1; capped at min(N, D), so
        that an overcomplete code gets the most components the data has.
      seed: IsolationForest's random_state.
      valid_x: optional [V, ...] validation examples to score as well.
    Returns:
      name -> (test scores [M], validation scores [V] or None), higher = more anomalous:
      "PCA": the squared error Σ_i (x̂_i − x_i)² of the projection on the top k principal
      directions of train_x (`aejax.metrics.PCA`); "IsolationForest": scikit-learn's
      IsolationForest(random_state=seed), otherwise default (100 trees of 256 samples),
      scored by −score_samples, the mean normalized path length's anomaly score.
    """
    from sklearn.ensemble import IsolationForest

    flat = lambda a: None if a is None else np.asarray(a, np.float64).reshape(len(a), -1)
    train, test, valid = flat(train_x), flat(test_x), flat(valid_x)
    pca = metrics.PCA.fit(train, min(k, *train.shape))
    pca_error = lambda a: None if a is None else np.sum((pca.reconstruct(a) - a) ** 2, axis=1)
    forest = IsolationForest(random_state=seed).fit(train)
    forest_score = lambda a: None if a is None else -forest.score_samples(a)
    return {
        PCA_NAME: (pca_error(test), pca_error(valid)),
        IFOREST_NAME: (forest_score(test), forest_score(valid)),
    }


def summarize(test_scores, is_anomaly, valid_normal_scores=None, fpr: float = 0.05) -> dict:
    """How well one method's scores find the anomalies of a test split.

    Args:
      test_scores: [N] scores, higher = more anomalous.
      is_anomaly: [N] booleans.
      valid_normal_scores: optional [V] scores of validation examples, all normal.
      fpr: the false-positive rate the threshold targets on the validation normals.
    Returns:
      "auroc" and "average_precision"; with validation scores also "threshold"
      (`metrics.threshold_for_fpr`), "target_fpr" and the `metrics.decision_metrics` of
      `score > threshold` on test: "precision", "recall", "f1", "false_positive_rate".
    """
    out = {
        "auroc": metrics.auroc(test_scores, is_anomaly),
        "average_precision": metrics.average_precision(test_scores, is_anomaly),
    }
    if valid_normal_scores is not None:
        threshold = metrics.threshold_for_fpr(valid_normal_scores, fpr)
        out["threshold"] = threshold
        out["target_fpr"] = float(fpr)
        out.update(metrics.decision_metrics(test_scores, is_anomaly, threshold))
    return out


def code_size(model_config: ml_collections.ConfigDict, example_shape: Sequence[int]) -> int:
    """The number of entries in one example's code (traced, nothing computed)."""
    import jax.numpy as jnp

    from aejax import models

    model = models.build_model(model_config, tuple(example_shape))
    x = jax.ShapeDtypeStruct((1, *example_shape), jnp.float32)
    rngs = {name: jax.random.key(0) for name in ("params", "dropout", "latent")}
    variables = jax.eval_shape(lambda: model.init(rngs, jnp.zeros(x.shape), train=False))
    z = jax.eval_shape(lambda v, x: model.apply(v, x, method="encode"), variables, x)
    return math.prod(z.shape[1:])


def lp_errors(trained: TrainedModel, x, norms=LP_NORMS) -> dict[int, np.ndarray]:
    """{p: [N] Σ_i |x̂_i − x_i|^p} for each p of `norms` (x̂ = decode(encode(x)), z = μ for a
    VAE), in float64."""
    d = np.abs(metrics.residuals(x, trained.reconstruct(np.asarray(x))))
    return {p: np.sum(d**p, axis=1) for p in norms}


def synthetic_anomalies(train_x, n: int, seed: int) -> np.ndarray:
    """Synthetic anomalies for choosing settings where no real anomaly may be used: two of
    the four types of ADBench's study of anomaly types (Han et al., 2022, section 4.3), in
    simplified form.

    Args:
      train_x: [N, D] normal training rows.
      n: how many to draw; the first n // 2 are "dependency" anomalies, each feature drawn
        independently from that feature's training values (every marginal is normal, the
        relations between features are broken), the rest "global" anomalies, uniform in
        the training rows' bounding box widened by a tenth of its width on each side.
      seed: numpy seed.
    Returns:
      [n, D] rows, in train_x's dtype.
    """
    train = np.asarray(train_x).reshape(len(train_x), -1)
    rng = np.random.default_rng(seed)
    half = n // 2
    dependency = np.stack([rng.choice(col, half) for col in train.T], axis=1)
    lo, hi = train.min(axis=0), train.max(axis=0)
    width = hi - lo
    uniform = rng.uniform(lo - 0.1 * width, hi + 0.1 * width, size=(n - half, train.shape[1]))
    return np.concatenate([dependency, uniform]).astype(train.dtype)


def residual_scores(trained: TrainedModel, train_x, **splits) -> dict[str, dict[str, np.ndarray]]:
    """The squared and standardized reconstruction errors of each split.

    Args:
      trained: a loaded run.
      train_x: [N, ...] its training rows, which set the standardization.
      splits: name -> [M, ...] rows to score.
    Returns:
      {SQUARED: {name: [M] Σ_j r_j²}, STANDARDIZED: {name: [M] Σ_j (r_j / s_j)²}}, with
      r = x̂ − x and s_j = sqrt(mean over train_x of r_j²) (+1e-12): a feature the model
      reconstructs closely on normal rows weighs more when it is off.
    """
    residuals = lambda x: metrics.residuals(x, trained.reconstruct(np.asarray(x)))
    s = np.sqrt(np.mean(residuals(train_x) ** 2, axis=0)) + 1e-12
    r = {name: residuals(x) for name, x in splits.items()}
    return {
        SQUARED: {name: np.sum(v**2, axis=1) for name, v in r.items()},
        STANDARDIZED: {name: np.sum((v / s) ** 2, axis=1) for name, v in r.items()},
    }
