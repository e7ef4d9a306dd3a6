"""The binarized_mnist (.amat) and npz (tabular) sources: tiny fake files, then the real ones."""

import gzip
import os

import numpy as np
import pytest

from aejax import data
from aejax.config import base_config
from aejax.errors import ConfigError, DataError


def _data_config(**kw):
    cfg = base_config().data
    for k, v in kw.items():
        cfg[k] = v
    return cfg


def _amat_text(pixels: np.ndarray) -> bytes:
    """[N, 784] of 0/1 -> the .amat text: values separated by single spaces, one line each."""
    return b"".join((" ".join(str(int(v)) for v in row) + "\n").encode() for row in pixels)


@pytest.fixture
def amat_dir(tmp_path):
    """Fake binarized MNIST: 5 train (gzipped), 3 valid (plain .amat), 2 test (gzipped)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    sizes = {"train": 5, "valid": 3, "test": 2}
    arrays = {split: rng.integers(0, 2, (n, 784)) for split, n in sizes.items()}
    for split, pixels in arrays.items():
        name = folder / f"binarized_mnist_{split}.amat"
        if split == "valid":
            name.write_bytes(_amat_text(pixels))
        else:
            name.with_suffix(".amat.gz").write_bytes(gzip.compress(_amat_text(pixels)))
    return tmp_path, arrays


def test_binarized_mnist_reads_gz_and_plain_amat(amat_dir):
    root, arrays = amat_dir
    ds = data.load_dataset(_data_config(source="binarized_mnist", data_dir=str(root)))
    assert ds.train_x.shape == (5, 28, 28, 1) and ds.test_x.shape == (2, 28, 28, 1)
    assert ds.valid_x.shape == (3, 28, 28, 1)
    assert ds.train_x.dtype == ds.valid_x.dtype == ds.test_x.dtype == np.float32
    assert ds.train_y is None and ds.test_y is None and ds.valid_y is None
    for split in ("train", "valid", "test"):
        # Row-major: value k of a line is pixel (k // 28, k % 28).
        expected = arrays[split].reshape(-1, 28, 28, 1)
        np.testing.assert_array_equal(getattr(ds, f"{split}_x"), expected)
    assert ds.name == "binarized_mnist"


def test_binarized_mnist_prefers_gz_and_tolerates_missing_final_newline(amat_dir):
    root, arrays = amat_dir
    folder = root / "binarized_mnist"
    (folder / "binarized_mnist_train.amat").write_bytes(b"not read: the .gz comes first\n")
    text = _amat_text(arrays["valid"])
    (folder / "binarized_mnist_valid.amat").write_bytes(text[:-1])
    ds = data.load_dataset(_data_config(source="binarized_mnist", data_dir=str(root)))
    np.testing.assert_array_equal(ds.train_x.reshape(-1, 784), arrays["train"])
    np.testing.assert_array_equal(ds.valid_x.reshape(-1, 784), arrays["valid"])


def test_binarized_mnist_errors(amat_dir, tmp_path):
    root, arrays = amat_dir
    cfg = _data_config(source="binarized_mnist", data_dir=str(root))
    with pytest.raises(DataError, match="no data folder is set"):
        data.load_dataset(_data_config(source="binarized_mnist", data_dir=""))
    empty = tmp_path / "empty_root"
    empty.mkdir()
    with pytest.raises(DataError, match="empty_root/binarized_mnist .*does not exist"):
        data.load_dataset(_data_config(source="binarized_mnist", data_dir=str(empty)))

    gz = root / "binarized_mnist" / "binarized_mnist_test.amat.gz"
    text = _amat_text(arrays["test"])
    gz.write_bytes(gzip.compress(text)[:60])  # truncated gzip stream
    with pytest.raises(DataError, match="binarized_mnist_test.amat.gz is truncated or corrupt"):
        data.load_dataset(cfg)
    gz.write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="binarized_mnist_test.amat.gz is empty"):
        data.load_dataset(cfg)
    gz.write_bytes(
        gzip.compress(text[:-200])
    )  # a short last line (1568 - 200 characters, newline added)
    with pytest.raises(DataError, match=r"test.amat.gz: line 2 holds 1368 characters, not 1567"):
        data.load_dataset(cfg)
    crlf = text.replace(b"\n", b"\r\n")
    gz.write_bytes(gzip.compress(crlf))
    with pytest.raises(DataError, match="line 1 holds 1568 characters, not 1567"):
        data.load_dataset(cfg)
    bad = bytearray(text)
    bad[1568 + 2 * 9] = ord("2")  # line 2, value 10
    gz.write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataError, match=r"test.amat.gz: line 2, value 10 is '2', not '0' or '1'"):
        data.load_dataset(cfg)
    bad = bytearray(text)
    bad[5] = ord("\t")  # the third separator of line 1
    gz.write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataError, match=r"line 1, character 6 is '\\t' where a single space"):
        data.load_dataset(cfg)
    gz.unlink()
    with pytest.raises(
        DataError, match=r"binarized_mnist_test.amat.gz \(or .*test.amat\) does not"
    ):
        data.load_dataset(cfg)


def _write_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


@pytest.fixture
def npz_dir(tmp_path):
    """A 50-row tabular file, 4 features of very different scales, one constant; labels."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)) * np.array([1.0, 1e3, 1e-3, 0.0]) + np.array([0, 5e4, 0, 7.0])
    y = (rng.random(50) < 0.2).astype(np.int64)
    _write_npz(tmp_path / "tab" / "toy.npz", X=x, y=y)
    return tmp_path, x, y


