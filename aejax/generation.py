"""Generation-quality metrics on feature vectors: the Fréchet distance and the improved
precision and recall.

Both compare a set of real examples with a set of generated ones through their features
(for MNIST, `aejax.features.features`: the penultimate activations of a small classifier,
since Inception weights cannot be fetched here). Pure numpy functions of host
arrays, float64 throughout.

- `frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussians fitted to
  the two sets, ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½), the quantity FID computes on
  Inception features (Heusel et al. 2017).
- `precision_recall`: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models": each set's manifold is the union of balls around its
  points, of radius the distance to the point's k-th nearest neighbour in its own set;
  precision is the share of generated points inside the real manifold (quality), recall
  the share of real points inside the generated manifold (coverage).
"""

import numpy as np

from aejax.errors import AejaxError


def _features(x, what: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise AejaxError(f"{what}: expected features [N, F] with N >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AejaxError(f"{what} hold NaN or Inf values")
    return x


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _features(a, "the first features"), _features(b, "the second features")
    if a.shape[1] != b.shape[1]:
        raise AejaxError(f"features of different sizes: {a.shape[1]} and {b.shape[1]}")
    return a, b


def gaussian_frechet(mean_a, cov_a, mean_b, cov_b) -> float:
    """The Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    Args:
      mean_a, mean_b: [F]; cov_a, cov_b: [F, F], symmetric positive semi-definite.
    Returns:
      ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2 tr (Σ_a Σ_b)^½, a float >= 0.

    tr (Σ_a Σ_b)^½ is computed as tr (A Σ_b A)^½ with A = Σ_a^½: the same eigenvalues, but
    of a symmetric matrix, so `eigvalsh` gives them real; the few that round-off leaves
    slightly negative (singular covariances, as features of ReLUs often have) are set to 0.
    This is the usual guard of FID code (an ε on the diagonal, the imaginary part dropped
    from scipy's `sqrtm`) without its bias.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    tr_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    value = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_root
    return float(max(value, 0.0))


def frechet_distance(feat_a, feat_b) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (FID's formula).

    Args:
      feat_a: [N_a, F]; feat_b: [N_b, F] (N >= 2 each).
    Returns:
      `gaussian_frechet` of their means and covariances (unbiased, ddof=1, as FID code
      fits them), in squared feature units.
    """
    a, b = _pair(feat_a, feat_b)
    fit = lambda x: (x.mean(0), np.atleast_2d(np.cov(x, rowvar=False)))
    return gaussian_frechet(*fit(a), *fit(b))


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a_i − b_j‖², [len(a), len(b)]; clipped at 0 (the expansion can round below it)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(feats, k: int = 3, batch: int = 1000) -> np.ndarray:
    """The squared distance from each point to its k-th nearest neighbour in the same set
    (itself not counted): [N] of features [N, F], N > k. Computed `batch` rows at a time,
    so memory is O(batch · N)."""
    x = _features(feats, "features")
    if not isinstance(k, int) or not 1 <= k < len(x):
        raise AejaxError(f"k={k!r} must be an int in [1, {len(x) - 1}] for {len(x)} points")
    radii = np.empty(len(x))
    for i in range(0, len(x), batch):
        d = _sq_distances(x[i : i + batch], x)
        # Index k of the sorted row: index 0 is the point itself (distance 0).
        radii[i : i + batch] = np.partition(d, k, axis=1)[:, k]
    return radii


def precision_recall(real_feats, fake_feats, k: int = 3, batch: int = 1000) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN radii.

    Args:
      real_feats: [N_r, F]; fake_feats: [N_f, F] (N > k each).
      k: the neighbour that sets each ball's radius (the paper's default, 3).
      batch: rows of distances held at once: memory is O(batch · max(N_r, N_f)) floats,
        so 10,000 x 10,000 needs about 80 MB at the default.
    Returns:
      {"precision": share of fake points within some real point's ball,
       "recall": share of real points within some fake point's ball}; a point on a
      ball's boundary is inside (distance <= radius), as in the authors' code.
    """
    real, fake = _pair(real_feats, fake_feats)
    r_real, r_fake = knn_radii(real, k, batch), knn_radii(fake, k, batch)
    fake_in = np.zeros(len(fake), bool)
    real_in = np.zeros(len(real), bool)
    # One pass over the fake x real distances answers both questions.
    for i in range(0, len(fake), batch):
        d = _sq_distances(fake[i : i + batch], real)
        fake_in[i : i + batch] = (d <= r_real[None, :]).any(1)
        real_in |= (d <= r_fake[i : i + batch, None]).any(0)
    return {"precision": float(fake_in.mean()), "recall": float(real_in.mean())}
