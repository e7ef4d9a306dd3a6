"""Offline data sources. Each is a pure function of `config.data` that returns a `Dataset`:
images in [0, 1] shaped [N, H, W, C], or tabular vectors shaped [N, D].

- `digits`: scikit-learn's embedded 8x8 handwritten digits (no download).
- `idx`: a folder of MNIST-format IDX `.gz` files (MNIST, Fashion-MNIST).
- `binarized_mnist`: Larochelle & Murray's fixed binarization of MNIST (`.amat` text).
- `npz`: a tabular `.npz` file with a feature matrix `X` and optional labels `y` (ADBench).
"""

import dataclasses
import gzip
import math
import os
import zipfile
import zlib
from typing import Any

import numpy as np

from aejax.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class Dataset:
    """In-memory train and test splits, and a validation split where the source has one.

    Attributes:
      train_x, test_x: float32 [N, *example_shape], values in [0, 1] for images.
      train_y, test_y: int32 [N] labels, or None when the source has none.
      name: a short description for logs.
      valid_x, valid_y: a validation split, shaped like train_x / train_y, or None: the
        source's own (`binarized_mnist`), or one carved from the training split by
        `config.data.valid_fraction` (`load_dataset`). The trainer evaluates on it and logs
        `valid/*`.
      train_source: for a streamed train split (`config.data.stream`), its random-access
        source of examples, read through grain (`aejax.data.tfds_source.TfdsStream`); then
        train_x and train_y are None.
    """

    train_x: np.ndarray
    train_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None
    name: str
    valid_x: np.ndarray | None = None
    valid_y: np.ndarray | None = None
    train_source: Any = None

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.test_x.shape[1:])

    @property
    def num_train(self) -> int:
        """The number of training examples (in memory or streamed)."""
        return len(self.train_x) if self.train_x is not None else len(self.train_source)


