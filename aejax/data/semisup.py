"""Partly labelled data for semi-supervised learning (Kingma, Rezende, Mohamed & Welling,
2014, "Semi-Supervised Learning with Deep Generative Models").

The trainer hands loss terms the batch x and nothing else, so a label that is known for
some examples travels inside x: the source "partly_labelled" flattens each example of a
base source and appends K features, the one-hot label for the few labelled training
examples and zeros for every other one (the other training examples, the validation and
the test split). A model reads the last K features as a partly observed variable
(`aejax.models.m2`); its terms tell labelled rows from unlabelled ones by whether those
features sum to 1 or to 0 (`aejax.losses.semisup`).

The split is a pure function of the training labels and `config.data.label_seed`
(`label_split`): `num_valid` random training examples are held out as a labelled
validation split (they are labels too, so keep it small), then `num_labels` examples,
the same number of each class, are drawn from the rest as the labelled ones. Labelled
examples are rare in a batch (100 of 50,000); Kingma et al.'s code puts labelled examples
in every minibatch, so the source repeats each labelled example until they make up
`labelled_fraction` of the training rows.

config.data fields read here (besides the base source's): base_source, num_labels,
num_valid, label_seed, labelled_fraction; max_train is applied to the base's training
split before the draw.
"""

import os

import numpy as np

from aejax.data.sources import Dataset
from aejax.errors import ConfigError, DataError
from aejax.registry import resolve

SOURCE = "partly_labelled"
# The fields this source reads from config.data, with defaults (a config sets them).
FIELDS = {
    "base_source": "idx",
    "num_labels": 100,
    "num_valid": 1000,
    "label_seed": 0,
    "labelled_fraction": 0.5,
}


def _int_field(cfg, name: str, low: int) -> int:
    value = cfg.get(name, FIELDS[name])
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"config.data.{name}={value!r} must be an integer >= {low}")
    return value


