"""Offline data sources. Each returns a `Dataset` of images in [0, 1], shaped [N, H, W, C].

- `digits`: scikit-learn's embedded 8x8 handwritten digits (no download).
- `idx`: a folder of MNIST-format IDX `.gz` files (MNIST, Fashion-MNIST).
"""

import dataclasses
import gzip
import os
import zlib

import numpy as np

from aejax.errors import DataError


@dataclasses.dataclass(frozen=True)
class Dataset:
    """In-memory train and test splits.

    Attributes:
      train_x, test_x: float32 [N, *example_shape], values in [0, 1] for images.
      train_y, test_y: int32 [N] labels, or None when the source has none.
      name: a short description for logs.
    """

    train_x: np.ndarray
    train_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None
    name: str

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


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


IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (optionally gzipped) into a numpy array of its stored shape.

    The header is big-endian: two zero bytes, a dtype code (0x08 = uint8), the number of
    dimensions, then one uint32 size per dimension. Raises DataError on a missing, truncated
    or malformed file.
    """
    if not os.path.isfile(path):
        raise DataError(f"data file {path} does not exist")
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"data file {path} is truncated or corrupt: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"data file {path} is not an IDX file of uint8 (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"data file {path} has a malformed IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"data file {path} holds {len(raw)} bytes but its header {shape} needs {expected}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_idx(cfg) -> Dataset:
    """MNIST-format IDX files from `{data_dir}/{name}/`: 28x28x1 images in [0, 1], labels."""
    if not cfg.data_dir:
        raise DataError(
            "config.data.data_dir is empty: set it, or the AEJAX_DATA_DIR environment variable, "
            "to the folder that holds the IDX dataset folders"
        )
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
