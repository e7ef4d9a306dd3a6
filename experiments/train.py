"""Trains an autoencoder from a config.

    python experiments/train.py --config configs/ae.py:mnist --workdir runs/ae_mnist \
        --config.model.encoder_widths='(256, 32)' --config.num_epochs=5

Starting again in the same workdir resumes from its latest checkpoint.
"""

import os

from absl import flags

from aejax import cli
from aejax.train import train_and_evaluate

_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "ae.py")
cli.define_config(_DEFAULT)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and figures go.", required=True)


def main(argv):
    del argv
    metrics = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    print(" ".join(f"{k}={v:.6g}" for k, v in metrics.items()))


if __name__ == "__main__":
    cli.run(main)
