"""Speed of every variant: compile time, steps/s and examples/s of the bare compiled step and
of the end-to-end training loop, peak memory, FLOPs; optionally beside PyTorch.

    python benchmarks/benchmark.py                                # every variant, CPU
    python benchmarks/benchmark.py --configs=ae,cae_auto --peer=torch
    python benchmarks/benchmark.py --sweep=batch,input,code --configs= --e2e=false
    python benchmarks/benchmark.py --configs=ae_deep,conv_vae --batch_size=1024 \\
        --peer=torch --matmul_precision=tensorfloat32 --peak_flops=495e12  # an H100 SXM

Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist. --peer=torch needs PyTorch
(`pip install -e '.[bench]'`). What is measured and how: measure.py, timing.py,
torch_peer.py and runner.py beside this script, and docs/BENCHMARKS.md, which also holds
the tables.

The results go to a new JSON file after each variant (an existing one is never
overwritten). A bad flag value or missing data ends in one line on stderr and exit code 2
before anything is measured; a measurement that fails ends the run with exit code 1.
"""

import sys
import time

from absl import flags

import runner
from aejax import cli
from measure import SWEEPS, VARIANTS
from timing import MATMUL_PRECISIONS

flags.DEFINE_list("configs", list(VARIANTS), "Variants to measure (measure.VARIANTS).")
flags.DEFINE_integer("batch_size", 0, "Batch size (0: each config's own, 128 for MNIST).")
flags.DEFINE_integer("windows", 5, "Timed windows per measurement; the median is reported.")
flags.DEFINE_float("window_s", 1.0, "Approximate length of one timed window in seconds.")
flags.DEFINE_bool("e2e", True, "Also time train_and_evaluate end to end.")
flags.DEFINE_bool(
    "e2e_eval", True, "Also time it with its per-epoch evaluations (the targets leave them out)."
)
flags.DEFINE_integer("e2e_epochs", 3, "Epochs of the end-to-end run.")
flags.DEFINE_float(
    "e2e_epoch_s",
    8.0,
    "Slow variants train end to end on a fraction of MNIST "
    "sized so that an epoch lasts about this long.",
)
flags.DEFINE_enum("peer", "", ["", "torch"], "Also time the PyTorch peer, eager and compiled.")
flags.DEFINE_float("peak_flops", 0.0, "The device's peak FLOP/s, for the utilization column.")
flags.DEFINE_bool(
    "warm_compile", True, "Also time compilation with JAX's persistent cache, empty then filled."
)
flags.DEFINE_list("sweep", [], f"Bare-step sweeps to run: {', '.join(SWEEPS)}.")
flags.DEFINE_enum(
    "matmul_precision",
    "float32",
    list(MATMUL_PRECISIONS),
    "How JAX and the PyTorch peer compute float32 matrix products and convolutions, set "
    "alike for both (their defaults differ on recent NVIDIA GPUs; on CPU both are float32).",
)
flags.DEFINE_string(
    "json",
    "runs/benchmark-%Y%m%d-%H%M%S.json",
    "A new file for the results as JSON, strftime codes expanded ('' for none).",
)


def main(argv):
    del argv
    f = flags.FLAGS
    results = runner.run_benchmark(
        f.configs,
        batch_size=f.batch_size,
        windows=f.windows,
        window_s=f.window_s,
        e2e=f.e2e,
        e2e_eval=f.e2e_eval,
        e2e_epochs=f.e2e_epochs,
        e2e_epoch_s=f.e2e_epoch_s,
        peer=f.peer,
        peak_flops=f.peak_flops,
        warm_compile=f.warm_compile,
        sweeps=tuple(f.sweep),
        json_path=time.strftime(f.json),
        matmul_precision=f.matmul_precision,
    )
    if failed := runner.failures(results):  # a run with error rows is no success
        print(f"error: {len(failed)} measurements failed; the first: {failed[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
