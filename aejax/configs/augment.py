"""Generative models for data augmentation: their samples, labelled, added to 100 or 1000
labelled MNIST images train the small classifier of `aejax.features`
(experiments/app_augment.py, the `augmentation` row of docs/RESULTS.md). The models are the
VAE (Kingma & Welling, 2014) and the adversarial AE (Makhzani et al., 2015); the labels come
from a Gaussian per class on the labelled images' codes
(`aejax.samplers.ClassConditionalGaussianSampler`), or are the confident predictions of a
classifier trained on the labelled images (pseudo-labels, Lee, 2013, "Pseudo-Label: The
Simple and Efficient Semi-Supervised Learning Method", here on generated images).

The models are `vae.py:mnist` and `aae.py:mnist` on a shorter budget, trained without labels
on MNIST's 60,000 training images (the semi-supervised setting: every training image is
available, its label is not). Measured on the 2-core CPU shared with about ten other jobs
(load average 11 to 20):

- `vae` (default): `vae.py:mnist`, MLP 784-512-256-(20 Gaussian), bce + kl_normal, 2 epochs.
    aejax train augment:vae --workdir runs/augment_vae
  Expected: test/loss 119.31 (negative ELBO in nats; test/kl_normal 20.2,
  test/mse_per_pixel 0.0212), in 71 s.
- `aae`: `aae.py:mnist`, 784-1000-1000-8, Gaussian prior, 2 epochs.
    aejax train augment:aae --workdir runs/augment_aae
  Expected: test/mse_per_pixel 0.0281, test/adv_discriminator 1.396 (chance: 1.386), in
  306 s.
- `tiny`: `vae` on the first 600 training images for 400 steps of 32 (for tests).
    aejax train augment:tiny --workdir runs/augment_tiny
  Expected: test/loss 151.58 (test/mse_per_pixel 0.0384) on the first 300 test images, in
  63 s of wall time, most of it compiling.

    python experiments/results.py --rows augmentation --workdir runs/results

trains `vae` and `aae` and runs the augmentation protocol (experiments/app_augment.py).
"""

from aejax.configs import aae, unknown_preset, vae

# The presets, the default first (`aejax list` shows them).
PRESETS = ("vae", "aae", "tiny")


def get_config(arg: str = "vae"):
    if arg in ("vae", "tiny"):
        config = vae.get_config("mnist")
        config.num_epochs = 2
        if arg == "tiny":
            config.data.max_train = 600
            config.data.max_test = 300
            config.batch_size = 32
            config.num_epochs = 0
            config.num_steps = 400
            config.eval_every_steps = 400
            config.checkpoint_every_steps = 400
            config.log_every_steps = 100
            config.steps_per_dispatch = 100
    elif arg == "aae":
        config = aae.get_config("mnist")
        config.num_epochs = 2
    else:
        raise unknown_preset("augment", arg, PRESETS)
    return config
