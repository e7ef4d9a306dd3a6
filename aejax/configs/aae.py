"""Adversarial autoencoder (Makhzani et al., 2015, "Adversarial Autoencoders").

An MLP autoencoder whose code is pushed towards a prior by a discriminator on the code.
Each step makes the paper's three updates, in order, each with its own Adam state:

1. reconstruction: `config.loss` ("mse") on the autoencoder's parameters
   (`config.loss_params`; the discriminator does not enter the reconstruction);
2. discriminator: "adv_discriminator @ discriminator", prior samples against codes;
3. generator: "adv_generator @ autoencoder/encoder", the encoder learns to fool it.

test/adv_discriminator near 2·log 2 = 1.39 nats means the discriminator can no longer tell
codes from prior samples. Sampling from the prior of a trained run:
`aejax.sampling.sample_prior(model, variables, key, n)`.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, 64-256-128-8 code, Gaussian prior, 100
  epochs.
    aejax train aae --workdir runs/aae_digits
  Expected: test/mse_per_pixel 0.0132, test/adv_discriminator 1.35 (chance: 1.39), in
  about 20 s on a 2-core CPU.
- `mixture`: `digits` with a 2-D code and Makhzani's prior of 10 Gaussians on a circle.
    aejax train aae:mixture --workdir runs/aae_mixture
  Expected: test/mse_per_pixel 0.0380, test/adv_discriminator 1.29, in about 16 s.
- `mnist`: 784-1000-1000-8, Gaussian prior, 10 epochs (MNIST IDX files in
  $AEJAX_DATA_DIR/mnist).
    aejax train aae:mnist --workdir runs/aae_mnist
  Expected: test/mse_per_pixel 0.0189, test/adv_discriminator 1.36 (chance: 1.39), in
  about 283 s on a 2-core CPU.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mixture", "mnist")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "aae"
    config.model.aae_base = "mlp"  # mlp | conv (conv needs model.latent_dim > 0)
    config.model.prior = "gaussian"  # gaussian | mixture
    config.model.discriminator_widths = (64, 64)
    config.loss = "mse"
    # Adam over the discriminator's arrays, whose gradient here is zero, would change
    # nothing but add work (18 more kernels) and optimizer state.
    config.loss_params = "autoencoder"
    config.extra_phases = (
        "adv_discriminator @ discriminator",
        "adv_generator @ autoencoder/encoder",
    )
    if arg in ("digits", "mixture"):
        config.model.encoder_widths = (256, 128, 2 if arg == "mixture" else 8)
        digits_schedule(config, 1e-3)
        if arg == "mixture":
            config.model.prior = "mixture"
    elif arg == "mnist":
        mnist_schedule(config, 10)
        config.model.encoder_widths = (1000, 1000, 8)
        config.model.discriminator_widths = (256, 256)
    else:
        raise unknown_preset("aae", arg, PRESETS)
    return config
