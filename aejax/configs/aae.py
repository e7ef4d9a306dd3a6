"""Adversarial autoencoder (Makhzani et al., 2015, "Adversarial Autoencoders").

An MLP autoencoder (or, in the `gaussian` presets, an MLP VAE) whose code is pushed towards
a prior by a discriminator on the code.
Each step of the deterministic presets makes the paper's three updates, in order, each with
its own Adam state:

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
- `gaussian`: `digits` with a Gaussian posterior (`model.aae_base` "vae": the
  discriminator judges z = μ + σ·ε) and two updates a step, as pythae's Adversarial_AE:
  the encoder and decoder on "0.5*mse + 0.9*adv_generator", then the discriminator.
    aejax train aae:gaussian --workdir runs/aae_gaussian
  Expected: test/mse_per_pixel 0.0127 (from a sampled code), test/adv_discriminator 1.37,
  in about 12 s.
- `mnist_gaussian`: pythae's MNIST setting of that model (its default MLP 784-512-16 and
  mirror, a 16-256-1 relu discriminator, adversarial weight 0.9), 10 epochs; the zoo's
  `aae` pair (docs/ZOO.md).
    aejax train aae:mnist_gaussian --workdir runs/aae_mnist_gaussian
  Expected: test/mse_per_pixel 0.0109, test/adv_discriminator 1.17, in about 31 s on a
  2-core CPU.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mixture", "mnist", "gaussian", "mnist_gaussian")


def gaussian_posterior(config) -> None:
    """The AAE with a Gaussian posterior and a joint update, pythae's Adversarial_AE: the
    discriminator judges z = μ + σ·ε; one update of the encoder and decoder on ½·mse plus
    0.9·adv_generator (pythae's MNIST adversarial_loss_scale), then one of the
    discriminator."""
    config.model.aae_base = "vae"
    config.loss = "0.5*mse + 0.9*adv_generator"
    config.extra_phases = ("adv_discriminator @ discriminator",)


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "aae"
    # mlp | conv: a deterministic code; vae | conv_vae: a Gaussian posterior (conv and
    # conv_vae need model.latent_dim > 0)
    config.model.aae_base = "mlp"
    config.model.prior = "gaussian"  # gaussian | mixture
    config.model.discriminator_widths = (64, 64)
    config.model.discriminator_activation = "leaky_relu"
    config.loss = "mse"
    # Adam over the discriminator's arrays, whose gradient here is zero, would change
    # nothing but add work (18 more kernels) and optimizer state.
    config.loss_params = "autoencoder"
    config.extra_phases = (
        "adv_discriminator @ discriminator",
        "adv_generator @ autoencoder/encoder",
    )
    if arg in ("digits", "mixture", "gaussian"):
        config.model.encoder_widths = (256, 128, 2 if arg == "mixture" else 8)
        digits_schedule(config, 1e-3)
        if arg == "mixture":
            config.model.prior = "mixture"
        if arg == "gaussian":
            gaussian_posterior(config)
    elif arg == "mnist":
        mnist_schedule(config, 10)
        config.model.encoder_widths = (1000, 1000, 8)
        config.model.discriminator_widths = (256, 256)
    elif arg == "mnist_gaussian":
        # pythae's MNIST setting (examples/scripts/configs/mnist/aae_config.json on its
        # default MLP): 784-512-16 and its mirror, a 16-256-1 relu discriminator.
        mnist_schedule(config, 10)
        config.model.encoder_widths = (512, 16)
        config.model.discriminator_widths = (256,)
        config.model.discriminator_activation = "relu"
        gaussian_posterior(config)
    else:
        raise unknown_preset("aae", arg, PRESETS)
    return config