def test_npz_split_sizes_labels_and_determinism(npz_dir):
    root, x, y = npz_dir
    raw = dict(source="npz", name="tab/toy", data_dir=str(root), standardize=False)
    ds = data.load_dataset(_data_config(**raw))
    assert ds.train_x.shape == (40, 4) and ds.test_x.shape == (10, 4)
    assert ds.train_x.dtype == ds.test_x.dtype == np.float32
    assert ds.train_y.dtype == np.int32 and ds.valid_x is None and ds.name == "tab/toy"
    # The split is a seeded permutation: train rows first, then test; together every row once.
    perm = np.random.default_rng(0).permutation(50)
    np.testing.assert_allclose(ds.train_x, x[perm[:40]].astype(np.float32))
    np.testing.assert_allclose(ds.test_x, x[perm[40:]].astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([ds.train_y, ds.test_y]), y[perm])
    # Same seed, same split (also when the name carries .npz); another seed, another split.
    again = data.load_dataset(_data_config(**{**raw, "name": "tab/toy.npz"}))
    np.testing.assert_array_equal(ds.test_x, again.test_x)
    other = data.load_dataset(_data_config(**raw, split_seed=3))
    assert not np.array_equal(ds.test_x, other.test_x)
    assert len(other.test_x) == 10


def test_npz_standardizes_with_train_statistics(npz_dir):
    root, x, _ = npz_dir
    ds = data.load_dataset(_data_config(source="npz", name="tab/toy", data_dir=str(root)))
    perm = np.random.default_rng(0).permutation(50)
    train, test = x[perm[:40]], x[perm[40:]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[3] = 1.0  # the constant feature is only centred
    np.testing.assert_allclose(ds.train_x, (train - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.test_x, (test - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.train_x[:, :3].std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(ds.train_x[:, 3], 0.0)


def test_npz_without_labels_and_integer_features(tmp_path):
    x = np.arange(30, dtype=np.int16).reshape(10, 3)
    _write_npz(tmp_path / "ints.npz", X=x)
    cfg = _data_config(source="npz", name="ints", data_dir=str(tmp_path), standardize=False)
    ds = data.load_dataset(cfg)
    assert ds.train_y is None and ds.test_y is None
    assert ds.train_x.shape == (8, 3) and ds.test_x.shape == (2, 3)
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train_x, ds.test_x]), 0), x)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"features": np.zeros((5, 2))}, r"bad.npz holds no array 'X' \(it holds 'features'\)"),
        ({"X": np.zeros(5)}, r"bad.npz: X has shape \(5,\), not \[N, D\]"),
        ({"X": np.zeros((5, 2, 2))}, r"X has shape \(5, 2, 2\), not \[N, D\]"),
        ({"X": np.zeros((5, 0))}, r"X has shape \(5, 0\), not \[N, D\] with D >= 1"),
        ({"X": np.full((5, 2), "a")}, "bad.npz: X holds <U1 values, not numbers"),
        ({"X": np.zeros((5, 2), complex)}, "X holds complex128 values, not numbers"),
        ({"X": np.array([[1.0, np.nan]] * 5)}, "bad.npz: X holds 5 NaN or Inf values"),
        ({"X": np.array([[1, "a"]] * 5, object)}, "array 'X' holds Python objects"),
        ({"X": np.zeros((5, 2)), "y": np.array([1, "a"], object)}, "array 'y' holds Python"),
        ({"X": np.zeros((5, 2)), "y": np.zeros(4)}, r"y has shape \(4,\) but X has 5 rows"),
        ({"X": np.zeros((5, 2)), "y": np.full(5, 0.5)}, "y holds float64 values, not int32"),
        ({"X": np.zeros((5, 2)), "y": np.full(5, 2**40)}, "y holds int64 values, not int32"),
        ({"X": np.zeros((2, 2))}, "bad.npz: 2 rows to split, too few for a 0.8 train fraction"),
    ],
)
def test_npz_content_errors(tmp_path, arrays, match):
    _write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=match):
        data.load_dataset(_data_config(source="npz", name="bad", data_dir=str(tmp_path)))


