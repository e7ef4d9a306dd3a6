"""TFDS catalog datasets without TensorFlow: `tfds.data_source` splits read into memory, and a
grain stream of the train split whose order is a pure function of (seed, step).

- `open_tfds(name, split, data_dir)`: a random-access source of example dicts.
- `image_of(example)`: the example's image as float32 [H, W, C] in [0, 1].
- `load_split_in_memory(source)`: a small split as arrays (test splits, MNIST-scale train).
- `TfdsStream`: the train split as a stream of batches for data too large for memory; its
  batch at step s holds the examples `pipeline.batch_indices(seed, s, 1, n, B)` names, so it
  yields exactly what the in-memory path gathers, and resumes exactly from a step or a state.

Reading needs the dataset prepared in a random-access file format (array_record). Preparing
it (`download_and_prepare`) is TFDS's job and, in tfds 4.9, needs TensorFlow (its extractor
and image encoder call `tf`); reading does not.
"""

import difflib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aejax.data.pipeline import epoch_permutation, steps_per_epoch
from aejax.data.sources import Dataset
from aejax.errors import ConfigError, DataError, import_extra

# Datasets whose 'image' feature stores 0/1 pixels in uint8 (not 0..255).
BINARY_DATASETS = frozenset({"binarized_mnist"})

# A random-access format (data sources need one) that tfds writes without TensorFlow, and the
# one `tfds.data_source` picks by itself only when given no data_dir: given one, it keeps the
# builder's default, tfrecord, which it then cannot read as a data source.
_FILE_FORMAT = "array_record"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def open_tfds(name: str, split: str, data_dir: str | None = None, *, download: bool = True):
    """Opens one split of a TFDS catalog dataset as a random-access source, without TensorFlow.

    Args:
      name: a TFDS name, optionally with config and version ("mnist", "cifar10:3.0.2").
      split: a TFDS split ("train", "test", "train[:90%]").
      data_dir: where prepared datasets live; None means TFDS's default ($TFDS_DATA_DIR or
        ~/tensorflow_datasets).
      download: when the dataset is not prepared in data_dir, download and prepare it there
        (which TFDS can only do where TensorFlow is installed).
    Returns:
      A sequence of N example dicts (`len(source)`, `source[i]`), e.g. for mnist
      {'image': uint8 [28, 28, 1], 'label': int64 []}; thread-safe for grain's reader threads.
    Raises:
      DataError (one line): unknown name or split, or a dataset that is not prepared and
      cannot be prepared here.
    """
    # Here, not at the top: a slow import (~0.5 s), and an optional extra of aejax.
    tfds = import_extra("tensorflow_datasets", "tfds", f"TFDS dataset {name!r}")

    try:
        builder = tfds.builder(name, data_dir=data_dir, file_format=_FILE_FORMAT)
    except tfds.core.registered.DatasetNotFoundError:
        base = name.split("/")[0].split(":")[0]
        close = difflib.get_close_matches(base, tfds.list_builders(with_community_datasets=False))
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        where = data_dir or "the default data_dir"
        raise DataError(
            f"TFDS dataset {name!r} is neither in the TFDS catalog nor prepared in {where}{hint}"
        ) from None
    except ValueError as e:  # an unknown config or version of a known dataset
        raise DataError(f"TFDS cannot build dataset {name!r}: {_first_line(e)}") from None
    # Try the prepared (or, under tfds.testing.mock_data, mocked) data first: the mock does not
    # make `is_prepared()` true, so checking it first would refuse mocked data.
    try:
        return builder.as_data_source(split=split)
    except Exception as e:  # tfds raises KeyError, ValueError, NotImplementedError
        error = e
    where = f"in {builder.data_dir}"
    if builder.is_prepared():
        splits = ", ".join(builder.info.splits) or "none"
        raise DataError(
            f"TFDS dataset {name!r} {where} cannot open split {split!r} (its splits: {splits}): "
            f"{_first_line(error)}"
        )
    how = (
        f"on a machine with a network and TensorFlow the first use downloads and prepares it "
        f"(or run `tfds build {name} --file_format={_FILE_FORMAT} --data_dir=DIR` there), "
        f"then point data_dir at that folder"
    )
    if not download:
        raise DataError(f"TFDS dataset {name!r} is not prepared {where} (download=False): {how}")
    # Fail now rather than after a download (or, offline, ~200 s of TFDS's retries): tfds 4.9
    # needs TensorFlow to extract downloads and to encode images while preparing.
    if importlib.util.find_spec("tensorflow") is None:
        raise DataError(
            f"TFDS dataset {name!r} is not prepared {where}, and preparing it needs TensorFlow, "
            f"which is not installed: {how}"
        )
    try:
        builder.download_and_prepare()
        return builder.as_data_source(split=split)
    except Exception as e:  # network, disk, checksum or split errors alike
        raise DataError(
            f"TFDS dataset {name!r} could not be downloaded and prepared {where}: "
            f"{_first_line(e)}; {how}"
        ) from None


def is_binary(source) -> bool:
    """Whether `source` (from `open_tfds`) stores 0/1 pixels, like binarized_mnist."""
    info = getattr(source, "dataset_info", None)
    return getattr(info, "name", None) in BINARY_DATASETS


