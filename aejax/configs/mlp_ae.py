"""Undercomplete, deep and overcomplete MLP autoencoders.

Presets (the part after the colon) name an architecture; add `_mnist` for MNIST (IDX files
in $AEJAX_DATA_DIR/mnist), leave it off for scikit-learn's embedded 8x8 digits (no
download; the input is then 64 wide instead of 784). The seeds' deep symmetric
784-512-256-128-32 AE is `ae:mnist`.

- `shallow` (default): one layer, 784-32 code, ReLU code, sigmoid output, MSE.
    aejax train mlp_ae:shallow_mnist --workdir runs/shallow
  Expected (`shallow`, digits 64-32, 100 epochs): test/mse_per_pixel 0.0063, in about 5 s
  on a 2-core CPU.
  Expected (`shallow_mnist`, 3 epochs): test/mse_per_pixel 0.0308 (test/sq_err_per_image
  24.2), in about 5 s.

- `hinton`: the architecture of Hinton & Salakhutdinov (2006), "Reducing the Dimensionality
  of Data with Neural Networks": 784-1000-500-250-30, here with ReLU hidden units, a linear
  30-unit code, logistic output and MSE, trained with Adam instead of their logistic units,
  RBM pretraining and cross-entropy fine-tuning. The reproduction of their 3.00 test
  error is the `hinton` row of aejax/configs/results.py (ten presets chosen on validation data;
  the chosen one adds input noise and weight decay; docs/RESULTS.md).
    aejax train mlp_ae:hinton_mnist --workdir runs/hinton
  Expected (`hinton`, digits, 50 epochs): test/mse_per_pixel 0.0073, in about 20 s.
  Expected (`hinton_mnist`, 3 epochs): test/mse_per_pixel 0.0098 (test/sq_err_per_image
  7.70), in about 44 s.

- `overcomplete`: a 784-1024 code, 1.3x the input, which could copy the input; an L1
  activity penalty on its ReLU units ("mse + 0.01*l1_activity") keeps it sparse instead.
  The same code regularized by noise is `aejax/configs/dae.py`, by KL sparsity or a top-k code
  `aejax/configs/sparse_ae.py`, by the Jacobian penalty `aejax/configs/cae.py`.
    aejax train mlp_ae:overcomplete_mnist --workdir runs/oc
  Expected (`overcomplete`, digits 64-1024, 100 epochs): test/mse_per_pixel 0.0026,
  test/l1_activity 14.9, in about 7 s.
  Expected (`overcomplete_mnist`, 3 epochs): test/mse_per_pixel 0.0030, test/l1_activity
  216, in about 23 s.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

ARCHITECTURES = {
    # name: (encoder widths, hidden activation, code activation, loss, digits epochs)
    "shallow": ((32,), "relu", "relu", "mse", 100),
    "hinton": ((1000, 500, 250, 30), "relu", "linear", "mse", 50),
    "overcomplete": ((1024,), "relu", "relu", "mse + 0.01*l1_activity", 100),
}


# The presets, the default first (`aejax list` shows them).
PRESETS = tuple(f"{a}{d}" for a in ARCHITECTURES for d in ("", "_mnist"))


def get_config(arg: str = "shallow"):
    name, _, data = arg.partition("_")
    if name not in ARCHITECTURES or data not in ("", "mnist"):
        raise unknown_preset("mlp_ae", arg, PRESETS)
    widths, activation, code_activation, loss, digits_epochs = ARCHITECTURES[name]
    config = base_config()
    config.model.encoder_widths = widths
    config.model.activation = activation
    config.model.code_activation = code_activation
    config.loss = loss
    if data == "mnist":
        mnist_schedule(config, 3)
    else:
        digits_schedule(config)
        config.num_epochs = digits_epochs
    return config
