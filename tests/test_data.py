import gzip
import struct

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


def _write_idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    """A tiny MNIST-format dataset: 6 train and 3 test images of 4x5 pixels."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "tiny"
    folder.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 4, 5)),
        "train-labels-idx1-ubyte.gz": np.arange(6) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 4, 5)),
        "t10k-labels-idx1-ubyte.gz": np.arange(3),
    }
    for name, array in arrays.items():
        _write_idx(folder / name, array)
    return tmp_path, arrays


def test_digits_source():
    ds = data.load_dataset(_data_config(source="digits"))
    assert ds.train_x.shape == (1438, 8, 8, 1) and ds.test_x.shape == (359, 8, 8, 1)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32
    assert ds.train_x.min() == 0.0 and ds.train_x.max() == 1.0
    assert set(np.unique(ds.test_y)) == set(range(10))
    again = data.load_dataset(_data_config(source="digits"))
    np.testing.assert_array_equal(ds.test_x, again.test_x)  # a fixed split


def test_idx_source_reads_and_scales(idx_dir):
    root, arrays = idx_dir
    ds = data.load_dataset(_data_config(source="idx", name="tiny", data_dir=str(root)))
    assert ds.train_x.shape == (6, 4, 5, 1) and ds.test_x.shape == (3, 4, 5, 1)
    expected = arrays["train-images-idx3-ubyte.gz"][..., None] / 255.0
    np.testing.assert_allclose(ds.train_x, expected, rtol=1e-6)
    np.testing.assert_array_equal(ds.test_y, [0, 1, 2])


def test_max_train_and_max_test(idx_dir):
    root, _ = idx_dir
    cfg = _data_config(source="idx", name="tiny", data_dir=str(root), max_train=4, max_test=2)
    ds = data.load_dataset(cfg)
    assert len(ds.train_x) == 4 and len(ds.train_y) == 4 and len(ds.test_x) == 2


def test_idx_errors(idx_dir, tmp_path):
    root, _ = idx_dir
    cfg = _data_config(source="idx", name="tiny", data_dir=str(root))
    with pytest.raises(DataError, match="no data folder is set"):
        data.load_dataset(_data_config(source="idx", name="tiny", data_dir=""))
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset(_data_config(source="idx", name="nothere", data_dir=str(root)))
    path = root / "tiny" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.open(path).read()
    path.write_bytes(gzip.compress(raw[:-7]))  # truncated payload
    with pytest.raises(DataError, match="t10k-images.* holds .* bytes but its header"):
        data.load_dataset(cfg)
    path.write_bytes(gzip.compress(raw)[:40])  # truncated gzip stream
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_dataset(cfg)
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]))  # float32 magic
    with pytest.raises(DataError, match="bad magic number"):
        data.load_dataset(cfg)
    # Sizes whose product overflows 64 bits (2^93 bytes): read as a size mismatch.
    huge = b"\x00\x00\x08\x03" + (2**31).to_bytes(4, "big") * 3
    path.write_bytes(gzip.compress(huge + raw[16:]))
    with pytest.raises(DataError, match=r"header \(2147483648, .* needs 9903520314283042199"):
        data.load_dataset(cfg)
    _write_idx(path, np.zeros((3, 4, 5)))
    _write_idx(root / "tiny" / "t10k-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(DataError, match="2,.* labels for 3 images"):
        data.load_dataset(cfg)


def test_empty_split_and_non_finite_values(monkeypatch):
    digits = data.SOURCES["digits"]

    def with_nan(cfg):
        ds = digits(cfg)
        ds.train_x[3, 0, 0, 0] = np.nan
        return ds

    monkeypatch.setitem(data.SOURCES, "nan", with_nan)
    with pytest.raises(DataError, match="train split holds NaN or Inf"):
        data.load_dataset(_data_config(source="nan"))
    empty = lambda cfg: data.Dataset(np.zeros((0, 2)), None, np.zeros((1, 2)), None, "empty")
    monkeypatch.setitem(data.SOURCES, "empty", empty)
    with pytest.raises(DataError, match="'empty': the train split is empty"):
        data.load_dataset(_data_config(source="empty"))


def test_unknown_source_and_negative_limit():
    with pytest.raises(ConfigError, match="config.data.source='tfrecord' is not a known data"):
        data.load_dataset(_data_config(source="tfrecord"))
    with pytest.raises(ConfigError, match="max_train=-1 must be >= 0"):
        data.load_dataset(_data_config(max_train=-1))


def test_mnist_idx_files(data_dir):
    ds = data.load_dataset(_data_config(source="idx", name="mnist", data_dir=data_dir))
    assert ds.train_x.shape == (60000, 28, 28, 1) and ds.test_x.shape == (10000, 28, 28, 1)
    assert ds.train_x.dtype == np.float32
    assert ds.train_x.min() == 0.0 and ds.train_x.max() == 1.0
    # Per-class counts published with the dataset (see shared/data/README.md).
    assert np.bincount(ds.test_y).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_batch_order_is_a_function_of_seed_and_step():
    n, b = 103, 10
    spe = data.steps_per_epoch(n, b)
    assert spe == 10
    whole = data.batch_indices(7, 0, 25, n, b)
    assert whole.shape == (25, 10) and whole.dtype == np.int32
    # Any window of steps equals the same rows of the whole sequence (resume-safe).
    np.testing.assert_array_equal(data.batch_indices(7, 13, 5, n, b), whole[13:18])
    # Within an epoch every example appears at most once; epochs are reshuffled.
    first = whole[:spe].ravel()
    assert len(set(first.tolist())) == spe * b
    assert not np.array_equal(whole[:spe], whole[spe : 2 * spe])
    assert not np.array_equal(whole, data.batch_indices(8, 0, 25, n, b))
    np.testing.assert_array_equal(whole, data.batch_indices(7, 0, 25, n, b))