def test_npz_file_and_config_errors(npz_dir):
    root, x, _ = npz_dir
    cfg = _data_config(source="npz", name="tab/toy", data_dir=str(root))
    with pytest.raises(DataError, match="no data folder is set"):
        data.load_dataset(_data_config(source="npz", name="tab/toy", data_dir=""))
    with pytest.raises(DataError, match="config.data.name is empty: name the .npz file"):
        data.load_dataset(_data_config(source="npz", data_dir=str(root)))
    with pytest.raises(DataError, match="tab/nothere.npz does not exist"):
        data.load_dataset(_data_config(source="npz", name="tab/nothere", data_dir=str(root)))
    with pytest.raises(ConfigError, match="split_seed=-1 must be an integer >= 0"):
        data.load_dataset(
            _data_config(source="npz", name="tab/toy", data_dir=str(root), split_seed=-1)
        )

    path = root / "tab" / "toy.npz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # truncated: the zip directory is at the end
    with pytest.raises(DataError, match="toy.npz is truncated or corrupt"):
        data.load_dataset(cfg)
    np.savez_compressed(path, X=np.random.default_rng(0).random((200, 50)))
    damaged = bytearray(path.read_bytes())
    damaged[300:340] = bytes(40)  # inside the compressed member
    path.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="toy.npz: array 'X' is (truncated or )?corrupt"):
        data.load_dataset(cfg)
    np.save(root / "single.npy", x)
    os.replace(root / "single.npy", path)
    with pytest.raises(DataError, match="toy.npz is a single .npy array, not an .npz archive"):
        data.load_dataset(cfg)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"toy.npz is not an .npz \(zip\) archive"):
        data.load_dataset(cfg)


def test_feature_scale_constant_features():
    train = np.array([[1.0, 0.1], [3.0, 0.1], [5.0, 0.1]])
    mean, scale = data.feature_scale(train)
    np.testing.assert_allclose(mean, [3.0, 0.1])
    np.testing.assert_allclose(scale, [np.std([1.0, 3.0, 5.0]), 1.0])


def test_binarized_mnist_real_files(data_dir):
    if not os.path.isdir(os.path.join(data_dir, "binarized_mnist")):
        pytest.skip("binarized_mnist/ is not in the offline data folder")
    ds = data.load_dataset(_data_config(source="binarized_mnist", data_dir=data_dir))
    assert ds.train_x.shape == (50000, 28, 28, 1)
    assert ds.valid_x.shape == ds.test_x.shape == (10000, 28, 28, 1)
    assert set(np.unique(ds.test_x)) == {0.0, 1.0}
    # Mean pixel values published with the files (see shared/data/README.md).
    assert round(float(ds.train_x.mean()), 4) == 0.1306
    assert round(float(ds.valid_x.mean()), 4) == 0.1311
    assert round(float(ds.test_x.mean()), 4) == 0.1325


ADBENCH = {  # name: (rows, features, anomalies), from shared/data/README.md
    "16_http": (567498, 3, 2211),
    "34_smtp": (95156, 3, 30),
    "6_cardio": (1831, 21, 176),
    "38_thyroid": (3772, 6, 93),
    "2_annthyroid": (7200, 6, 534),
    "23_mammography": (11183, 6, 260),
    "32_shuttle": (49097, 9, 3511),
    "31_satimage-2": (5803, 36, 71),
}