def label_split(
    y: np.ndarray, num_labels: int, num_valid: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which training examples are validation, which are labelled.

    Args:
      y: int [N] labels of the training split, classes 0..K-1 all present.
      num_labels: labelled examples to draw, a multiple of K (num_labels / K per class).
      num_valid: examples held out as validation first (drawn at random).
      seed: the seed of both draws.
    Returns:
      (train_idx, valid_idx, labelled): indices into y of the training rows (in their
      original order) and of the validation rows, and a bool [len(train_idx)] mask of the
      labelled training rows.
    Raises:
      DataError when a class has too few examples left; ConfigError for a num_labels
      that is not a multiple of K.
    """
    y = np.asarray(y)
    num_classes = int(y.max()) + 1
    if num_labels % num_classes:
        raise ConfigError(
            f"config.data.num_labels={num_labels} must be a multiple of the {num_classes} "
            "classes (the labelled examples are class-balanced)"
        )
    if num_valid >= len(y):
        raise DataError(
            f"config.data.num_valid={num_valid} leaves no training examples of {len(y)}"
        )
    rng = np.random.default_rng(seed)
    is_valid = np.zeros(len(y), bool)
    is_valid[rng.permutation(len(y))[:num_valid]] = True
    train_idx, valid_idx = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
    per_class = num_labels // num_classes
    labelled = np.zeros(len(train_idx), bool)
    for c in range(num_classes):
        rows = np.flatnonzero(y[train_idx] == c)
        if len(rows) < per_class:
            raise DataError(
                f"config.data.num_labels={num_labels}: class {c} has {len(rows)} training "
                f"examples, fewer than the {per_class} to label"
            )
        labelled[rng.choice(rows, per_class, replace=False)] = True
    return train_idx, valid_idx, labelled


def with_labels(x: np.ndarray, y: np.ndarray, labelled: np.ndarray, num_classes: int):
    """Flattened examples with the partly observed label appended.

    Args:
      x: [N, ...] examples; y: int [N] labels; labelled: bool [N].
    Returns:
      float32 [N, D + K]: x flattened, then one-hot(y) where labelled, zeros elsewhere.
    """
    flat = np.asarray(x, np.float32).reshape(len(x), -1)
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(y)] * labelled[:, None]
    return np.concatenate([flat, onehot], axis=1)


def observed_labels(x: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The label part of partly labelled examples x [N, D + K]: (labelled bool [N], the
    label int [N], -1 where unlabelled)."""
    part = np.asarray(x)[:, -num_classes:]
    labelled = part.sum(axis=1) > 0.5
    return labelled, np.where(labelled, part.argmax(axis=1), -1)


def repeats(num_labelled: int, num_unlabelled: int, fraction: float) -> int:
    """How many times each labelled row appears so that labelled rows make up about
    `fraction` of the training rows (at least once; 0 < fraction < 1)."""
    return max(1, int(round(fraction / (1 - fraction) * num_unlabelled / num_labelled)))


def load_partly_labelled(cfg) -> Dataset:
    """The "partly_labelled" source: `config.data.base_source`'s splits, flattened, with
    the label part appended (see the module's docstring).

    Returns:
      A Dataset of float32 [N, D + K] examples: train (the labelled rows repeated,
      train_y None: the labels the run may use are those in x), valid (num_valid rows,
      label part zero, valid_y their labels) and test (label part zero, test_y).
    """
    from aejax.data import SOURCES  # the package's registry (it imports this module)

    base = cfg.get("base_source", FIELDS["base_source"])
    if base == SOURCE:
        raise ConfigError(f"config.data.base_source={base!r} must name another source")
    loader = resolve(SOURCES, base, what="data source", where="config.data.base_source")
    for field in ("valid_fraction", "train_classes", "stream"):
        if cfg.get(field):
            raise ConfigError(
                f"config.data.{field}={cfg[field]!r} does not apply to the "
                f"{SOURCE!r} source (it holds out num_valid examples itself); leave it unset"
            )
    num_labels = _int_field(cfg, "num_labels", 1)
    num_valid = _int_field(cfg, "num_valid", 1)
    seed = _int_field(cfg, "label_seed", 0)
    fraction = cfg.get("labelled_fraction", FIELDS["labelled_fraction"])
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"config.data.labelled_fraction={fraction!r} must be a number in [0, 1)")
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"config.data.labelled_fraction={fraction!r} must be in [0, 1)")
    ds = loader(cfg)
    if not isinstance(ds, Dataset) or ds.train_x is None:
        raise DataError(f"config.data.base_source={base!r} gave no in-memory training split")
    if ds.train_y is None or ds.test_y is None:
        raise DataError(f"config.data.base_source={base!r} has no labels to draw from")
    if ds.valid_x is not None:
        raise DataError(
            f"config.data.base_source={base!r} has its own validation split; the "
            f"{SOURCE!r} source holds out num_valid training examples instead"
        )
    x, y = ds.train_x, ds.train_y
    if cfg.get("max_train"):
        x, y = x[: cfg.max_train], y[: cfg.max_train]
    if y.min() < 0:
        raise DataError(f"config.data.base_source={base!r} has negative labels")
    num_classes = int(max(y.max(), ds.test_y.max())) + 1
    if num_labels + num_valid > len(y):
        raise ConfigError(
            f"config.data.num_labels={num_labels} + num_valid={num_valid} exceed the "
            f"{len(y)} training examples"
        )
    train_idx, valid_idx, labelled = label_split(y, num_labels, num_valid, seed)
    train = with_labels(x[train_idx], y[train_idx], labelled, num_classes)
    if fraction > 0:
        extra = repeats(int(labelled.sum()), int((~labelled).sum()), fraction) - 1
        train = np.concatenate([train, *([train[labelled]] * extra)])
    valid = with_labels(x[valid_idx], y[valid_idx], np.zeros(len(valid_idx), bool), num_classes)
    test = with_labels(ds.test_x, ds.test_y, np.zeros(len(ds.test_y), bool), num_classes)
    return Dataset(
        train,
        None,
        test,
        ds.test_y,
        f"{ds.name}, {num_labels} labelled",
        valid_x=valid,
        valid_y=y[valid_idx],
    )


SPLIT_NPZ_KEYS = ("train_x", "train_y", "test_x", "test_y")


def load_split_npz(cfg) -> Dataset:
    """The "split_npz" source: a fixed train/test split saved as one `.npz` at
    `{data_dir}/{name}` (or the absolute path `name`) with arrays train_x [N, ...],
    train_y int [N], test_x [M, ...], test_y int [M]: features computed by another model
    (M1's codes for M1+M2), kept in the split they were computed on. Loaded without
    pickle."""
    path = cfg.name if os.path.isabs(cfg.name) else os.path.join(cfg.data_dir or "", cfg.name)
    if not cfg.name or not os.path.isfile(path):
        raise DataError(f"config.data.name={cfg.name!r}: the .npz file {path} does not exist")
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in SPLIT_NPZ_KEYS if k not in f.files]
        if missing:
            raise DataError(f"data file {path} holds no {', '.join(missing)}")
        a = {k: f[k] for k in SPLIT_NPZ_KEYS}
    for split in ("train", "test"):
        if a[f"{split}_y"].shape != a[f"{split}_x"].shape[:1]:
            raise DataError(f"data file {path}: {split}_y is not one label per {split}_x row")
    return Dataset(
        a["train_x"].astype(np.float32),
        a["train_y"].astype(np.int32),
        a["test_x"].astype(np.float32),
        a["test_y"].astype(np.int32),
        os.path.basename(path),
    )
