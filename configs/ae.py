"""MLP autoencoder.

Presets (the part after the colon):

- `digits` (default): scikit-learn's embedded 8x8 digits, 64-128-64-16 code, MSE, 100 epochs.
    python experiments/train.py --config configs/ae.py --workdir runs/ae_digits
  Expected: eval/mse_per_pixel 0.0066 on the 359 test digits, in about 10 s on a 2-core
  CPU (half of it start-up and compilation).

- `mnist`: the seeds' deep symmetric 784-512-256-128-32 AE, ReLU, sigmoid output, MSE.
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist (or --config.data.data_dir=...).
    python experiments/train.py --config configs/ae.py:mnist --workdir runs/ae_mnist
  Expected: eval/mse_per_pixel 0.0072 (per-image squared error 5.6) after 10 epochs, about
  6 s per epoch and 65 s in all on a 2-core CPU.
"""

from aejax.config import base_config


def get_config(arg: str = "digits"):
    config = base_config()
    if arg == "digits":
        config.model.encoder_widths = (128, 64, 16)
        config.batch_size = 64
        config.num_epochs = 100
        config.optimizer.learning_rate = 3e-3
        config.checkpoint_every_steps = 220  # every 10 epochs of 22 steps
        config.log_every_steps = 22
        config.steps_per_dispatch = 22
    elif arg == "mnist":
        config.data.source = "idx"
        config.data.name = "mnist"
        config.model.encoder_widths = (512, 256, 128, 32)
        config.batch_size = 128
        config.num_epochs = 10
        config.log_every_steps = 39  # 12 logs per epoch of 468 steps
        config.steps_per_dispatch = 39
    else:
        raise ValueError(f"configs/ae.py: unknown preset {arg!r}; valid: digits, mnist")
    return config
