"""A small MNIST classifier whose penultimate activations score generated images.

FID and the improved precision/recall are usually computed on Inception-v3 features, but
those weights cannot be fetched on these machines (no internet at run time). So generated
MNIST digits are scored in the feature space of this classifier, trained here from
`CLASSIFIER_CONFIG`, deterministic from its seed. Numbers computed with it compare models
with each other (ours with pythae's, scored by the same classifier); they are not
comparable with the Inception FIDs of papers.

The network: Conv(16, 3x3) -> ReLU -> max-pool 2 -> Conv(32, 3x3) -> ReLU -> max-pool 2
-> Dense(128) -> ReLU (the features, [N, 128]) -> Dense(10). Adam (learning rate 2e-3,
cosine decay to 0), batch 128, two epochs of MNIST's 60,000 training images.

Measured on the 2-core CPU (seed 0): 98.92% test accuracy, the same (and the same losses)
in two runs. Training takes 98 s of CPU time: 117 s of wall time with the machine lightly
shared (load about 3), 443 s when about 16 other processes shared its two cores.
Its features put MNIST's first 10,000 training images at a Fréchet distance of 1.04 from
the 10,000 test images (experiments/zoo_score.py gives the reference and sanity rows).

    params = train_classifier(classifier_config())   # or load(directory)
    feats = features(params, images)                  # images [N, 28, 28, 1] or [N, 784]

`save(directory, params, config)` writes params.npz and classifier.json (the config it was
trained with, and anything else given, such as its test accuracy) beside each other;
`load(directory)` reads them back and refuses weights whose shapes are not this network's.
"""

import functools
import json
import os
import time
import types
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax import perf
from aejax.errors import AejaxError, ConfigError

# The classifier's training, in one place (read-only): the script experiments/zoo_score.py
# and the tests change a few fields through `classifier_config(**overrides)`.
CLASSIFIER_CONFIG = types.MappingProxyType(
    {
        "seed": 0,
        "num_epochs": 2,
        "batch_size": 128,
        "learning_rate": 2e-3,
        "max_train": 0,  # keep only the first N training images (0: all 60,000); for tests
        "max_steps": 0,  # stop after N steps (0: run every epoch); for tests
    }
)
FEATURE_DIM = 128
IMAGE_SHAPE = (28, 28, 1)
_PARAMS_FILE, _INFO_FILE = "params.npz", "classifier.json"