@pytest.mark.parametrize("name", sorted(ADBENCH))
def test_adbench_real_files(data_dir, name):
    if not os.path.isdir(os.path.join(data_dir, "adbench_classical")):
        pytest.skip("adbench_classical/ is not in the offline data folder")
    rows, features, anomalies = ADBENCH[name]
    cfg = _data_config(source="npz", name=f"adbench_classical/{name}", data_dir=data_dir)
    ds = data.load_dataset(cfg)
    n_train = int(round(0.8 * rows))
    assert ds.train_x.shape == (n_train, features)
    assert ds.test_x.shape == (rows - n_train, features)
    assert int(ds.train_y.sum() + ds.test_y.sum()) == anomalies
    assert set(np.unique(ds.train_y)) <= {0, 1}


def test_npz_one_class_split_trains_on_normal_rows_and_tests_on_every_anomaly(npz_dir):
    root, x, y = npz_dir
    raw = dict(source="npz", name="tab/toy", data_dir=str(root), standardize=False)
    ds = data.load_dataset(_data_config(**raw, train_classes=(0,), train_fraction=0.7))
    normal = np.flatnonzero(y == 0)
    n_train = int(round(0.7 * len(normal)))
    assert len(ds.train_x) == n_train and np.all(ds.train_y == 0)
    assert np.sum(ds.test_y == 1) == np.sum(y == 1)  # every anomaly is scored
    assert np.sum(ds.test_y == 0) == len(normal) - n_train
    # Every row is in exactly one split.
    rows = np.concatenate([ds.train_x, ds.test_x])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x.astype(np.float32)))
    # The test rows come in a seeded random order, not held-out normals then anomalies: a
    # max_test cut as long as the held-out normals still keeps anomalies.
    cut = data.load_dataset(
        _data_config(**raw, train_classes=(0,), train_fraction=0.7, max_test=len(normal) - n_train)
    )
    assert 0 < np.sum(cut.test_y == 1) < len(cut.test_y)
    np.testing.assert_array_equal(cut.test_x, ds.test_x[: len(cut.test_x)])
    with pytest.raises(ConfigError, match="train_fraction=1.0 must be in"):
        data.load_dataset(_data_config(**raw, train_fraction=1.0))


def test_train_classes_and_valid_fraction_on_digits():
    full = data.load_dataset(_data_config())
    ds = data.load_dataset(_data_config(train_classes=(3, 5), valid_fraction=0.25))
    kept = np.isin(full.train_y, (3, 5))
    assert set(np.unique(ds.train_y)) == set(np.unique(ds.valid_y)) == {3, 5}
    assert len(ds.train_x) + len(ds.valid_x) == kept.sum()
    assert len(ds.valid_x) == round(0.25 * kept.sum())
    np.testing.assert_array_equal(ds.test_x, full.test_x)  # the test split is untouched
    # Train keeps its order; train and valid together are the kept examples.
    is_valid = np.zeros(kept.sum(), bool)
    is_valid[np.random.default_rng(0).permutation(kept.sum())[: len(ds.valid_x)]] = True
    np.testing.assert_array_equal(ds.train_x, full.train_x[kept][~is_valid])
    np.testing.assert_array_equal(ds.valid_x, full.train_x[kept][is_valid])
    with pytest.raises(DataError, match=r"no training examples labelled \[11\]"):
        data.load_dataset(_data_config(train_classes=(3, 11)))
    with pytest.raises(ConfigError, match="valid_fraction=1.5 must be in"):
        data.load_dataset(_data_config(valid_fraction=1.5))


def test_valid_fraction_is_refused_where_the_source_has_a_validation_split(amat_dir):
    root, _ = amat_dir
    cfg = _data_config(source="binarized_mnist", data_dir=str(root), valid_fraction=0.2)
    with pytest.raises(ConfigError, match="has its own validation split"):
        data.load_dataset(cfg)
    cfg = _data_config(source="binarized_mnist", data_dir=str(root), train_classes=(1,))
    with pytest.raises(DataError, match="has no labels"):
        data.load_dataset(cfg)
