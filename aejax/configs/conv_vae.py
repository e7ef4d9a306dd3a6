"""Convolutional VAE: the conv encoder and decoder of aejax/configs/conv_ae.py around the Gaussian
latent of aejax/configs/vae.py (the same VAE module; the encoder's Dense bottleneck outputs the
means and log-variances). β-VAE: `--config.loss="bce + 4.0*kl_normal"`. test/loss is the
test negative ELBO in nats per image (one z per image, sampled with a fixed key).

Presets (the part after the colon):

- `digits` (default): 8x8 digits, Conv 16, pool, Conv 32, pool, Dense to an 8-d Gaussian
  latent; bce + kl_normal, 100 epochs.
    aejax train conv_vae --workdir runs/conv_vae_digits
  Expected: test/loss (negative ELBO) 24.6 nats (test/bce 21.5, test/kl_normal 3.1), in
  about 20 s on a 2-core CPU.

- `mnist`: MNIST, Conv 32, pool, Conv 64, pool (7x7x64), Dense to a 20-d Gaussian latent;
  bce + kl_normal, 10 epochs. Needs $AEJAX_DATA_DIR/mnist.
    aejax train conv_vae:mnist --workdir runs/conv_vae_mnist
  Expected (`mnist`, 3 of its 10 epochs: `--config.num_epochs=3`): test/loss (negative
  ELBO) 113.8 nats (test/bce 87.9, test/kl_normal 25.9), in about 208 s on a 2-core CPU.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "conv_vae"
    config.model.features = (16, 32)
    config.model.latent_dim = 8  # the Gaussian latent's size (0: a latent feature map)
    config.model.kernel_size = 3
    config.model.x_logvar = "none"  # none | scalar | pixel: a learned Gaussian log-variance
    config.model.sample_at_eval = True
    config.loss = "bce + kl_normal"
    if arg == "digits":
        digits_schedule(config)
    elif arg == "mnist":
        mnist_schedule(config, 10)
        config.model.features = (32, 64)
        config.model.latent_dim = 20
    else:
        raise unknown_preset("conv_vae", arg, PRESETS)
    return config
