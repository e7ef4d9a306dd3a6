"""Wasserstein autoencoder, WAE-MMD (Tolstikhin, Bousquet, Gelly & Schölkopf, 2018,
"Wasserstein Auto-Encoders", ICLR 2018, Algorithm 2).

A deterministic MLP autoencoder whose loss is the squared reconstruction error plus λ times
the MMD between the batch's codes and draws from the prior N(0, I): the recipe
"mse + λ*mmd_imq" (or `mmd_rbf`; `aejax.losses.mmd`). The kernel scale C = 2·d·σ² with
σ = `config.loss_options.mmd_imq.bandwidth`. The model declares no prior, so the report
samples from a Gaussian mixture fitted to the training codes (`aejax.samplers`).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-8 and its mirror, IMQ kernel,
  λ = 10, 100 epochs.
    aejax train wae --workdir runs/wae_digits
  Expected: test/mse (squared error per image) 0.937, test/mmd_imq 0.0034, test/loss
  0.971 after 2200 steps; about 9 s on a 2-core CPU.

- `rbf`: `digits` with the Gaussian kernel ("mse + 10*mmd_rbf").
  Expected: test/mse 0.866, test/mmd_rbf 0.00066, test/loss 0.872; about 7 s.

- `mnist`: pythae 0.1.2's MNIST WAE (examples/scripts/configs/mnist/wae_config.json and
  its default MLP): 784-512-16 encoder and its mirror with a sigmoid output, IMQ kernel with
  pythae's seven scales, λ = 10, σ = 1, Adam at a constant 1e-3, batch 100, 100 epochs.
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train wae:mnist --workdir runs/wae_mnist
  Measured with --config.num_epochs=3 (1800 steps), not the 100 epochs: test/mse 9.47,
  test/mmd_imq 0.036, test/loss 9.83, in 137 s (start-up included) on the shared 2-core
  CPU; with --config.num_epochs=10 (6000 steps): test/mse 7.80, test/mmd_imq 0.031,
  test/loss 8.10, in 215 s. 100 epochs were not run. Times on this shared machine vary
  about threefold with the other jobs' load.
"""

import ml_collections

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

PRESETS = ("digits", "rbf", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("wae", arg, PRESETS)
    config = base_config()
    config.model.name = "mlp"
    kernel = "mmd_rbf" if arg == "rbf" else "mmd_imq"
    config.loss = f"mse + 10*{kernel}"
    config.loss_options[kernel] = ml_collections.ConfigDict({"bandwidth": 1.0})
    if arg == "mnist":
        pythae_mnist(config)
    else:
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config


def pythae_mnist(config: ml_collections.ConfigDict, num_epochs: int = 100) -> None:
    """pythae's MNIST setting: its default MLP (784-512-16, mirrored, sigmoid output) and
    trainer (Adam, constant learning rate 1e-3, batch 100: 600 steps an epoch)."""
    mnist_schedule(config, num_epochs)
    config.model.encoder_widths = (512, 16)
    config.batch_size = 100
    config.log_every_steps = 50
    config.steps_per_dispatch = 50
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule = "constant"
