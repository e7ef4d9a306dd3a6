"""Colorization: a convolutional autoencoder that maps gray images to colour ones.

The input is the image's BT.601 luminance replicated over 3 channels (the `grayscale`
corruption), the target the colour image, the loss `chroma_mse` (the squared error of
the YUV chroma alone; the output's luminance is replaced by the input's when it is used):
the denoising autoencoder's recipe with colour taken away instead of noise added, and
the regression baseline of Zhang, Isola & Efros (2016), "Colorful Image Colorization",
who predict only chroma given luminance (their classification loss is not used here).
Colour is judged by PSNR and by Hasler & Süsstrunk's (2003) colourfulness
(`aejax.color.colourfulness`); `experiments/app_colorize.py` scores it against the gray
input and the training patches' mean chroma on photos the model never saw.

The trainer's own test/ and valid/ numbers feed the model the colour image (evaluation
applies no corruption), so they say little here; the colorization numbers are the row's.

Presets:

- `tiny` (default): 400 training patches, features (8, 16), 60 steps of batch 32: for
  tests. Measured: validation chroma_mse of its colorings 27.6 per patch against 36.7 for
  the gray input (zero chroma) and 35.0 for the untrained model, in 72 s on the 2-core
  CPU (loaded: load average about 20).
    aejax train colorize:tiny --workdir runs/colorize_tiny
- `patches`: 32x32 patches of the seven photographs shipped with scikit-learn and
  scikit-image (`aejax.data.photos`: 10,000 training patches from five photos, a tenth
  held out for validation; 1,000 test patches from the two others), conv features
  (32, 64, 128) (a 4x4x128 code), batch 64, Adam 1e-3 cosine, 1,000 steps.
    aejax train colorize:patches --workdir runs/colorize_patches
    python experiments/results.py --rows colorize --workdir runs/results
  Measured by the row (its chroma on the input's luminance): validation PSNR 25.32 dB
  (gray input 21.29, mean chroma 20.54), but on the held-out photos test PSNR 22.96 dB
  against 23.44 for the gray input and 24.74 for the mean chroma; colourfulness 31.7
  against 25.9 for the true test patches. Trained in 700 s on the 2-core CPU (loaded:
  load average about 19 to 22).
- `cifar10`: the same model on TFDS's CIFAR-10 (a prepared `cifar10` in data_dir and the
  `tfds` extra; 10 epochs, 5% of the training images held out). Not run here (no network
  for the download); tested on tfds.testing.mock_data.
    aejax train colorize:cifar10 --workdir runs/colorize_cifar10
"""

from aejax.config import base_config
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("tiny", "patches", "cifar10")


def get_config(arg: str = "tiny"):
    if arg not in PRESETS:
        raise unknown_preset("colorize", arg, PRESETS)
    config = base_config()
    config.data.source = "color_patches"
    config.data.valid_fraction = 0.1
    config.model.name = "conv"
    config.model.features = (32, 64, 128)  # 32 -> 16 -> 8 -> 4: a 4x4x128 code
    config.model.code_activation = "relu"
    config.corruption.name = "grayscale"
    config.loss = "chroma_mse"  # the output's luminance is replaced by the input's
    config.batch_size = 64
    config.optimizer.learning_rate = 1e-3
    config.log_every_steps = 50
    config.steps_per_dispatch = 1  # convolutions on CPU: one unrolled step per call
    if arg == "tiny":
        config.data.max_train, config.data.max_test = 400, 100
        config.model.features = (8, 16)
        config.batch_size = 32
        config.num_steps = 60
        config.eval_every_steps = 60
        config.checkpoint_every_steps = 60
    elif arg == "patches":
        config.num_steps = 1_000
        config.eval_every_steps = 500
        config.checkpoint_every_steps = 500
    else:  # cifar10
        config.data.source = "tfds"
        config.data.name = "cifar10"
        config.data.valid_fraction = 0.05
        config.num_epochs = 10
    return config
