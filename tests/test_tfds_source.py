"""TFDS sources and the grain stream, offline: tfds.testing.mock_data, and a tiny dataset that
tfds prepares here (array_record, no TensorFlow needed for tensor features)."""

import importlib.util
import json
import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from aejax.data.pipeline import batch_indices
from aejax.data.tfds_source import (
    TfdsStream,
    image_of,
    images_of,
    load_split_in_memory,
    open_tfds,
)
from aejax.errors import ConfigError, DataError

N = 500  # mock examples per split
B = 64  # global batch: 7 steps per epoch, 52 examples skipped per epoch
SPE = N // B


@pytest.fixture
def mock_mnist(tmp_path, monkeypatch):
    """(train source, test source) of a mocked mnist, with the mock active during the test.

    Mock examples are deterministic per index (random with seed = index), so the same record
    reads the same image however and whenever it is read.
    """
    # Each mock call leaves an empty temp dir: keep them inside the test's tmp dir.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with tfds.testing.mock_data(num_examples=N):
        yield open_tfds("mnist", "train", str(tmp_path)), open_tfds("mnist", "test", str(tmp_path))


@pytest.fixture
def train_arrays(mock_mnist):
    return load_split_in_memory(mock_mnist[0])


def take(stream, k):
    return [next(stream) for _ in range(k)]


