"""Data augmentation's pieces: the class-conditional Gaussian sampler against numpy and
scipy (moments, a two-sample test, log-densities), the balanced labelled subsets, the
pseudo-labels' confidence filter, the real/sample mix, and a tiny VAE whose
class-conditional samples look like their classes."""

import os

import numpy as np
import pytest
from scipy import stats

from aejax import augment
from aejax.errors import AejaxError
from aejax.samplers import ClassConditionalGaussianSampler

MEANS = np.array([[0.0, 0.0, 0.0], [4.0, -2.0, 1.0], [-3.0, 3.0, 2.0]])
COVS = np.array(
    [
        np.diag([1.0, 0.5, 2.0]),
        [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.3]],
        [[2.0, -0.5, 0.3], [-0.5, 1.0, 0.0], [0.3, 0.0, 0.5]],
    ]
)


def _labelled(per_class=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array([2, 5, 7]), per_class)  # labels need not be 0..K-1
    codes = np.concatenate(
        [rng.multivariate_normal(m, c, per_class) for m, c in zip(MEANS, COVS, strict=True)]
    )
    return codes, labels


def test_fit_gives_class_means_and_the_shrunk_covariance_by_hand():
    codes, labels = _labelled(50)
    lam, ridge = 0.3, 1e-3
    s = ClassConditionalGaussianSampler.fit(codes, labels, shrinkage=lam, ridge=ridge)
    np.testing.assert_array_equal(s.classes, [2, 5, 7])
    own, dev = [], []
    for k in (2, 5, 7):
        c = codes[labels == k]
        own.append(np.cov(c, rowvar=False))
        dev.append(c - c.mean(0))
    np.testing.assert_allclose(s.means, [codes[labels == k].mean(0) for k in (2, 5, 7)])
    dev = np.concatenate(dev)
    pooled = dev.T @ dev / (len(codes) - 3)
    want = (1 - lam) * np.array(own) + lam * pooled + ridge * np.trace(pooled) / 3 * np.eye(3)
    np.testing.assert_allclose(s.covariances, want, rtol=1e-10)


def test_draws_have_each_classs_moments_and_pass_a_two_sample_test_against_numpy():
    codes, labels = _labelled()
    s = ClassConditionalGaussianSampler.fit(codes, labels, shrinkage=0.0, ridge=0.0)
    n = 30_000
    z, y = s.sample(n, seed=3)
    assert z.shape == (n, 3) and z.dtype == np.float32 and y.dtype == np.int32
    assert np.bincount(y)[[2, 5, 7]].tolist() == [n // 3] * 3  # balanced, in turn
    ref = np.random.default_rng(11)
    for i, k in enumerate((2, 5, 7)):
        zk = z[y == k].astype(np.float64)
        stderr = np.sqrt(np.diag(s.covariances[i]) / len(zk))
        assert np.all(np.abs(zk.mean(0) - s.means[i]) < 4 * stderr), k
        np.testing.assert_allclose(np.cov(zk, rowvar=False), s.covariances[i], atol=0.06)
        # Two-sample Kolmogorov-Smirnov on a projection, against numpy's own draws.
        other = ref.multivariate_normal(s.means[i], s.covariances[i], len(zk))
        w = np.array([0.6, -0.3, 0.74])
        assert stats.ks_2samp(zk @ w, other @ w).pvalue > 1e-3, k
    # A wrong covariance is caught by the same test (it has power).
    wrong = ref.multivariate_normal(s.means[0], 1.5 * s.covariances[0], 10_000)
    assert stats.ks_2samp(z[y == 2] @ np.ones(3), wrong @ np.ones(3)).pvalue < 1e-6


def test_draws_are_functions_of_the_seed_and_keep_the_code_shape():
    codes, labels = _labelled(20)
    s = ClassConditionalGaussianSampler.fit(codes.reshape(60, 3, 1), labels)
    a, b, c = s.sample(7, 5), s.sample(7, 5), s.sample(7, 6)
    assert a[0].shape == (7, 3, 1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], [2, 5, 7, 2, 5, 7, 2])
    assert not np.allclose(a[0], c[0])


