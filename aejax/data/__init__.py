"""Data sources (a plain dict of loaders) and batching."""

import dataclasses
from collections.abc import Callable

import numpy as np

from aejax.data.photos import load_color_patches
from aejax.data.pipeline import batch_indices, epoch_permutation, map_batches, steps_per_epoch
from aejax.data.semisup import load_partly_labelled, load_split_npz
from aejax.data.sources import (
    Dataset,
    check_split_seed,
    feature_scale,
    load_binarized_mnist,
    load_digits,
    load_idx,
    load_npz,
    read_amat,
    read_idx,
    read_npz,
)
from aejax.data.sprites import load_sprites
from aejax.data.tfds_source import load_tfds
from aejax.errors import ConfigError, DataError
from aejax.registry import add, resolve

__all__ = [
    "SOURCES",
    "register_source",
    "Dataset",
    "batch_indices",
    "epoch_permutation",
    "feature_scale",
    "load_dataset",
    "map_batches",
    "read_amat",
    "read_idx",
    "read_npz",
    "steps_per_epoch",
]

SOURCES: dict[str, Callable[..., Dataset]] = {
    "tfds": load_tfds,
    "digits": load_digits,
    "idx": load_idx,
    "binarized_mnist": load_binarized_mnist,
    "npz": load_npz,
    "sprites": load_sprites,
    "color_patches": load_color_patches,
    "partly_labelled": load_partly_labelled,  # semi-supervised (aejax.data.semisup)
    "split_npz": load_split_npz,  # a fixed split of computed features (M1's codes)
}


def register_source(name: str, loader: Callable[..., Dataset] | None = None):
    """Adds a data source: `loader(cfg) -> Dataset`, cfg being `config.data` (also as a
    decorator). Configs then name it in `config.data.source`; `module:function` names a
    loader in your own code without registering it. `load_dataset` checks what it returns."""
    return (
        (lambda f: add(SOURCES, name, f, "data source"))
        if loader is None
        else add(SOURCES, name, loader, "data source")
    )


def _limit(x, y, n: int):
    return (x[:n], None if y is None else y[:n]) if n > 0 else (x, y)


def _keep_classes(name: str, x, y, classes: tuple):
    """The examples of x, y whose label is in `classes` (all of them when it is empty)."""
    if not classes:
        return x, y
    if y is None:
        raise DataError(
            f"dataset {name!r} has no labels, so config.data.train_classes cannot apply"
        )
    keep = np.isin(y, classes)
    missing = sorted(set(classes) - set(np.unique(y[keep]).tolist()))
    if missing:
        raise DataError(
            f"config.data.train_classes={classes}: dataset {name!r} has no training examples "
            f"labelled {missing}"
        )
    return x[keep], y[keep]


def _carve_valid(x, y, fraction: float, seed: int):
    """Splits off round(fraction·N) examples at random (seeded) as validation; the training
    examples keep their order. Returns (train_x, train_y, valid_x, valid_y)."""
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ConfigError(f"config.data.valid_fraction={fraction!r} must be in [0, 1)")
    check_split_seed(seed)
    n_valid = int(round(fraction * len(x)))
    if n_valid in (0, len(x)):
        raise ConfigError(
            f"config.data.valid_fraction={fraction} of {len(x)} training examples leaves an "
            "empty split"
        )
    is_valid = np.zeros(len(x), bool)
    is_valid[np.random.default_rng(seed).permutation(len(x))[:n_valid]] = True
    take = lambda a, m: None if a is None else a[m]
    return take(x, ~is_valid), take(y, ~is_valid), take(x, is_valid), take(y, is_valid)


def load_dataset(cfg) -> Dataset:
    """Loads `config.data`: the source, optional size limits, and sanity checks.

    Args:
      cfg: `config.data` with fields source, name, data_dir, max_train, max_test.
    Returns:
      A Dataset whose arrays are float32, finite and non-empty. A validation split (where
      the source has one) is checked like the others but not shortened by max_test.
    """
    loader = resolve(SOURCES, cfg.source, what="data source", where="config.data.source")
    for field in ("max_train", "max_test"):
        if cfg[field] < 0:
            raise ConfigError(f"config.data.{field}={cfg[field]} must be >= 0 (0 means all)")
    ds = loader(cfg)
    if cfg.get("stream") and isinstance(ds, Dataset) and ds.train_x is not None:
        raise ConfigError(
            f"config.data.stream=True: config.data.source={cfg.source!r} loads its train "
            "split into memory and cannot stream it (the tfds source can)"
        )
    if not isinstance(ds, Dataset):
        raise DataError(
            f"config.data.source={cfg.source!r} returned a {type(ds).__name__}, not an "
            "aejax.data.Dataset"
        )
    test_x, test_y = _limit(ds.test_x, ds.test_y, cfg.max_test)
    if ds.train_x is None:  # streamed: examples are checked as they are decoded
        for field in ("max_train", "train_classes", "valid_fraction"):
            if cfg[field]:
                raise ConfigError(
                    f"config.data.{field}={cfg[field]!r} does not apply to a streamed train "
                    "split; leave it unset"
                )
        return dataclasses.replace(ds, test_x=test_x.astype(np.float32), test_y=test_y)
    train_x, train_y = _limit(ds.train_x, ds.train_y, cfg.max_train)
    train_x, train_y = _keep_classes(ds.name, train_x, train_y, tuple(cfg.train_classes))
    valid_x, valid_y = ds.valid_x, ds.valid_y
    if cfg.valid_fraction:
        if valid_x is not None:
            raise ConfigError(
                f"config.data.valid_fraction={cfg.valid_fraction}: dataset {ds.name!r} has its "
                "own validation split; set it to 0"
            )
        train_x, train_y, valid_x, valid_y = _carve_valid(
            train_x, train_y, cfg.valid_fraction, cfg.split_seed
        )
    splits = [("train", train_x), ("test", test_x)]
    if valid_x is not None:
        splits.append(("valid", valid_x))
    for split, x in splits:
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise DataError(
                f"dataset {ds.name!r}: the {split} split holds {x.dtype} values, not numbers"
            )
        if len(x) == 0:
            raise DataError(f"dataset {ds.name!r}: the {split} split is empty")
        if not np.all(np.isfinite(x)):
            raise DataError(f"dataset {ds.name!r}: the {split} split holds NaN or Inf values")
    for split, x in splits[1:]:
        if x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"dataset {ds.name!r}: train examples have shape {train_x.shape[1:]} but "
                f"{split} examples {x.shape[1:]}"
            )
    valid_x = None if valid_x is None else valid_x.astype(np.float32)
    return Dataset(
        train_x.astype(np.float32),
        train_y,
        test_x.astype(np.float32),
        test_y,
        ds.name,
        valid_x=valid_x,
        valid_y=valid_y,
    )
