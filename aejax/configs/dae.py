"""Denoising autoencoder (Vincent et al., 2010, "Stacked Denoising Autoencoders").

The model sees a corrupted input x̃ (`config.corruption`: gaussian with `sigma`, masking or
salt_and_pepper with `fraction`, drawn with a key folded from the step) and the loss compares
its output with the clean x. The code is overcomplete (one layer of 1024 ReLU units), so
without the noise it could learn the identity. test/* metrics are on clean test inputs.

- `digits` (default): scikit-learn's embedded 8x8 digits, Gaussian noise σ = 0.3, 100 epochs.
    aejax train dae --workdir runs/dae_digits
  Expected: test/mse_per_pixel 0.0078 (on clean test digits), in about 8 s on a 2-core CPU.

- `mnist`: MNIST (IDX files in $AEJAX_DATA_DIR/mnist), 3 epochs.
    aejax train dae:mnist --workdir runs/dae_mnist
  Expected: test/mse_per_pixel 0.0074 (on clean test images), in about 27 s.

Other noises: `--config.corruption.name=masking --config.corruption.fraction=0.25`, or
`--config.corruption.name=salt_and_pepper --config.corruption.fraction=0.1`.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.encoder_widths = (1024,)
    config.model.code_activation = "relu"
    config.corruption.name = "gaussian"
    config.corruption.sigma = 0.3
    config.loss = "mse"
    if arg == "digits":
        digits_schedule(config)
    elif arg == "mnist":
        mnist_schedule(config, 3)
    else:
        raise unknown_preset("dae", arg, PRESETS)
    return config
