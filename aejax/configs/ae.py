"""MLP autoencoder.

Presets (the part after the colon):

- `digits` (default): scikit-learn's embedded 8x8 digits, 64-128-64-16 code, MSE, 100 epochs.
    aejax train ae --workdir runs/ae_digits
  Expected: test/mse_per_pixel 0.0065 on the 359 test digits, in about 6 s on a 2-core
  CPU (start-up and compilation included).

- `mnist`: the seeds' deep symmetric 784-512-256-128-32 AE, ReLU, sigmoid output, MSE.
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist (or --config.data.data_dir=...).
    aejax train ae:mnist --workdir runs/ae_mnist
  Expected: test/mse_per_pixel 0.0070 (test/sq_err_per_image 5.53) after 10 epochs, in
  about 64 s on a 2-core CPU.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    config = base_config()
    if arg == "digits":
        config.model.encoder_widths = (128, 64, 16)
        digits_schedule(config)
    elif arg == "mnist":
        mnist_schedule(config, 10)
        config.model.encoder_widths = (512, 256, 128, 32)
    else:
        raise unknown_preset("ae", arg, PRESETS)
    return config