def test_log_prob_is_scipys():
    codes, labels = _labelled(8)
    s = ClassConditionalGaussianSampler.fit(codes, labels, shrinkage=0.4)
    held, held_y = _labelled(50, seed=1)
    got = s.log_prob(held, held_y)
    idx = np.searchsorted(s.classes, held_y)
    want = [
        stats.multivariate_normal(s.means[i], s.covariances[i]).logpdf(z)
        for i, z in zip(idx, held, strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-8)
    with pytest.raises(AejaxError, match="among the fitted classes"):
        s.log_prob(held[:2], np.array([2, 3]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shrinkage": 1.5}, "shrinkage=1.5 must be"),
        ({"ridge": -1.0}, "ridge=-1.0 must be"),
        ({"labels": np.zeros(5)}, "labels must be integers"),
        ({"labels": np.array([0, 0, 1, 1, 2, 2, 2, 2, 3])}, "class 3 has 1 code"),
    ],
)
def test_bad_fits_are_refused_in_one_line(kwargs, message):
    codes = np.random.default_rng(0).normal(size=(9, 2))
    args = {"labels": np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])} | kwargs
    with pytest.raises(AejaxError, match=message):
        ClassConditionalGaussianSampler.fit(codes, **args)


def test_balanced_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(4), [30, 25, 40, 22])
    a, b = augment.balanced_split(labels, (8, 12), seed=1)
    assert len(a) == 8 and len(b) == 12 and not set(a) & set(b)
    assert np.bincount(labels[a]).tolist() == [2] * 4
    assert np.bincount(labels[b]).tolist() == [3] * 4
    again = augment.balanced_split(labels, (8, 12), seed=1)
    other = augment.balanced_split(labels, (8, 12), seed=2)
    np.testing.assert_array_equal(a, again[0])
    assert not np.array_equal(a, other[0])
    with pytest.raises(AejaxError, match="class 3 has 22"):
        augment.balanced_split(labels, (40, 60), seed=0)
    with pytest.raises(AejaxError, match="multiple of the 4 classes"):
        augment.balanced_split(labels, (10,), seed=0)


def test_confident_labels_keep_what_the_softmax_says():
    logits = np.array([[0.0, 0.0], [np.log(9.0), 0.0], [0.0, 5.0]])
    # Softmax maxima by hand: 0.5, 0.9, 1/(1+e^-5) = 0.9933.
    keep, labels = augment.confident_labels(logits, 0.89)
    assert keep.tolist() == [False, True, True] and labels.tolist() == [0, 0, 1]
    assert augment.confident_labels(logits, 0.995)[0].tolist() == [False] * 3
    assert augment.confident_labels(logits, 0.0)[0].all()
    with pytest.raises(AejaxError, match="threshold=2"):
        augment.confident_labels(logits, 2)


def test_mix_repeats_the_real_examples_to_weigh_as_much_as_the_samples():
    real, extra = np.ones((3, 2)), np.zeros((10, 2))
    x, y = augment.mix(real, [1, 2, 3], extra, [0] * 10)
    assert len(x) == 3 * 3 + 10 and x[:9].sum() == 18 and x[9:].sum() == 0
    assert y[:9].tolist() == [1, 2, 3] * 3
    x, _ = augment.mix(real, [1, 2, 3], extra[:0], [])
    assert len(x) == 3
    with pytest.raises(AejaxError, match="cannot mix"):
        augment.mix(real, [1, 2, 3], np.zeros((2, 3)), [0, 0])


def test_a_tiny_vaes_class_conditional_samples_look_like_their_classes(tmp_path):
    from aejax import config as config_lib
    from aejax.evaluate import TrainedModel
    from aejax.train import train_and_evaluate

    config = config_lib.load_config("augment:tiny")
    if not os.path.isdir(os.path.join(config.data.data_dir, "mnist")):
        pytest.skip("MNIST is not in $AEJAX_DATA_DIR")
    config.progress_bar = False
    train_and_evaluate(config, str(tmp_path))
    m = TrainedModel.load(str(tmp_path))
    x, y = m.dataset.train_x, m.dataset.train_y
    (lab,) = augment.balanced_split(y, (100,), seed=0)
    sampler = ClassConditionalGaussianSampler.fit(m.encode(x[lab]), y[lab], shrinkage=0.5)
    z, zy = sampler.sample(300, seed=0)
    samples = m.decode(z).reshape(300, -1)
    # Each sample's nearest class mean of the 600 real images' pixels.
    means = np.stack([x[y == k].reshape(-1, 784).mean(0) for k in range(10)])
    nearest = np.argmin(((samples[:, None] - means[None]) ** 2).sum(-1), 1)
    agree = float(np.mean(nearest == zy))
    # Against the same samples with their labels shuffled (chance, about 0.1).
    shuffled = float(np.mean(nearest == np.random.default_rng(0).permutation(zy)))
    assert agree > 0.4 and agree > 2 * shuffled, (agree, shuffled)
