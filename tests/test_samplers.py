"""Ex-post samplers: the Gaussian mixture's draws have the fitted mixture's moments and
weights; the two-stage VAE learns a correlated Gaussian; bad codes are refused."""

import numpy as np
import pytest

from aejax.errors import AejaxError
from aejax.samplers import GaussianMixtureSampler, TwoStageVAESampler, sample_decoded


def _mixture_codes(n=3000, seed=0):
    """30% N((−3, 0), diag(0.25, 1)) and 70% N((2, 1), [[1, 0.6], [0.6, 1]]): [n, 2]."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(size=n) < 0.3
    a = rng.normal(size=(n, 2)) * [0.5, 1.0] + [-3.0, 0.0]
    b = rng.multivariate_normal([2.0, 1.0], [[1.0, 0.6], [0.6, 1.0]], size=n)
    return np.where(first[:, None], a, b)


def test_gaussian_mixture_draws_have_the_fitted_mixtures_moments():
    codes = _mixture_codes()
    sampler = GaussianMixtureSampler.fit(codes, n_components=2)
    # The fit recovers the mixture: weights 0.3 / 0.7 with their means.
    order = np.argsort(sampler.means[:, 0])
    np.testing.assert_allclose(sampler.weights[order], [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(sampler.means[order], [[-3, 0], [2, 1]], atol=0.1)
    # The draws' mean and covariance are the mixture's, Σ π_k μ_k and
    # Σ π_k (Σ_k + μ_k μ_kᵀ) − m mᵀ, within a few standard errors.
    n = 40_000
    z = sampler.sample(n, seed=1)
    assert z.shape == (n, 2) and z.dtype == np.float32
    w, mu, cov = sampler.weights, sampler.means, sampler.covariances
    m = w @ mu
    c = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu)) - np.outer(m, m)
    stderr = np.sqrt(np.diag(c) / n)
    assert np.all(np.abs(z.mean(0) - m) < 4 * stderr), (z.mean(0), m)
    np.testing.assert_allclose(np.cov(z.T), c, atol=0.05)
    # Each draw's nearest component: the weights come back.
    left = float(np.mean(z[:, 0] < -0.5))
    assert abs(left - w[order[0]]) < 4 * np.sqrt(0.3 * 0.7 / n)


def test_gaussian_mixture_draws_are_functions_of_the_seed_and_keep_the_code_shape():
    codes = _mixture_codes(500).reshape(250, 2, 2, 1)
    sampler = GaussianMixtureSampler.fit(codes, n_components=3, seed=0)
    a, b, c = sampler.sample(7, 5), sampler.sample(7, 5), sampler.sample(7, 6)
    assert a.shape == (7, 2, 2, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # More components than codes: as many components as codes, like pythae.
    assert len(GaussianMixtureSampler.fit(codes[:4], n_components=10).weights) == 4


def test_samplers_refuse_codes_they_cannot_fit():
    with pytest.raises(AejaxError, match="at least 2 finite codes"):
        GaussianMixtureSampler.fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(AejaxError, match="at least 2 finite codes"):
        TwoStageVAESampler.fit(np.zeros((1, 3)))
    with pytest.raises(AejaxError, match="n_components=0 must be"):
        GaussianMixtureSampler.fit(np.zeros((5, 2)), n_components=0)


def test_two_stage_vae_learns_a_correlated_gaussian():
    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.2], [1.2, 1.0]])  # correlation 0.6
    codes = rng.multivariate_normal([1.0, -2.0], cov, size=2000)
    sampler = TwoStageVAESampler.fit(codes, steps=1500, width=64, seed=0)
    assert sampler.losses[-1] < sampler.losses[0]
    z = sampler.sample(20_000, seed=1)
    assert z.shape == (20_000, 2)
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.15)
    std = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(z.std(0) / std, [1.0, 1.0], atol=0.15)
    assert abs(np.corrcoef(z.T)[0, 1] - 0.6) < 0.15
    np.testing.assert_array_equal(sampler.sample(5, 3), sampler.sample(5, 3))


def test_sample_decoded_decodes_the_samplers_codes():
    sampler = GaussianMixtureSampler.fit(_mixture_codes(400), n_components=2)
    decode = lambda z: np.tanh(z) * 2  # any decoder of codes
    np.testing.assert_allclose(sample_decoded(sampler, decode, 9, 4), decode(sampler.sample(9, 4)))