def classifier_config(**overrides) -> dict:
    """`CLASSIFIER_CONFIG` with `overrides`; a ConfigError names an unknown or bad field."""
    config = dict(CLASSIFIER_CONFIG)
    for key, value in overrides.items():
        if key not in config:
            raise ConfigError(
                f"classifier config: unknown field {key!r}; valid: {', '.join(config)}"
            )
        config[key] = value
    for key in ("num_epochs", "batch_size"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ConfigError(f"classifier config: {key}={config[key]!r} must be an int >= 1")
    for key in ("seed", "max_train", "max_steps"):
        if not isinstance(config[key], int) or config[key] < 0:
            raise ConfigError(f"classifier config: {key}={config[key]!r} must be an int >= 0")
    lr = config["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"classifier config: learning_rate={lr!r} must be a number > 0")
    return config


class Classifier(nn.Module):
    """The CNN; `__call__` returns (logits [N, 10], features [N, 128])."""

    @nn.compact
    def __call__(self, x):
        for width in (16, 32):
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        h = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(h), h


# Shapes of one image that hold it in row-major order: flat, 2-D, channels last or first
# (one channel, so PyTorch's [N, 1, 28, 28] reshapes to the same pixels).
_IMAGE_SHAPES = ((784,), (28, 28), (28, 28, 1), (1, 28, 28))


def as_images(x, what: str = "images") -> np.ndarray:
    """float32 [N, 28, 28, 1] from N images of shape [784], [28, 28], [28, 28, 1] or
    [1, 28, 28] with values in [0, 1]; an AejaxError (one line, naming `what`) for any
    other shape, NaN/Inf or a value outside [0, 1]."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0 or x.shape[1:] not in _IMAGE_SHAPES:
        raise AejaxError(
            f"{what} have shape {x.shape}; expected [N, 784] or [N, 28, 28, 1] MNIST images"
        )
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise AejaxError(f"{what} hold {x.dtype} values, not numbers")
    x = x.astype(np.float32).reshape(len(x), *IMAGE_SHAPE)
    if not np.all(np.isfinite(x)):
        raise AejaxError(f"{what} hold NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise AejaxError(f"{what} hold values in [{lo:g}, {hi:g}]; expected pixels in [0, 1]")
    return x


def _init(key):
    return Classifier().init(key, jnp.zeros((1, *IMAGE_SHAPE)))["params"]


def _step(params, adam_state, x, y, idx, lr):
    """One Adam step on the batch x[idx] (the images stay on the device; a step gathers
    its batch). The learning rate is an argument, so one compiled step serves any run."""

    def loss_fn(p):
        logits, _ = Classifier().apply({"params": p}, x[idx])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    direction, adam_state = optax.scale_by_adam().update(grads, adam_state)
    params = jax.tree.map(lambda p, d: p - lr * d, params, direction)
    return params, adam_state, loss


@functools.cache
def _compiled():
    """(init, apply, step) jitted once per process. Convolutions go through Eigen, which
    ran the training step faster on the 2-core CPU (aejax.perf); chosen here, not on
    import, because asking for the backend starts JAX."""
    options = perf.cpu_compiler_options("eigen", jax.default_backend())
    apply = lambda params, x: Classifier().apply({"params": params}, x)
    return tuple(jax.jit(f, compiler_options=options) for f in (_init, apply, _step))


def _batched(params, x, batch: int = 1000):
    """(logits [N, 10], features [N, 128]) as numpy, a fixed batch shape (one compile)."""
    x = as_images(x)
    batch = min(batch, len(x))  # a few images: no work on a whole batch of padding
    logits, feats = [], []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        padded = np.pad(chunk, ((0, batch - len(chunk)), (0, 0), (0, 0), (0, 0)))
        lo, fe = _compiled()[1](params, padded)
        logits.append(np.asarray(lo[: len(chunk)]))
        feats.append(np.asarray(fe[: len(chunk)]))
    return np.concatenate(logits), np.concatenate(feats)


def features(params, x) -> np.ndarray:
    """The classifier's penultimate activations: float32 [N, 128] of images [N, 28, 28, 1]
    or [N, 784] in [0, 1]."""
    return _batched(params, x)[1]


def logits(params, x) -> np.ndarray:
    """The classifier's logits: float32 [N, 10] of images [N, 28, 28, 1] or [N, 784] in
    [0, 1] (softmax them for class probabilities)."""
    return _batched(params, x)[0]


def accuracy(params, x, y) -> float:
    """The share of images x ([N, 28, 28, 1] or [N, 784]) classified as their labels y [N]."""
    return float(np.mean(np.argmax(_batched(params, x)[0], -1) == np.asarray(y)))


def load_mnist(data_dir: str = ""):
    """MNIST through aejax.data from `data_dir/mnist` (default: $AEJAX_DATA_DIR): a Dataset
    of float32 [N, 28, 28, 1] images in [0, 1] and int32 labels (60,000 train, 10,000 test)."""
    from aejax.config import base_config
    from aejax.data import load_dataset

    cfg = base_config().data
    cfg.source, cfg.name = "idx", "mnist"
    if data_dir:
        cfg.data_dir = data_dir
    return load_dataset(cfg)


def train_classifier(config: dict, data=None, log=None):
    """Trains the classifier with Adam on cross-entropy; deterministic from config["seed"].

    Args:
      config: `classifier_config(...)`.
      data: an aejax.data.Dataset of MNIST (default: `load_mnist()`).
      log: called with one line per epoch, if given.
    Returns:
      the parameters (a pytree of arrays).
    """
    config = classifier_config(**config)
    data = load_mnist() if data is None else data
    x, y = data.train_x, data.train_y
    if y is None:
        raise AejaxError(f"dataset {data.name!r} has no labels to train the classifier on")
    if config["max_train"]:
        x, y = x[: config["max_train"]], y[: config["max_train"]]
    n = len(x)
    # The step takes the whole (device-resident) set: padded to a power of two with rows no
    # batch draws, so sets of other sizes (augmented data sets) reuse its compilation.
    rows = 1 << max(n - 1, 0).bit_length()
    x = np.pad(as_images(x, "training images"), ((0, rows - n), (0, 0), (0, 0), (0, 0)))
    x, y = jnp.asarray(x), jnp.asarray(np.pad(np.asarray(y), (0, rows - n)))
    batch = min(config["batch_size"], n)
    steps_per_epoch = n // batch
    # Cosine decay to 0 over the run (measured: 98.9% after two epochs, 98.3% after one).
    total = config["num_epochs"] * steps_per_epoch
    lrs = np.asarray(optax.cosine_decay_schedule(config["learning_rate"], total)(np.arange(total)))
    init, _, step = _compiled()
    key = jax.random.key(config["seed"])
    params = init(jax.random.fold_in(key, 0))
    adam_state = optax.scale_by_adam().init(params)
    # The batch order is a function of (seed, epoch); the last partial batch is dropped.
    steps = 0
    for epoch in range(config["num_epochs"]):
        order_key = jax.random.fold_in(jax.random.fold_in(key, 1), epoch)
        perm = np.asarray(jax.random.permutation(order_key, n))
        t0 = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = perm[i * batch : (i + 1) * batch]
            params, adam_state, loss = step(params, adam_state, x, y, idx, lrs[steps])
            steps += 1
            if steps == config["max_steps"]:
                return params
        if log:
            log(f"epoch {epoch + 1}: loss {float(loss):.4f}, {time.perf_counter() - t0:.1f} s")
    return params


def save(directory: str, params, config: dict, **info) -> None:
    """Writes params.npz (the weights by path) and classifier.json ({"config": config,
    **info}) into `directory`, creating it."""
    os.makedirs(directory, exist_ok=True)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in _leaves(params)}
    np.savez(os.path.join(directory, _PARAMS_FILE), **flat)
    with open(os.path.join(directory, _INFO_FILE), "w") as f:
        json.dump({"config": config, **info}, f, indent=2)


def _leaves(params):
    return jax.tree_util.tree_flatten_with_path(params)[0]


def load(directory: str):
    """(params, info) from a directory written by `save`; info is {"config": ..., ...}.
    An AejaxError when the files are missing or the weights do not fit this network."""
    params_path, info_path = (os.path.join(directory, f) for f in (_PARAMS_FILE, _INFO_FILE))
    for path in (params_path, info_path):
        if not os.path.isfile(path):
            raise AejaxError(f"classifier directory {directory}: {path} does not exist")
    try:
        with open(info_path) as f:
            info = json.load(f)
        with np.load(params_path) as stored:
            stored = dict(stored)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise AejaxError(f"classifier directory {directory} is unreadable: {e}") from None
    template = jax.eval_shape(_init, jax.random.key(0))
    leaves = []
    for path, leaf in _leaves(template):
        name = jax.tree_util.keystr(path)
        if name not in stored:
            raise AejaxError(f"{params_path} has no weights {name}: not this classifier")
        if stored[name].shape != leaf.shape:
            raise AejaxError(
                f"{params_path}: weights {name} have shape {stored[name].shape}, but this "
                f"classifier's are {leaf.shape}"
            )
        leaves.append(jnp.asarray(stored[name]))
    if len(stored) != len(leaves):
        extra = sorted(set(stored) - {jax.tree_util.keystr(p) for p, _ in _leaves(template)})
        raise AejaxError(f"{params_path} holds weights {extra[0]} this classifier does not have")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves), info
