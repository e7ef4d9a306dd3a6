"""Trains an autoencoder from a config.

    python experiments/train.py --config configs/ae.py:mnist --workdir runs/ae_mnist \
        --config.model.encoder_widths='(256, 32)' --config.num_epochs=5

Starting again in the same workdir resumes from its latest checkpoint; --start_over moves an
old run aside instead.
"""

import os

from absl import flags

from aejax import cli
from aejax.train import Experiment, train_and_evaluate
from aejax.train.workdir import move_run_aside

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "ae.py")
cli.define_config(_DEFAULT)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and figures go.", required=True)
flags.DEFINE_bool(
    "start_over",
    False,
    "Move the run in WORKDIR aside (to WORKDIR.old-N) and start a new run there; nothing "
    "is deleted. The config is checked first, and only a run's workdir is moved.",
)


def main(argv):
    del argv
    config, workdir = flags.FLAGS.config, flags.FLAGS.workdir
    if flags.FLAGS.start_over:
        Experiment.from_config(config, workdir)  # every config error before anything moves
        if moved := move_run_aside(workdir):
            print(f"moved the old run to {moved}")
    _, metrics = train_and_evaluate(config, workdir)
    print(" ".join(f"{k}={v:.6g}" for k, v in metrics.items()))


if __name__ == "__main__":
    cli.run(main)
