"""The generation metrics: the Fréchet distance against closed forms and scipy's sqrtm, the
improved precision and recall on sets whose answer is known, and two-sample sanity checks."""

import numpy as np
import pytest
import scipy.linalg

from aejax.errors import AejaxError
from aejax.generation import frechet_distance, gaussian_frechet, knn_radii, precision_recall


def _fd_sqrtm(a, b):
    """FID as pytorch-fid computes it (scipy's sqrtm of Σ_a Σ_b, its real part)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return (mu_a - mu_b) @ (mu_a - mu_b) + np.trace(cov_a + cov_b - 2 * root)


def test_gaussian_frechet_closed_form_for_diagonal_covariances():
    # Diagonal: ‖μ_a − μ_b‖² + Σ_i (σ_a,i − σ_b,i)².
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    sd_a, sd_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 0.0])
    expected = (1 + 0 + 4) + (4 + 0 + 0.25)
    value = gaussian_frechet(mean_a, np.diag(sd_a**2), mean_b, np.diag(sd_b**2))
    assert value == pytest.approx(expected, rel=1e-12)


def test_gaussian_frechet_of_rotated_covariances():
    # Same spectrum, rotated by R: tr(Σ_a Σ_b)^½ has a closed form for commuting ones only,
    # so compare with scipy's sqrtm on a case where Σ_a Σ_b is not symmetric.
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    cov_a, cov_b = m @ m.T + np.eye(4), np.diag([1.0, 2.0, 3.0, 4.0])
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.trace(cov_a + cov_b - 2 * root) + 1.0
    value = gaussian_frechet(np.zeros(4), cov_a, np.r_[1.0, 0, 0, 0], cov_b)
    assert value == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_and_is_zero_on_identical_sets():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(400, 8)) * 2.0 + 0.5
    assert frechet_distance(a, b) == pytest.approx(_fd_sqrtm(a, b), rel=1e-8)
    assert abs(frechet_distance(a, a)) < 1e-9
    # A shift moves only the means: the distance grows by ‖c‖².
    c = np.arange(8) / 4.0
    assert frechet_distance(a, a + c) == pytest.approx(c @ c, rel=1e-8)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # scipy's sqrtm, the reference
def test_frechet_distance_of_singular_covariances_is_finite_and_non_negative():
    # ReLU features often have dead units: rank-deficient covariances.
    rng = np.random.default_rng(2)
    a = np.maximum(rng.normal(size=(300, 6)), 0.0)
    a[:, 3:] = 0.0
    b = np.maximum(rng.normal(size=(300, 6)), 0.0)
    b[:, :2] = 0.0
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0.1
    assert value == pytest.approx(_fd_sqrtm(a, b), abs=1e-6)


def test_two_samples_of_one_distribution_are_close_and_a_shifted_one_is_not():
    rng = np.random.default_rng(3)
    real, same = rng.normal(size=(2, 2000, 4))
    shifted = rng.normal(size=(2000, 4)) + np.array([3.0, 0, 0, 0])
    # Two samples of N(0, I₄) of 2,000 each: FD about 0.01 (‖Δμ‖² alone has mean 2d/N =
    # 0.004; over 50 draws the FD averaged 0.009, at most 0.021). Shifted by 3: FD ≈ 9.
    assert frechet_distance(real, same) < 0.05
    assert frechet_distance(real, shifted) == pytest.approx(9.0, abs=0.5)
    pr_same = precision_recall(real, same)
    pr_shift = precision_recall(real, shifted)
    assert pr_same["precision"] > 0.9 and pr_same["recall"] > 0.9
    assert pr_shift["precision"] < 0.7 and pr_shift["recall"] < 0.8


def test_knn_radii_against_brute_force():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(57, 3))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    expected = np.sort(d, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(knn_radii(x, k=3, batch=10), expected, rtol=1e-9, atol=1e-12)


def test_precision_recall_identical_disjoint_and_subset_sets():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 5))
    assert precision_recall(a, a, batch=64) == {"precision": 1.0, "recall": 1.0}
    far = a + 100.0
    assert precision_recall(a, far, batch=64) == {"precision": 0.0, "recall": 0.0}
    # Real: two far-apart clusters; fake: an exact copy of one of them. Every fake point is
    # on the real manifold (precision 1); the fakes cover half of the real points.
    b = rng.normal(size=(300, 5)) + 100.0
    real = np.concatenate([a, b])
    result = precision_recall(real, b, batch=64)
    assert result == {"precision": 1.0, "recall": 0.5}
    # The converse: the fake set covers both clusters, so recall is 1; a third cluster of
    # fakes, far from both, brings precision to 2/3.
    c = rng.normal(size=(300, 5)) - 100.0
    result = precision_recall(real, np.concatenate([a, b, c]), batch=64)
    assert result["recall"] == 1.0
    assert result["precision"] == pytest.approx(2 / 3)


def test_precision_recall_matches_a_brute_force_computation():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(120, 2)), rng.normal(size=(90, 2)) * 1.5 + 0.5
    d = lambda u, v: ((u[:, None] - v[None]) ** 2).sum(-1)
    r_real = np.sort(d(real, real), 1)[:, 3]
    r_fake = np.sort(d(fake, fake), 1)[:, 3]
    precision = np.mean((d(fake, real) <= r_real[None]).any(1))
    recall = np.mean((d(real, fake) <= r_fake[None]).any(1))
    result = precision_recall(real, fake, k=3, batch=7)
    assert 0.2 < precision < 1.0 and 0.2 < recall < 1.0  # a case that tells them apart
    assert result == pytest.approx({"precision": precision, "recall": recall})


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))), "different sizes"),
        (lambda: frechet_distance(np.zeros(5), np.zeros((5, 1))), "expected features"),
        (lambda: precision_recall(np.zeros((3, 2)), np.zeros((9, 2))), "k=3 must be"),
        (lambda: precision_recall(np.full((9, 2), np.nan), np.zeros((9, 2))), "NaN"),
    ],
)
def test_bad_inputs_give_one_line_errors(call, message):
    with pytest.raises(AejaxError, match=message):
        call()
