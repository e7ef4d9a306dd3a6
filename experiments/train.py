"""Trains an autoencoder from a config.

    python experiments/train.py --config configs/ae.py:mnist --workdir runs/ae_mnist \
        --config.model.encoder_widths='(256, 32)' --config.num_epochs=5

Starting again in the same workdir resumes from its latest checkpoint.
"""

import os

from absl import flags
from ml_collections import config_flags

from aejax import cli
from aejax.train import train_and_evaluate

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "ae.py")
config_flags.DEFINE_config_file("config", _DEFAULT, "Experiment config file[:preset].",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and figures go.", required=True)


def main(argv):
    if len(argv) > 1:
        raise cli.AejaxError(f"unexpected arguments: {' '.join(argv[1:])}")
    metrics = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    print(" ".join(f"{k}={v:.6g}" for k, v in metrics.items()))


if __name__ == "__main__":
    cli.run(main)