def test_mock_mnist_splits_have_image_shapes_and_range(mock_mnist, train_arrays):
    train, test = mock_mnist
    x, y = train_arrays
    assert x.shape == (N, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert y.shape == (N,) and y.dtype == np.int32 and 0 <= y.min() and y.max() <= 9
    xt, yt = load_split_in_memory(test, max_examples=30)
    assert xt.shape == (30, 28, 28, 1) and yt.shape == (30,)
    # Deterministic per index, and the in-memory rows are the examples.
    np.testing.assert_array_equal(image_of(train[7]), image_of(train[7]))
    np.testing.assert_array_equal(image_of(train[7]), x[7])


def test_image_of_scales_uint8_and_keeps_binary_pixels():
    pixels = np.array([[0, 51], [255, 1]], np.uint8)
    np.testing.assert_array_equal(
        image_of({"image": pixels[..., None]}), pixels[..., None].astype(np.float32) / 255.0
    )
    assert image_of({"image": pixels}).shape == (2, 2, 1)  # a channel axis is added
    binary = np.array([[0, 1], [1, 0]], np.uint8)[..., None]
    np.testing.assert_array_equal(image_of({"image": binary}, binary=True), binary)
    np.testing.assert_array_equal(images_of([{"image": binary}] * 3, binary=True), [binary] * 3)
    floats = np.array([[0.25]], np.float64)
    assert image_of({"image": floats}).dtype == np.float32


def test_binarized_mnist_under_mock_is_zero_one_without_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with tfds.testing.mock_data(num_examples=20):
        x, y = load_split_in_memory(open_tfds("binarized_mnist", "train", str(tmp_path)))
    assert x.shape == (20, 28, 28, 1) and y is None
    assert set(np.unique(x)) == {0.0, 1.0}


@pytest.mark.parametrize("name", ["no_such_dataset", "mnst"])
def test_unknown_dataset_is_one_line_data_error(name, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(DataError, match=f"'{name}' is neither in the TFDS catalog") as e:
        open_tfds(name, "train", str(tmp_path))
    assert "\n" not in str(e.value)
    if name == "mnst":
        assert "did you mean mnist" in str(e.value)


def test_unprepared_dataset_is_one_line_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(DataError, match="not prepared.*network.*downloads and prepares") as e:
        open_tfds("mnist", "train", str(tmp_path / "data"), download=False)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is not None, reason="would really download"
)
def test_unprepared_dataset_without_tensorflow_fails_before_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(DataError, match="needs TensorFlow.*network") as e:
        open_tfds("mnist", "train", str(tmp_path / "data"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "data").exists()  # nothing downloaded or written


with tfds.core.registered.skip_registration():

    class AejaxTestImages(tfds.core.GeneratorBasedBuilder):
        """A tiny dataset that tfds prepares without TensorFlow (tensor, not PNG, images)."""

        name = "aejax_test_images"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {
                "image": tfds.features.Tensor(shape=(6, 5, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }
            return tfds.core.DatasetInfo(
                builder=self, features=tfds.features.FeaturesDict(features)
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(40), "test": self._generate_examples(12)}

        def _generate_examples(self, n):
            rng = np.random.default_rng(n)
            for i in range(n):
                yield i, {"image": rng.integers(0, 256, (6, 5, 1), np.uint8), "label": i % 10}


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    """A data_dir holding aejax_test_images, prepared as array_record (real files, no mock)."""
    tmp = tmp_path_factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(tmp))
        AejaxTestImages(
            data_dir=str(tmp / "data"), file_format="array_record"
        ).download_and_prepare()
        yield str(tmp / "data")


def test_prepared_dataset_reads_in_batches_and_streams(prepared_dir):
    train = open_tfds("aejax_test_images", "train", prepared_dir)
    x, y = load_split_in_memory(train, chunk=16)  # batched reads (__getitems__) of real files
    assert x.shape == (40, 6, 5, 1) and y.shape == (40,)
    np.testing.assert_array_equal(x[13], image_of(train[13]))
    assert len(open_tfds("aejax_test_images", "train[:25%]", prepared_dir)) == 10
    stream = TfdsStream(train, seed=1, global_batch=8)
    for step, batch in enumerate(take(stream, 12)):  # 5 steps per epoch: crosses two epochs
        np.testing.assert_array_equal(batch, x[batch_indices(1, step, 1, 40, 8)[0]])
    stream.close()


def test_prepared_dataset_unknown_split_lists_the_splits(prepared_dir):
    with pytest.raises(DataError, match=r"split 'validation' \(its splits: train, test\)") as e:
        open_tfds("aejax_test_images", "validation", prepared_dir)
    assert "\n" not in str(e.value)


def test_stream_batches_have_the_local_shape_and_match_the_in_memory_order(
    mock_mnist, train_arrays
):
    x, _ = train_arrays
    stream = TfdsStream(mock_mnist[0], seed=3, global_batch=B)
    assert stream.num_examples == N and stream.example_shape == (28, 28, 1)
    assert stream.steps_per_epoch == SPE
    batches = take(stream, 2 * SPE + 2)
    assert all(b.shape == (B, 28, 28, 1) and b.dtype == np.float32 for b in batches)
    # Exactly the batches the in-memory path gathers: x[batch_indices(seed, step, ...)].
    indices = batch_indices(3, 0, len(batches), N, B)
    for batch, rows in zip(batches, indices, strict=True):
        np.testing.assert_array_equal(batch, x[rows])
    state = stream.get_state()
    assert state["step"] == len(batches) == stream.step
    assert json.loads(json.dumps(state)) == state
    stream.close()


def test_stream_is_deterministic_per_seed_and_differs_across_seeds(mock_mnist):
    def first(seed, **kw):
        stream = TfdsStream(mock_mnist[0], seed=seed, global_batch=B, **kw)
        out = take(stream, 3)
        stream.close()
        return out

    a, again, other = first(0), first(0, num_threads=0), first(1)
    for u, v in zip(a, again, strict=True):
        np.testing.assert_array_equal(u, v)  # also: threaded and unthreaded reads agree
    assert not np.array_equal(a[0], other[0])


def test_each_epoch_holds_distinct_examples_and_reshuffles(mock_mnist):
    stream = TfdsStream(mock_mnist[0], seed=5, global_batch=B, num_threads=0)
    epochs = [np.concatenate(take(stream, SPE)) for _ in range(2)]
    for epoch in epochs:
        rows = {row.tobytes() for row in epoch}
        assert len(rows) == SPE * B  # no example twice within an epoch
    assert not np.array_equal(epochs[0], epochs[1])
    stream.close()


def test_process_shards_concatenate_to_the_global_batch(mock_mnist):
    source = mock_mnist[0]
    whole = take(TfdsStream(source, seed=2, global_batch=B), SPE + 2)
    shards = [
        take(TfdsStream(source, 2, B, process_index=p, process_count=2), SPE + 2) for p in (0, 1)
    ]
    assert shards[0][0].shape == (B // 2, 28, 28, 1)
    for step in range(SPE + 2):
        np.testing.assert_array_equal(
            np.concatenate([shards[0][step], shards[1][step]]), whole[step]
        )
    # Each process reads only its own records.
    stream = TfdsStream(source, 2, B, process_index=1, process_count=2)
    full = TfdsStream(source, 2, B)
    np.testing.assert_array_equal(stream.records_at(9), full.records_at(9)[B // 2 :])


def test_resume_from_start_step_or_saved_state_continues_the_same_stream(mock_mnist):
    source, s = mock_mnist[0], SPE - 2  # the resumed part crosses an epoch boundary
    uninterrupted = take(TfdsStream(source, seed=4, global_batch=B), s + 5)
    started = take(TfdsStream(source, seed=4, global_batch=B, start_step=s), 5)
    first = TfdsStream(source, seed=4, global_batch=B)
    take(first, s)
    state = json.loads(json.dumps(first.get_state()))  # as a checkpoint would keep it
    assert state["step"] == s  # the batches read ahead by the threads do not count
    first.close()
    restored = TfdsStream(source, seed=4, global_batch=B)
    restored.set_state(state)
    resumed = take(restored, 5)
    for k in range(5):
        np.testing.assert_array_equal(started[k], uninterrupted[s + k])
        np.testing.assert_array_equal(resumed[k], uninterrupted[s + k])
    # Another process layout resumes the same global step.
    half = TfdsStream(source, seed=4, global_batch=B, process_index=1, process_count=2)
    half.set_state(state)
    np.testing.assert_array_equal(next(half), uninterrupted[s][B // 2 :])


def test_stream_refuses_bad_settings_and_foreign_states(mock_mnist):
    source = mock_mnist[0]
    with pytest.raises(ConfigError, match="does not divide over 3 processes"):
        TfdsStream(source, 0, B, process_index=0, process_count=3)
    with pytest.raises(ConfigError, match="process_index=2"):
        TfdsStream(source, 0, B, process_index=2, process_count=2)
    with pytest.raises(DataError, match="fewer than one global batch"):
        TfdsStream(source, 0, 2 * N)
    stream = TfdsStream(source, 0, B)
    with pytest.raises(ConfigError, match="seed=1"):
        stream.set_state({**stream.get_state(), "seed": 1})


def _tfds_config(data_dir, stream: bool):
    from conftest import tiny_config

    config = tiny_config(num_steps=16, checkpoint_every_steps=8, eval_every_steps=8)
    config.model.encoder_widths = (32, 8)
    config.data.source = "tfds"
    config.data.name = "mnist"
    config.data.data_dir = str(data_dir)
    config.data.max_test = 64
    config.data.stream = stream
    return config


def test_training_streamed_through_grain_equals_training_in_memory(tmp_path, mock_mnist):
    """The trainer on the tfds source: streaming the train split through grain gives the
    parameters of the device-resident path bit for bit, and a streamed run stopped half-way
    resumes (its stream restarts at the checkpoint's step) to the same parameters."""
    import jax

    from aejax import train

    runs = {
        "memory": _tfds_config(tmp_path, stream=False),
        "stream": _tfds_config(tmp_path, stream=True),
    }
    for name, config in runs.items():
        _, metrics = train.train_and_evaluate(config, str(tmp_path / name))
        assert metrics["step"] == 16
    resumed = str(tmp_path / "resumed")
    train.train_and_evaluate(runs["stream"], resumed, stop_after=8)
    train.train_and_evaluate(runs["stream"], resumed)
    params = {
        name: jax.tree.map(
            np.asarray, train.Experiment.from_workdir(str(tmp_path / name)).restore_or_init()
        )
        for name in ("memory", "stream", "resumed")
    }
    for other in ("stream", "resumed"):
        for a, b in zip(
            jax.tree.leaves(params["memory"]), jax.tree.leaves(params[other]), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    # The applications report fits its baselines on the training split in memory: a streamed
    # run gets a clear error, not a TypeError from deep inside a section.
    from aejax import report
    from aejax.errors import AejaxError

    with pytest.raises(AejaxError, match="streamed train split .*--sections=none"):
        report.write_report(str(tmp_path / "stream"), sections=("reconstruction",))