def _to_unit_float(images: np.ndarray, binary: bool) -> np.ndarray:
    """uint8 (0..255), 0/1 or float pixels [..., H, W, C] -> float32 in [0, 1]."""
    if binary:
        return (images > 0).astype(np.float32)
    if images.dtype == np.uint8:
        # Divided, not multiplied by 1/255, to give the IDX loader's floats bit for bit.
        return images.astype(np.float32) / np.float32(255)
    return images.astype(np.float32)


def image_of(example: Mapping[str, Any], *, binary: bool = False) -> np.ndarray:
    """The example's 'image' feature as float32 [H, W, C] in [0, 1].

    uint8 pixels are divided by 255; with `binary` (datasets whose uint8 pixels are 0/1, see
    `is_binary`) they become 0 or 1 (x > 0); float pixels are kept. A grayscale [H, W] image
    gets a channel axis.
    """
    return images_of([example], binary=binary)[0]


def images_of(examples: Sequence[Mapping[str, Any]], *, binary: bool = False) -> np.ndarray:
    """`image_of` of each example, stacked (converted once): float32 [N, H, W, C]."""
    images = np.stack([np.asarray(e["image"]) for e in examples])
    return _to_unit_float(images[..., None] if images.ndim == 3 else images, binary)


def read_examples(source: Sequence[Mapping[str, Any]], indices) -> list:
    """`[source[i] for i in indices]`, in one batched read where the source has one.

    tfds's ArrayRecordDataSource reads a batch (`__getitems__`) about 2.6 times faster than
    item by item (MNIST PNGs: 80 vs 210 us per example, decoding included). Under
    tfds.testing.mock_data `__getitems__` raises a TypeError, so there it reads one by one.
    """
    indices = [int(i) for i in indices]
    getitems = getattr(source, "__getitems__", None)
    if getitems is not None:
        try:
            return list(getitems(indices))
        except TypeError:
            pass
    return [source[i] for i in indices]


