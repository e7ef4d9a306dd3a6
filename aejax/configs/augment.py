"""Generative models for data augmentation: their samples, labelled, added to 100 or 1000
labelled MNIST images train the small classifier of `aejax.features`
(experiments/app_augment.py, the `augmentation` row of docs/RESULTS.md).

The models are `vae.py:mnist` and `aae.py:mnist` on a shorter budget, trained without labels
on MNIST's 60,000 training images (the semi-supervised setting: every training image is
available, its label is not):

- `vae` (default): `vae.py:mnist`, MLP 784-512-256-(20 Gaussian), bce + kl_normal, 2 epochs.
    aejax train augment:vae --workdir runs/augment_vae
- `aae`: `aae.py:mnist`, 784-1000-1000-8, Gaussian prior, 2 epochs.
    aejax train augment:aae --workdir runs/augment_aae
- `tiny`: `vae` on the first 600 training images for 400 steps of 32 (for tests: seconds).

    python experiments/results.py --rows augmentation --workdir runs/results

trains both and runs the augmentation protocol (experiments/app_augment.py).
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
