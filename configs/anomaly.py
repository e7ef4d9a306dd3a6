"""Autoencoders for anomaly detection (experiments/anomaly.py; protocols in aejax/anomaly.py).

Presets (the part after the colon):

- `mnist` (default): one-class MNIST (Ruff et al., 2018): one MLP AE per digit.
    python experiments/anomaly.py --protocol mnist_one_class \
        --config configs/anomaly.py:mnist --workdir runs/anomaly_mnist
  Expected: TODO

- `tabular`: the eight ADBench classical sets, one-class.
    python experiments/anomaly.py --protocol adbench \
        --config configs/anomaly.py:tabular --workdir runs/anomaly_adbench
  Expected: TODO
"""

from aejax.config import base_config, mnist_schedule


def get_config(arg: str = "mnist"):
    config = base_config()
    config.data.valid_fraction = 0.1
    if arg == "mnist":
        mnist_schedule(config, 20)
        config.model.encoder_widths = (512, 256, 128, 32)
        config.log_every_steps = 10
        config.steps_per_dispatch = 10
    elif arg == "tabular":
        config.data.source = "npz"
        config.data.name = "adbench_classical/6_cardio"
        config.model.encoder_widths = (64, 32, 2)
        config.model.output_activation = "linear"
        config.num_epochs = 20
    else:
        raise ValueError(f"configs/anomaly.py: unknown preset {arg!r}; valid: mnist, tabular")
    return config
