"""Prints the test reconstruction metrics of a trained run.

python experiments/evaluate.py --workdir runs/ae_mnist [--step 4680]
"""

from absl import flags

from aejax import cli
from aejax.evaluate import evaluate_run

flags.DEFINE_string("workdir", None, "The run's workdir.", required=True)
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")


def main(argv):
    del argv
    metrics = evaluate_run(flags.FLAGS.workdir, flags.FLAGS.step)
    for k, v in metrics.items():
        print(f"{k:28s} {v:.6g}")


if __name__ == "__main__":
    cli.run(main)