def load_digits(cfg) -> Dataset:
    """scikit-learn's 1797 handwritten digits, 8x8x1, scaled from 0..16 to [0, 1].

    The split is fixed (a permutation seeded with 0, the last 20% as test: 1438 / 359), so it
    does not move with the experiment's seed.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int32)
    perm = np.random.default_rng(0).permutation(len(x))
    n_train = int(round(0.8 * len(x)))
    tr, te = perm[:n_train], perm[n_train:]
    return Dataset(x[tr], y[tr], x[te], y[te], "digits")


# How the IDX folders under DATA_DIR read in messages.
IDX_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_bytes(path: str) -> bytes:
    """The contents of `path`, gunzipped when it ends in `.gz`. Raises DataError naming the
    file when it is missing, truncated or corrupt."""
    if not os.path.isfile(path):
        raise DataError(f"data file {path} does not exist")
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"data file {path} is truncated or corrupt: {e}") from None


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (optionally gzipped) into a numpy array of its stored shape.

    The header is big-endian: two zero bytes, a dtype code (0x08 = uint8), the number of
    dimensions, then one uint32 size per dimension. Raises DataError on a missing, truncated
    or malformed file.
    """
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"data file {path} is not an IDX file of uint8 (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"data file {path} has a malformed IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + math.prod(shape)  # Python ints: a forged header cannot overflow
    if len(raw) != expected:
        raise DataError(
            f"data file {path} holds {len(raw)} bytes but its header {shape} needs {expected}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _data_dir(cfg, needs: str) -> str:
    """`config.data.data_dir`, or a DataError naming the data the run `needs` (where, under
    DATA_DIR) and how to set it when it is empty."""
    if not cfg.data_dir:
        raise DataError(
            f"data source {cfg.source!r} needs {needs}, but no data folder is set "
            "(set AEJAX_DATA_DIR or --config.data.data_dir)"
        )
    return cfg.data_dir


def load_idx(cfg) -> Dataset:
    """MNIST-format IDX files from `{data_dir}/{name}/`: 28x28x1 images in [0, 1], labels."""
    name = cfg.name or "NAME"
    _data_dir(cfg, f"the IDX files of {IDX_NAMES.get(name, name)} in DATA_DIR/{name}")
    if not cfg.name:
        raise DataError("config.data.name is empty: name the folder under data_dir (e.g. mnist)")
    folder = os.path.join(cfg.data_dir, cfg.name)
    if not os.path.isdir(folder):
        raise DataError(f"config.data: folder {folder} (data_dir/name) does not exist")
    splits = {}
    for split, (images_file, labels_file) in IDX_FILES.items():
        images_path = os.path.join(folder, images_file)
        labels_path = os.path.join(folder, labels_file)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3:
            raise DataError(f"data file {images_path} holds shape {images.shape}, not [N, H, W]")
        if labels.shape != images.shape[:1]:
            raise DataError(
                f"{labels_path} holds {labels.shape} labels for {images.shape[0]} images"
            )
        splits[split] = (images[..., None].astype(np.float32) / 255.0, labels.astype(np.int32))
    return Dataset(*splits["train"], *splits["test"], cfg.name)


AMAT_VALUES = 784  # 28 * 28 pixels a line
AMAT_LINE = 2 * AMAT_VALUES  # each value is followed by a space, the last one by '\n'
_ZERO, _SPACE, _NEWLINE = ord("0"), ord(" "), ord("\n")


def read_amat(path: str) -> np.ndarray:
    """Reads a binarized-MNIST `.amat` text file (optionally gzipped) into uint8 [N, 784].

    Each line is 784 values '0'/'1' separated by single spaces, ending in a newline (1568
    bytes), as in Larochelle & Murray (2011). The whole file is parsed with one `frombuffer`
    (a second or so for the 50000 training lines, where `np.loadtxt` takes a minute); a
    missing final newline is tolerated. Raises DataError naming the file, and the first bad
    line, on a missing, truncated or malformed file.
    """
    raw = np.frombuffer(read_bytes(path), np.uint8)
    if raw.size == 0:
        raise DataError(f"data file {path} is empty")
    if raw[-1] != _NEWLINE:
        raw = np.append(raw, np.uint8(_NEWLINE))
    if raw.size % AMAT_LINE or np.any(raw[AMAT_LINE - 1 :: AMAT_LINE] != _NEWLINE):
        ends = np.flatnonzero(raw == _NEWLINE)
        lengths = np.diff(ends, prepend=-1) - 1  # characters before each '\n'
        line = int(np.flatnonzero(lengths != AMAT_LINE - 1)[0])
        raise DataError(
            f"data file {path}: line {line + 1} holds {lengths[line]} characters, not "
            f"{AMAT_LINE - 1} ({AMAT_VALUES} values '0'/'1' separated by single spaces)"
        )
    lines = raw.reshape(-1, AMAT_LINE)
    values = lines[:, 0::2] - np.uint8(_ZERO)  # '0' -> 0, '1' -> 1; anything else wraps > 1
    if np.any(values > 1):
        line, col = (int(i[0]) for i in np.nonzero(values > 1))
        char = chr(lines[line, 2 * col])
        raise DataError(
            f"data file {path}: line {line + 1}, value {col + 1} is {char!r}, not '0' or '1'"
        )
    if np.any(lines[:, 1 : AMAT_LINE - 1 : 2] != _SPACE):
        line, col = (int(i[0]) for i in np.nonzero(lines[:, 1 : AMAT_LINE - 1 : 2] != _SPACE))
        char = chr(lines[line, 2 * col + 1])
        raise DataError(
            f"data file {path}: line {line + 1}, character {2 * col + 2} is {char!r} where a "
            "single space should separate two values"
        )
    return values


BINARIZED_MNIST_SPLITS = ("train", "valid", "test")


def _amat_path(folder: str, split: str) -> str:
    """`binarized_mnist_{split}.amat.gz` in `folder`, else the plain `.amat`."""
    plain = os.path.join(folder, f"binarized_mnist_{split}.amat")
    for path in (plain + ".gz", plain):
        if os.path.isfile(path):
            return path
    raise DataError(f"data file {plain}.gz (or {os.path.basename(plain)}) does not exist")


def load_binarized_mnist(cfg) -> Dataset:
    """Larochelle & Murray's binarized MNIST from `{data_dir}/binarized_mnist/`.

    Reads `binarized_mnist_{train,valid,test}.amat.gz` (or the plain `.amat`) into images
    float32 [N, 28, 28, 1] with values in {0, 1}: 50000 train, 10000 valid (as
    `Dataset.valid_x`), 10000 test. The split and the binarization are the fixed published
    ones (Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS
    2011), so likelihoods compare across papers. There are no labels. `config.data.name` is
    not used.
    """
    needs = "binarized MNIST's .amat files in DATA_DIR/binarized_mnist"
    folder = os.path.join(_data_dir(cfg, needs), "binarized_mnist")
    if not os.path.isdir(folder):
        raise DataError(f"config.data: folder {folder} (data_dir/binarized_mnist) does not exist")
    paths = {split: _amat_path(folder, split) for split in BINARIZED_MNIST_SPLITS}
    x = {
        split: read_amat(path).reshape(-1, 28, 28, 1).astype(np.float32)
        for split, path in paths.items()
    }
    return Dataset(x["train"], None, x["test"], None, "binarized_mnist", valid_x=x["valid"])


TRAIN_FRACTION = 0.8


def _npz_member(archive, path: str, key: str) -> np.ndarray:
    """One array of an open `.npz`, with a DataError for object arrays and corrupt members."""
    try:
        return archive[key]
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(
                f"data file {path}: array {key!r} holds Python objects (dtype object), which "
                "are not loaded without pickle; save it as a numeric array"
            ) from None
        raise DataError(f"data file {path}: array {key!r} is corrupt: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"data file {path}: array {key!r} is truncated or corrupt: {e}") from None


def read_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads features `X` [N, D] (bool, int or float) and optional labels `y` [N] from `path`.

    Loads with `allow_pickle=False`, so a file cannot run code. Returns X as stored and y as
    int32 (None when absent). Raises DataError naming the file on anything else: a missing
    or corrupt archive, no `X`, X not 2-D or not numeric, NaN/Inf in X, object arrays, or a
    `y` that is not one integer label per row of X.
    """
    if not os.path.isfile(path):
        raise DataError(f"data file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise DataError(f"data file {path} is a single .npy array, not an .npz archive of X, y")
    if not magic.startswith(b"PK"):
        raise DataError(f"data file {path} is not an .npz (zip) archive")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"data file {path} is truncated or corrupt: {e}") from None
    with archive:
        if "X" not in archive.files:
            held = ", ".join(repr(k) for k in archive.files) or "nothing"
            raise DataError(f"data file {path} holds no array 'X' (it holds {held})")
        x = _npz_member(archive, path, "X")
        y = _npz_member(archive, path, "y") if "y" in archive.files else None
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataError(f"data file {path}: X has shape {x.shape}, not [N, D] with D >= 1")
    if x.dtype.kind not in "biuf":
        raise DataError(f"data file {path}: X holds {x.dtype} values, not numbers")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise DataError(f"data file {path}: X holds {bad} NaN or Inf values")
    if y is None:
        return x, None
    if y.shape != x.shape[:1]:
        raise DataError(
            f"data file {path}: y has shape {y.shape} but X has {len(x)} rows; y needs "
            f"shape ({len(x)},)"
        )
    integral = y.dtype.kind in "biu" or (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )
    info = np.iinfo(np.int32)
    if not integral or (y.size and (y.min() < info.min or y.max() > info.max)):
        raise DataError(f"data file {path}: y holds {y.dtype} values, not int32 labels")
    return x, y.astype(np.int32)


def feature_scale(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of train_x [N, D], both float64 [D].

    A feature that is constant on the train split gets scale 1 (it is only centred), so no
    division by zero, nor by a rounding-error std, happens.
    """
    train_x = np.asarray(train_x, np.float64)
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    return mean, np.where(np.ptp(train_x, axis=0) == 0, 1.0, std)


def check_split_seed(seed) -> None:
    """Raises ConfigError unless `config.data.split_seed` is an integer >= 0."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"config.data.split_seed={seed!r} must be an integer >= 0")


def load_npz(cfg) -> Dataset:
    """Tabular data from `{data_dir}/{name}.npz`: feature vectors float32 [N, D], labels.

    `config.data.name` is the path under data_dir without (or with) `.npz`, e.g.
    `adbench_classical/6_cardio`. The rows are split at random: the rounded
    `config.data.train_fraction` (default 0.8) of them first in a permutation seeded with
    `config.data.split_seed` go to train, the rest to test, so the split is fixed for a given
    file and seed, and independent of `config.seed`.

    With `config.data.train_classes` (e.g. (0,), the normal rows of an ADBench set) the split
    is one-class: only the rows of those labels are split, and every other row (the
    anomalies) goes to test. This is the usual protocol for unsupervised anomaly detection:
    fit on normal data only, score held-out normal rows and all anomalies.

    The values are not scaled to [0, 1]. With `config.data.standardize` (the default) each
    feature is z-scored with the train split's mean and std (constant features only centred):
    tabular features differ in scale by orders of magnitude (counts, bytes, ratios), and
    unscaled, the largest would dominate a squared-error reconstruction. Pair it with a
    linear output (`config.model.output_activation=linear`) and `mse`. The test split is
    scaled with the train statistics, never its own. Labels `y` (int32, e.g. 1 = anomaly in
    ADBench) are kept when the file has them, else None.
    """
    shown = (cfg.name or "NAME").removesuffix(".npz")
    data_dir = _data_dir(cfg, f"the file DATA_DIR/{shown}.npz")
    if not cfg.name:
        raise DataError(
            "config.data.name is empty: name the .npz file under data_dir "
            "(e.g. adbench_classical/6_cardio)"
        )
    seed, standardize = cfg.split_seed, cfg.standardize
    fraction = cfg.get("train_fraction", TRAIN_FRACTION)
    check_split_seed(seed)
    if not isinstance(standardize, bool):
        raise ConfigError(f"config.data.standardize={standardize!r} must be True or False")
    if not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"config.data.train_fraction={fraction!r} must be in (0, 1)")
    stem = cfg.name[: -len(".npz")] if cfg.name.endswith(".npz") else cfg.name
    path = os.path.join(data_dir, stem + ".npz")
    x, y = read_npz(path)
    classes = tuple(cfg.get("train_classes", ()))
    if classes and y is None:
        raise DataError(
            f"data file {path} has no labels y, so config.data.train_classes cannot apply"
        )
    pool = np.flatnonzero(np.isin(y, classes)) if classes else np.arange(len(x))
    n_train = int(round(fraction * len(pool)))
    if n_train in (0, len(pool)):
        raise DataError(
            f"data file {path}: {len(pool)} rows to split, too few for a {fraction:g} train "
            "fraction"
        )
    rng = np.random.default_rng(seed)
    perm = pool[rng.permutation(len(pool))]
    tr = perm[:n_train]
    te = np.concatenate([perm[n_train:], np.setdiff1d(np.arange(len(x)), pool)])
    if classes:  # held-out normals, then anomalies in file order: shuffle them (seeded), so
        te = rng.permutation(te)  # that a `max_test` cut keeps a random share of both
    train_x, test_x = x[tr].astype(np.float64), x[te].astype(np.float64)
    if standardize:
        mean, scale = feature_scale(train_x)
        train_x, test_x = (train_x - mean) / scale, (test_x - mean) / scale
    train_y, test_y = (None, None) if y is None else (y[tr], y[te])
    return Dataset(train_x.astype(np.float32), train_y, test_x.astype(np.float32), test_y, stem)
