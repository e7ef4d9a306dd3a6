"""Watermark removal: a denoising convolutional autoencoder trained on watermarked images.

Each training batch is stamped with the `watermark` corruption (aejax.watermark): per image
a text of three random characters of a 5x7 bitmap font or a logo (ring, cross, bars), its
height (text) or side (logo) 0.3 to 0.6 of the image's, at a random place, blended toward
white with opacity 0.3 to 0.7. The loss compares the output with the clean image, so the
model learns to remove the stamp without being told where it is (the denoising AE of
Vincent et al., 2010, with a structured corruption). The model is the conv AE of
configs/conv_ae.py (3x3 convs 16 and 32, 2x2 pooling, a mirrored decoder).
test/* metrics are on clean test inputs; `experiments/app_watermark.py` (the results row
`watermark`) scores stamped test images against scikit-image's biharmonic inpainting
given the true mask.

Options: `--config.corruption.kind=text|logo|either|both`, `value=white|black|random`,
`opacity=(0.3,0.7)`, `scale=(0.3,0.6)`, `length=3`.

- `digits` (default): the tiny preset on scikit-learn's 8x8 digits, 20 epochs; one
  character, 0.6 to 0.9 of the image's height.
    aejax train watermark --workdir runs/watermark_digits
  Expected: test/mse_per_pixel 0.0257 (on clean test digits), in about 77 s on a 2-core
  CPU loaded by other jobs (load average 21).

- `mnist`: MNIST (IDX files in $AEJAX_DATA_DIR/mnist), 5k images held out for validation,
  4 epochs at batch 64 (3,436 steps).
    aejax train watermark:mnist --workdir runs/watermark_mnist
  Expected: test/mse_per_pixel 0.0050 (on clean test images), in about 4.4 min on a 2-core
  CPU loaded by other jobs (load average about 13). On stamped test images its output
  scores 22.3 dB PSNR against the clean ones (the stamped input: 16.7 dB).

- `fashion`: the same on Fashion-MNIST ($AEJAX_DATA_DIR/fashion_mnist).
    aejax train watermark:fashion --workdir runs/watermark_fashion
  Expected: test/mse_per_pixel 0.0088 (on clean test images), in about 3.5 min on the same
  CPU (load average about 15). On stamped test images: 19.9 dB (the stamped input:
  19.0 dB).
"""

from aejax import watermark
from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist", "fashion")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "conv"
    config.model.features = (16, 32)  # 28 -> 14 -> 7: a 7x7x32 code
    config.model.latent_dim = 0
    config.model.kernel_size = 3
    config.model.code_activation = "relu"
    config.corruption.name = "watermark"
    for option, default in watermark.DEFAULTS.items():
        config.corruption[option] = default
    config.loss = "bce"
    if arg == "digits":
        digits_schedule(config)
        config.num_epochs = 20
        config.corruption.length = 1  # one 5x7 glyph fits an 8x8 image
        config.corruption.scale = (0.6, 0.9)
    elif arg in ("mnist", "fashion"):
        # 4 epochs at batch 64 (3,436 steps): a few minutes each on a shared 2-core CPU;
        # 2 epochs gave 1.0 dB less validation PSNR on stamped MNIST: more would still help.
        mnist_schedule(config, 4, "mnist" if arg == "mnist" else "fashion_mnist")
        config.batch_size = 64
        config.data.valid_fraction = 1 / 12  # 5k of the 60k training images
    else:
        raise unknown_preset("watermark", arg, PRESETS)
    return config
