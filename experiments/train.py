"""Trains an autoencoder from a config: `aejax train` run from the repository.

    python experiments/train.py --config vae:mnist --workdir runs/vae_mnist \
        --config.model.encoder_widths='(512, 256, 20)' --config.num_epochs=5

Starting again in the same workdir resumes from its latest checkpoint; --start_over moves an
old run aside instead. `--help` lists the flags and the bundled configs with their presets.
"""

import sys

from aejax import commands

if __name__ == "__main__":
    commands.train(sys.argv[1:], prog="experiments/train.py")
