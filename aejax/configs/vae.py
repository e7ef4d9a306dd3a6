"""Variational autoencoder (Kingma & Welling, 2014) and β-VAE (Higgins et al., 2017).

The recipe is a likelihood plus the KL term; β is the KL term's weight, so a β-VAE is this
config with `--config.loss="bce + 4.0*kl_normal"` (or the `beta` preset). test/loss is the
test negative ELBO in nats per image, estimated with one z per image (the eval step samples
z with a fixed key; `--config.model.sample_at_eval=False` evaluates at z = μ instead).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian), Bernoulli
  likelihood (bce), 100 epochs.
    aejax train vae --workdir runs/vae_digits
  Expected: test/loss (negative ELBO) 23.9 nats (test/bce 20.6, test/kl_normal 3.3), in
  about 8 s on a 2-core CPU.

- `mnist`: MLP 784-512-256-(20 Gaussian), bce + kl_normal, 10 epochs. Needs MNIST's IDX
  files in $AEJAX_DATA_DIR/mnist (or --config.data.data_dir=...).
    aejax train vae:mnist --workdir runs/vae_mnist
  Expected: test/loss (negative ELBO) 103.1 nats (test/bce 80.2, test/kl_normal 22.9)
  after 10 epochs, in about 75 s on a 2-core CPU.

- `beta`: `mnist` with β = 4 ("bce + 4.0*kl_normal"): a smaller KL, blurrier reconstructions.
    aejax train vae:beta --workdir runs/vae_beta
  Expected: test/kl_normal 8.66 (test/bce 110.5; test/loss, with 4 x KL, 145.2), in about
  116 s on a 2-core CPU.

- `gaussian`: `mnist` with a Gaussian likelihood whose variance is one learned scalar
  (model.x_logvar="scalar", loss "gaussian_nll_learned + kl_normal"). For a fixed variance
  use loss "gaussian_nll + kl_normal" and --config.loss_options.gaussian_nll.variance=0.1.
    aejax train vae:gaussian --workdir runs/vae_gaussian
  Expected: test/loss -107.0 nats (a density, so negative; test/kl_normal 19.9,
  test/mse_per_pixel 0.0165), in about 76 s.

- `iwae`: `mnist` trained on the importance-weighted bound (Burda et al., 2015, "Importance
  Weighted Autoencoders") with k = 5 latent samples per image: model.num_samples=5 and
  the recipe "iwae_bce", whose test/iwae_bce is the test bound at k = 5 (on grey-level
  MNIST the Bernoulli "likelihood" is not normalized; see aejax/configs/results.py's
  `vae_binarized_iwae` for binarized MNIST). About twice the time of `mnist` a step.
    aejax train vae:iwae --workdir runs/vae_iwae
  Expected: test/iwae_bce 99.7 nats (test/mse_per_pixel 0.0144), in about 175 s.

Sampling from the prior of a trained run: `aejax.sampling.sample_prior(model, variables,
key, n)`.
"""

import ml_collections

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist", "beta", "gaussian", "iwae")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "vae"
    config.model.x_logvar = "none"  # none | scalar | pixel: a learned Gaussian log-variance
    config.model.sample_at_eval = True
    config.model.num_samples = 1  # latent samples per example (k of the IWAE bound)
    config.loss = "bce + kl_normal"
    config.loss_options.gaussian_nll = ml_collections.ConfigDict({"variance": 1.0})
    if arg == "digits":
        config.model.encoder_widths = (128, 64, 8)  # hidden widths, then the latent size
        digits_schedule(config)
    elif arg in ("mnist", "beta", "gaussian", "iwae"):
        mnist_schedule(config, 10)
        config.model.encoder_widths = (512, 256, 20)
        if arg == "beta":
            config.loss = "bce + 4.0*kl_normal"
        elif arg == "iwae":
            config.model.num_samples = 5
            config.loss = "iwae_bce"
        elif arg == "gaussian":
            config.model.x_logvar = "scalar"
            config.loss = "gaussian_nll_learned + kl_normal"
    else:
        raise unknown_preset("vae", arg, PRESETS)
    return config
