"""The disentanglement metrics (aejax.disentanglement) on hand-built representations whose
answers are known, and the sprites data (aejax.data.sprites)."""

import math

import numpy as np
import pytest
from sklearn import ensemble

from aejax import disentanglement as dis
from aejax.config import base_config
from aejax.data import load_dataset, sprites
from aejax.errors import ConfigError, DataError


class Grid(sprites.GroundTruth):
    """Toy ground truth whose 'images' are the factor indices themselves, so a
    representation is any function of the factors."""

    def __init__(self, sizes):
        self.factor_sizes = tuple(sizes)

    def images(self, factors):
        return np.asarray(factors, np.float64)


def identity(x):
    return x


def entangled(x):  # two factors mixed into both codes
    return np.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], axis=1)


def test_mig_of_the_factors_themselves_is_the_share_of_entropy_the_bins_keep():
    rng = np.random.default_rng(0)
    data = Grid((3, 40))
    codes, factors = dis.codes_and_factors(identity, data, 20_000, rng)
    # 20 equal bins keep the 3-valued factor whole (I = H) and pair up the 40 values
    # (I = log 20 of H = log 40); the other code carries ~0 nats about each factor.
    expected = np.mean([1.0, math.log(20) / math.log(40)])
    assert abs(dis.mig(codes, factors) - expected) < 0.01
    mixed_codes, mixed_factors = dis.codes_and_factors(entangled, Grid((6, 6)), 20_000, rng)
    assert dis.mig(mixed_codes, mixed_factors) < 0.25
    with pytest.raises(ValueError, match="at least 2"):
        dis.mig(codes[:, :1], factors)


def test_beta_vae_score_separates_a_factorized_code_from_noise():
    data = Grid((3, 4, 5))
    kw = dict(batch_size=16, num_train=300, num_eval=200)
    good = dis.beta_vae_score(identity, data, np.random.default_rng(0), **kw)
    assert good["train_accuracy"] == 1.0 and good["eval_accuracy"] == 1.0
    noise_rng = np.random.default_rng(9)
    noise = lambda x: noise_rng.standard_normal((len(x), 3))  # noqa: E731
    bad = dis.beta_vae_score(noise, data, np.random.default_rng(0), **kw)
    assert bad["eval_accuracy"] < 0.5  # chance is 1/3


def test_factor_vae_score_ignores_scale_order_and_collapsed_dimensions():
    data = Grid((3, 4, 5))
    kw = dict(batch_size=16, num_train=300, num_eval=200, num_variance_estimate=2000)
    # Permuted, rescaled factors and one collapsed (constant) dimension.
    rep = lambda x: np.stack([100 * x[:, 2], np.zeros(len(x)), 0.01 * x[:, 0], x[:, 1]], 1)  # noqa: E731
    got = dis.factor_vae_score(rep, data, np.random.default_rng(0), **kw)
    assert got["train_accuracy"] == 1.0 and got["eval_accuracy"] == 1.0
    assert got["num_active_dims"] == 3
    noise_rng = np.random.default_rng(9)
    noise = lambda x: noise_rng.standard_normal((len(x), 3))  # noqa: E731
    assert dis.factor_vae_score(noise, data, np.random.default_rng(0), **kw)["eval_accuracy"] < 0.6
    flat = dis.factor_vae_score(
        lambda x: np.zeros((len(x), 2)), data, np.random.default_rng(0), **kw
    )
    assert flat == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_scores_gather_their_batches_and_keep_the_draws(monkeypatch):
    """The metrics encode their batches a chunk of images at a time: the same draws and
    scores as encoding one image a call (CHUNK_IMAGES = 1), in a handful of calls."""
    data = Grid((3, 4, 5))
    calls = []
    noise_rng = np.random.default_rng(9)
    weights = noise_rng.standard_normal((3, 4))

    def rep(x):  # deterministic and not factorized, so the scores are not all 1
        calls.append(len(x))
        return np.tanh(x @ weights + 0.1 * x**2 @ weights)

    kw = dict(batch_size=16, num_train=120, num_eval=60)
    scores = lambda: (  # noqa: E731
        dis.beta_vae_score(rep, data, np.random.default_rng(3), **kw),
        dis.factor_vae_score(rep, data, np.random.default_rng(4), num_variance_estimate=500, **kw),
    )
    gathered = scores()
    gathered_calls = len(calls)
    monkeypatch.setattr(dis, "CHUNK_IMAGES", 1)
    calls.clear()
    one_by_one = scores()
    assert gathered == one_by_one
    assert len(calls) == 180 * 2 * 16 + 500 + 180 * 16  # every image alone
    assert gathered_calls <= 6


def test_dci_from_hand_built_importance_matrices():
    assert dis.dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0), abs=1e-6)
    assert dis.dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-6)
    # One code explains both factors equally: not disentangled, but complete.
    assert dis.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(
        (0.0, 1.0), abs=1e-6
    )
    # Code 0: factor 0 only (weight 1/2); code 1: both equally (weight 1/2), entropy base 2.
    got = dis.dci_from_importance(np.array([[1.0, 0.0], [0.5, 0.5]]))
    h = -(2 / 3) * math.log(2 / 3, 2) - (1 / 3) * math.log(1 / 3, 2)  # factor 0 over codes
    assert got == pytest.approx((0.5, 0.75 * (1 - h) + 0.25 * 1.0), abs=1e-6)


