"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, 2016, "Autoencoding beyond pixels using
a learned similarity metric"), with pythae 0.1.2's losses and hyperparameters.

A VAE and a discriminator on images (`model.name = "vae_gan"`); the reconstruction error is
the Gaussian NLL of the discriminator's features at `model.reconstruction_layer`
(`aejax.losses.vaegan`). Each step makes three updates, in order, each with its own Adam
state:

1. encoder: "kl_normal + feature_nll" on "vae/encoder" (`config.loss_params`);
2. decoder: "(1−s)*feature_nll_decoder + s*gan_decoder @ vae/decoder", s pythae's
   adversarial_loss_scale (the paper's γ is (1 − s)/s);
3. discriminator: "gan_discriminator @ discriminator".

The decoder's and discriminator's gradients are gated by pythae's equilibrium (0.68) and
margin (0.4), `config.loss_options.<term>.equilibrium/margin`. test/gan_discriminator is
the discriminator's cross-entropy: 2·log 2 = 1.39 nats (real and prior decodings) plus
r·log 2 for the reconstructions at chance. The report samples the N(0, I) prior; there are
no likelihood bounds (the features are no pixel density).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-(8 Gaussian) and mirror, a
  discriminator of two 4x4 stride-2 convolutions (32 and 64 channels, relu) whose second
  layer (2x2x64) gives the features, pythae's s = 0.8, the reconstructions as fakes (r = 1,
  the paper), Adam at 3e-3, 100 epochs. (A dense discriminator, 128-64 or pythae's
  single 256 layer, let the KL win: test/kl_normal 0.4 to 0.9 and reconstructions of other
  digits, test/mse_per_pixel 0.10.)
    aejax train vae_gan --workdir runs/vae_gan_digits
  Expected: test/mse_per_pixel 0.0404 (test/feature_nll 10.54, test/kl_normal 6.05,
  test/gan_discriminator 1.32 against 2.08 at chance) after 2200 steps, in 246 s wall on
  the shared 2-core CPU while other jobs kept it about 9 times oversubscribed.

- `mnist`: pythae 0.1.2's MNIST VAE-GAN (examples/scripts/configs/mnist/vaegan_config.json:
  latent 16, s = 0.8, reconstruction layer 3, margin 0.4, equilibrium 0.68; pythae's loss
  leaves the reconstructions out of the discriminator's, r = 0). Its default MLP
  784-512-(16 Gaussian) and mirror; the discriminator is the one pythae's MNIST script
  pairs with that config (layer 3 needs it: pythae's default MLP discriminator has 2
  layers), 4x4 stride-2 convolutions of 128 (relu), 256 (tanh), 512 (relu) and 1024 (relu)
  channels and a logit; Adam at a constant 1e-3, batch 100, 100 epochs. Needs MNIST's IDX
  files in $AEJAX_DATA_DIR/mnist.
    aejax train vae_gan:mnist --workdir runs/vae_gan_mnist
  Not measured: on the shared 2-core CPU its first 10 steps had not finished after 3
  minutes of CPU time (four convolutions of up to 1024 channels on three batches a
  step); meant for a GPU.

- `mnist_mlp`: `mnist` with pythae's default MLP discriminator (784-256-1, relu), whose
  hidden layer (1) gives the features.
    aejax train vae_gan:mnist_mlp --workdir runs/vae_gan_mnist_mlp
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/mse_per_pixel
  0.0899 (test/feature_nll 27.0, test/kl_normal 8.24, test/gan_discriminator 0.544 against
  1.39 at chance: the discriminator wins), reconstructions still speckled blobs; 179 s
  wall (38 s of CPU) on the shared 2-core CPU. 100 epochs were not run.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist", "mnist_mlp")
MNIST_DISCRIMINATOR = ("conv:128:relu", "conv:256:tanh", "conv:512:relu", "conv:1024:relu")


def recipes(config: ml_collections.ConfigDict, s: float, reconstructed: float) -> None:
    """The three updates' recipes and the gated terms' options (pythae's equilibrium and
    margin; r = `reconstructed`, the weight of the reconstructions as fakes)."""
    config.loss = "kl_normal + feature_nll"
    config.loss_params = "vae/encoder"
    config.extra_phases = (
        f"{1 - s:g}*feature_nll_decoder + {s:g}*gan_decoder @ vae/decoder",
        "gan_discriminator @ discriminator",
    )
    gate = {"equilibrium": 0.68, "margin": 0.4}
    config.loss_options.feature_nll_decoder = ml_collections.ConfigDict(gate)
    for term in ("gan_decoder", "gan_discriminator"):
        config.loss_options[term] = ml_collections.ConfigDict(
            {**gate, "reconstructed": reconstructed}
        )


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("vae_gan", arg, PRESETS)
    config = base_config()
    config.model.name = "vae_gan"
    config.model.vae_base = "vae"  # vae (MLP) | conv_vae
    config.model.sample_at_eval = True
    if arg in ("mnist", "mnist_mlp"):
        wae.pythae_mnist(config)
        recipes(config, s=0.8, reconstructed=0.0)
        if arg == "mnist":
            config.model.discriminator_layers = MNIST_DISCRIMINATOR
            config.model.reconstruction_layer = 3
        else:  # pythae's default MLP discriminator, its hidden layer
            config.model.discriminator_layers = ("dense:256:relu",)
            config.model.reconstruction_layer = 1
    else:
        config.model.encoder_widths = (128, 8)
        config.model.discriminator_layers = ("conv:32:relu", "conv:64:relu")
        config.model.reconstruction_layer = 2
        recipes(config, s=0.8, reconstructed=1.0)
        digits_schedule(config)
    return config
