"""Throughput of the grain TFDS train stream alone (`aejax.data.tfds_source.TfdsStream`).

    python benchmarks/benchmark_grain.py                        # offline: mock mnist, 60000
    python benchmarks/benchmark_grain.py --real --data_dir=DIR  # a prepared TFDS mnist

It needs the `tfds` extra (`pip install -e '.[tfds]'`: tensorflow-datasets and grain).
By default it needs no data and no network: `tfds.testing.mock_data` stands in for mnist's
train split (60000 examples of 28x28x1 uint8), generating each example when it is read, so the
figure is grain's order/batching/prefetch machinery plus the mock's generator, not disk reads
or PNG decoding. With --real it opens `--name` (mnist) from `--data_dir` through
`tfds.data_source`, which needs the dataset prepared there in array_record format (by TFDS
on a machine with a network and TensorFlow: `tfds build mnist --file_format=array_record
--data_dir=DIR`); then it measures real reads and decoding.

After a warm-up, it times several windows of `next(stream)` and prints one line: the median
(and the range) in examples/s. Measured on a 2-core CPU shared with other jobs, global batch
128, 2 reader threads: mock mnist about 38,000 examples/s (300 steps/s); a prepared mnist
(array_record, PNG images decoded by PIL) about 11,000 examples/s (90 steps/s, an epoch in
5-6 s), bound by tfds's reading and decoding (about 80 us an example; more threads do not
help on 2 cores). grain's own share is small: from a Python list of arrays the same stream
gives about 500,000 examples/s.
"""

import contextlib
import statistics
import tempfile
import time

from absl import app, flags, logging

from aejax.data.tfds_source import TfdsStream, open_tfds

flags.DEFINE_bool("real", False, "Read a prepared TFDS dataset instead of mock data.")
flags.DEFINE_string("name", "mnist", "TFDS dataset name.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir with the prepared dataset (--real).")
flags.DEFINE_integer("num_examples", 60000, "Mock train examples (without --real).")
flags.DEFINE_integer("global_batch", 128, "Examples per step.")
flags.DEFINE_integer("num_threads", 2, "grain reader threads.")
flags.DEFINE_integer("prefetch_batches", 4, "Batches read ahead.")
flags.DEFINE_integer("windows", 5, "Timed windows; the median is reported.")
flags.DEFINE_float("window_s", 1.0, "Approximate length of one timed window in seconds.")
FLAGS = flags.FLAGS


def examples_per_s(stream: TfdsStream) -> tuple[float, list[float]]:
    """Median examples/s of `next(stream)` over the timed windows, and all windows' rates."""
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.5 or n < 5:  # warm up (threads, caches); size windows
        next(stream)
        n += 1
    steps = max(1, round(n / (time.perf_counter() - t0) * FLAGS.window_s))
    rates = []
    for _ in range(FLAGS.windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            next(stream)
        rates.append(steps * FLAGS.global_batch / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # one line of figures, not TFDS's info logs
    with contextlib.ExitStack() as stack:
        if FLAGS.real:
            what = f"{FLAGS.name} train in {FLAGS.data_dir or 'the default data_dir'}"
            source = open_tfds(FLAGS.name, "train", FLAGS.data_dir, download=False)
        else:
            import tensorflow_datasets as tfds

            # Each mock call leaves an empty temp dir: keep them in one that is removed.
            tempfile.tempdir = stack.enter_context(tempfile.TemporaryDirectory())
            stack.enter_context(tfds.testing.mock_data(num_examples=FLAGS.num_examples))
            what = f"mock {FLAGS.name} train"
            source = open_tfds(FLAGS.name, "train", tempfile.tempdir)
        stream = TfdsStream(
            source,
            seed=0,
            global_batch=FLAGS.global_batch,
            num_threads=FLAGS.num_threads,
            prefetch_batches=FLAGS.prefetch_batches,
        )
        median, rates = examples_per_s(stream)
        stream.close()
        n = len(source)
    print(
        f"grain TfdsStream, {what} ({n} examples {stream.example_shape}), "
        f"global batch {FLAGS.global_batch}, {FLAGS.num_threads} threads, "
        f"{FLAGS.prefetch_batches} batches ahead: {median:,.0f} examples/s median "
        f"({median / FLAGS.global_batch:,.0f} steps/s; windows {min(rates):,.0f}.."
        f"{max(rates):,.0f})"
    )


if __name__ == "__main__":
    app.run(main)