def load_split_in_memory(
    source: Sequence[Mapping[str, Any]], max_examples: int = 0, *, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads a (small) split into memory, `chunk` examples per read.

    Args:
      source: a random-access sequence of example dicts (e.g. from `open_tfds`).
      max_examples: read only the first max_examples (0 means all).
      chunk: examples per batched read.
    Returns:
      x: float32 [N, H, W, C] in [0, 1] (see `image_of`); y: int32 [N] from the 'label'
      feature, or None when the examples have none. MNIST's 60000 train images take ~5 s.
    """
    n = len(source) if max_examples <= 0 else min(max_examples, len(source))
    if n == 0:
        raise DataError("the TFDS split is empty")
    binary = is_binary(source)
    xs, ys = [], []
    for start in range(0, n, chunk):
        examples = read_examples(source, range(start, min(start + chunk, n)))
        xs.append(images_of(examples, binary=binary))
        ys.append([e["label"] for e in examples] if "label" in examples[0] else None)
    y = None if ys[0] is None else np.concatenate(ys).astype(np.int32)
    return np.concatenate(xs), y


class TfdsStream:
    """The train split as a stream of this process's share of each global batch.

    Order (as `aejax.data.pipeline`): epoch e is the permutation `epoch_permutation(seed, e,
    N)`; step s reads rows [i*B, (i+1)*B) of epoch s // S's permutation, i = s % S, with
    S = N // B steps per epoch (the last N % B examples of each permutation are skipped).
    Process p of P reads and yields only rows [p*B/P, (p+1)*B/P) of each global batch, so the
    processes' batches, concatenated in process order, are the global batch, and on one
    process the stream equals `x[batch_indices(seed, s, 1, N, B)[0]]` of the in-memory split.

    The grain pipeline: an endless `MapDataset.range` of steps, each mapped to its records
    (one batched read) and decoded with `image_of`, turned into an iterator that reads
    `prefetch_batches` ahead in `num_threads` threads (`to_iter_dataset(ReadOptions)`). The
    iterator's state is the next step, so a stream restored from a saved state, or started at
    `start_step`, yields exactly what an uninterrupted one does from there.

    Usage:
      stream = TfdsStream(open_tfds("mnist", "train", data_dir), seed, 128)
      x = next(stream)   # float32 [128, 28, 28, 1]
      state = stream.get_state()   # JSON-serializable: save it with the checkpoint
      TfdsStream(source, seed, 128).set_state(state)   # continues where `stream` stands
    """

    def __init__(
        self,
        source: Sequence[Mapping[str, Any]],
        seed: int,
        global_batch: int,
        process_index: int = 0,
        process_count: int = 1,
        start_step: int = 0,
        *,
        num_threads: int = 2,
        prefetch_batches: int = 4,
    ):
        """Builds the stream; reading starts at the first `next`.

        Args:
          source: random-access example dicts (from `open_tfds`, or any sequence of dicts).
          seed: the data-order seed.
          global_batch: B, the examples per step over all processes.
          process_index, process_count: this process p and the number P of processes; P must
            divide B.
          start_step: the first step to yield.
          num_threads: grain reader threads (0 reads in the calling thread, at `next`).
          prefetch_batches: how many batches the threads read ahead.
        """
        if global_batch <= 0:
            raise ConfigError(f"the global batch size {global_batch} must be positive")
        if process_count <= 0 or not 0 <= process_index < process_count:
            raise ConfigError(
                f"process_index={process_index} must lie in [0, process_count={process_count})"
            )
        if global_batch % process_count:
            raise ConfigError(
                f"the global batch size {global_batch} does not divide over {process_count} "
                "processes"
            )
        if start_step < 0:
            raise ConfigError(f"start_step={start_step} must be >= 0")
        self.num_examples = len(source)
        if self.num_examples < global_batch:
            raise DataError(
                f"the train split holds {self.num_examples} examples, fewer than one global "
                f"batch of {global_batch}"
            )
        self.seed, self.global_batch = int(seed), int(global_batch)
        self.process_index, self.process_count = process_index, process_count
        self.local_batch = global_batch // process_count
        self.steps_per_epoch = steps_per_epoch(self.num_examples, global_batch)
        self._source = source
        self._binary = is_binary(source)
        self.example_shape = tuple(image_of(source[0], binary=self._binary).shape)

        # Here, not at the top: it takes a second to import, and it is an optional extra.
        grain = import_extra("grain", "tfds", "streaming (config.data.stream)")

        # One element per step, so that a step's records are one batched read and the
        # iterator's index is the step itself. Endless: len is sys.maxsize.
        dataset = grain.MapDataset.range(sys.maxsize).map(self._batch_at)
        # Reader threads in this process: grain's multiprocessing workers would need absl
        # flags parsed and a picklable source, and buy little at MNIST scale on few cores.
        options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_batches)
        self._iterator = dataset.to_iter_dataset(options).__iter__()
        self._iterator.set_state({"next_index": int(start_step)})

    def records_at(self, step: int) -> np.ndarray:
        """Record numbers of this process's share of `step`'s batch: int32 [B/P]."""
        epoch, i = divmod(step, self.steps_per_epoch)
        start = i * self.global_batch + self.process_index * self.local_batch
        return epoch_permutation(self.seed, epoch, self.num_examples)[
            start : start + self.local_batch
        ]

    def _batch_at(self, step: int) -> np.ndarray:
        examples = read_examples(self._source, self.records_at(step))
        return images_of(examples, binary=self._binary)

    @property
    def step(self) -> int:
        """The step whose batch `next` returns."""
        return int(self._iterator.get_state()["next_index"])

    def __iter__(self) -> "TfdsStream":
        return self

    def __next__(self) -> np.ndarray:
        """This process's share of the next step's batch: float32 [B/P, *example_shape]."""
        return next(self._iterator)

    next_batch = __next__

    def get_state(self) -> dict[str, int]:
        """A JSON-serializable state: the next step, and what fixes the order."""
        return {
            "step": self.step,
            "seed": self.seed,
            "global_batch": self.global_batch,
            "num_examples": self.num_examples,
        }

    def set_state(self, state: Mapping[str, int]) -> None:
        """Continues from a state of `get_state`, of this or another process's stream.

        The process layout may differ from the saved one (the step is global); the seed, the
        global batch and the split size may not, since they fix the order.
        """
        for key in ("seed", "global_batch", "num_examples"):
            if int(state[key]) != getattr(self, key):
                raise ConfigError(
                    f"the saved data stream has {key}={state[key]} but this one has "
                    f"{getattr(self, key)}: it would not continue the same order"
                )
        if int(state["step"]) < 0:
            raise ConfigError(f"the saved data stream's step {state['step']} must be >= 0")
        self._iterator.set_state({"next_index": int(state["step"])})

    def close(self) -> None:
        """Stops the reader threads and drops the batches read ahead."""
        self._iterator.close()


def load_tfds(cfg) -> Dataset:
    """`config.data` for a TFDS catalog dataset (source "tfds", name e.g. "mnist",
    "fashion_mnist", "cifar10", "binarized_mnist"), read with `tfds.data_source`.

    The test split (`config.data.tfds_test_split`) is read into memory. The train split
    (`config.data.tfds_train_split`) too, unless `config.data.stream` is set: then the
    trainer streams it through grain (`TfdsStream`), for datasets that do not fit in memory.
    `data_dir` is where TFDS keeps its prepared datasets (empty: TFDS's default).
    """
    if not cfg.name:
        raise DataError("config.data.name is empty: name the TFDS dataset (e.g. mnist)")
    data_dir = cfg.data_dir or None
    test = open_tfds(cfg.name, cfg.tfds_test_split, data_dir)
    test_x, test_y = load_split_in_memory(test, cfg.max_test)
    train = open_tfds(cfg.name, cfg.tfds_train_split, data_dir)
    if cfg.stream:
        return Dataset(None, None, test_x, test_y, f"tfds:{cfg.name}", train_source=train)
    train_x, train_y = load_split_in_memory(train, cfg.max_train)
    return Dataset(train_x, train_y, test_x, test_y, f"tfds:{cfg.name}")