def test_dci_of_the_factors_themselves():
    rng = np.random.default_rng(0)
    data = Grid((3, 4))
    train = dis.codes_and_factors(identity, data, 600, rng)
    test = dis.codes_and_factors(identity, data, 300, rng)
    trees = lambda: ensemble.GradientBoostingClassifier(n_estimators=10, random_state=0)  # noqa: E731
    got = dis.dci(*train, *test, classifier=trees)
    assert got["disentanglement"] > 0.95 and got["completeness"] > 0.95
    assert got["informativeness_test"] == 1.0


# --- the sprites -----------------------------------------------------------------------------


def test_rendered_sprites_follow_their_factors():
    data = sprites.RenderedSprites()
    f = np.array([[0, 5, 0, 16, 16], [0, 0, 0, 16, 16], [1, 5, 0, 16, 16], [2, 5, 0, 16, 16]])
    x = data.images(f)
    assert x.shape == (4, 64, 64, 1) and set(np.unique(x)) <= {0.0, 1.0}
    area = x.sum(axis=(1, 2, 3))
    assert area[0] == pytest.approx(19**2, rel=0.1)  # a square of side 19 px at scale 1
    assert area[1] == pytest.approx(19**2 / 4, rel=0.15)  # scale 0.5: a quarter
    assert area[2] == pytest.approx(math.pi * 10 * 5, rel=0.1)  # the ellipse's half-axes
    # x from its first to its last value moves the sprite's centroid 40 px to the right.
    ends = data.images(np.array([[0, 5, 0, 0, 16], [0, 5, 0, 31, 16]]))[..., 0]
    centroid = (ends.sum(1) @ np.arange(64)) / ends.sum((1, 2))
    assert centroid[1] - centroid[0] == pytest.approx(40, abs=1)
    # Orientation 2π (the last of 40) draws what 0 draws.
    last = data.images(np.array([[2, 5, 39, 16, 16]]))
    assert np.array_equal(last[0], x[3])
    assert np.array_equal(data.images(f), x)  # deterministic
    with pytest.raises(ValueError, match="out of range"):
        data.images(np.array([[3, 0, 0, 0, 0]]))


def test_flat_index_is_dsprites_row_order():
    assert sprites.flat_index(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]])).tolist() == [
        6 * 40 * 32 * 32,
        1,
    ]


def _fake_dsprites(path, sizes=(2, 2, 3, 2, 2)):
    """A small file in dSprites' layout: image of row r has r+1 pixels set."""
    n = math.prod(sizes)
    classes = np.concatenate(
        [np.zeros((n, 1), np.int64), np.stack(np.unravel_index(np.arange(n), sizes), 1)], 1
    )
    imgs = np.zeros((n, 64, 64), np.uint8)
    for r in range(n):
        imgs[r].flat[: r + 1] = 1
    np.savez(path, imgs=imgs, latents_classes=classes)
    return n


def test_the_original_file_reads_through_the_same_interface(tmp_path):
    path = tmp_path / "dsprites.npz"
    n = _fake_dsprites(path)
    data = sprites.DspritesFile(str(path))
    assert data.factor_sizes == (2, 2, 3, 2, 2)
    f = np.array([[1, 1, 2, 1, 1], [0, 0, 0, 0, 1]])
    assert data.images(f).sum(axis=(1, 2, 3)).tolist() == [n, 2]
    cfg = base_config().data
    cfg.source, cfg.name = "sprites", str(path)
    ds = load_dataset(cfg)
    assert ds.name == "dsprites" and len(ds.train_x) + len(ds.test_x) == n
    # The splits are distinct rows of the grid (each image's pixel count is its row + 1).
    rows = np.concatenate([ds.train_x, ds.test_x]).sum(axis=(1, 2, 3))
    assert sorted(rows.tolist()) == list(range(1, n + 1))
    np.savez(tmp_path / "bad.npz", imgs=np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(DataError, match="latents_classes"):
        sprites.DspritesFile(str(tmp_path / "bad.npz"))
    with pytest.raises(DataError, match="not found"):
        sprites.DspritesFile(str(tmp_path / "missing.npz"))


def test_the_sprites_source_draws_disjoint_seeded_splits():
    cfg = base_config().data
    cfg.source, cfg.max_train, cfg.max_test = "sprites", 300, 100
    ds = load_dataset(cfg)
    assert ds.train_x.shape == (300, 64, 64, 1) and ds.test_x.shape == (100, 64, 64, 1)
    train_f, test_f = sprites.split_factors(cfg)
    assert not set(map(tuple, train_f)) & set(map(tuple, test_f))
    assert np.array_equal(ds.train_y, train_f[:, 0])
    cfg.split_seed = 1
    assert not np.array_equal(sprites.split_factors(cfg)[0], train_f)
    cfg.max_train = 800_000
    with pytest.raises(ConfigError, match="737280 images"):
        load_dataset(cfg)
