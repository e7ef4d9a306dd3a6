"""Convolutional autoencoder.

Encoder: per entry of model.features a 3x3 conv (SAME) and a 2x2 max-pool; decoder: the
mirror, nearest 2x upsampling and 3x3 transposed convs, cropped to the input size. With
model.latent_dim > 0 a Dense bottleneck maps the last feature map to a latent vector.

Presets (the part after the colon):

- `digits` (default): the seeds' architecture on scikit-learn's 8x8 digits (Conv 16, pool,
  Conv 32 + ReLU, pool: a 2x2x32 code, which is larger than the 64 pixels), bce, 100 epochs.
    aejax train conv_ae --workdir runs/conv_ae_digits
  Expected: test/mse_per_pixel 0.0074, in about 20 s on a 2-core CPU.

- `mnist`: the seeds' architecture on MNIST (Conv 3x3x16 + ReLU, MaxPool 2, Conv 3x3x32 +
  ReLU, MaxPool 2: a 7x7x32 code; UpSample 2, ConvTranspose 16 + ReLU, UpSample 2,
  ConvTranspose 1 + sigmoid), bce, 10 epochs. Needs $AEJAX_DATA_DIR/mnist.
    aejax train conv_ae:mnist --workdir runs/conv_ae_mnist
  Expected (`mnist`, 3 of its 10 epochs: `--config.num_epochs=3`): test/mse_per_pixel
  0.0044 (test/bce 58.3 nats), in about 78 s on a 2-core CPU.

- `deep`: a deeper conv AE with a real bottleneck on MNIST: features (32, 64, 128)
  (28 -> 14 -> 7 -> 4, the decoder's 32x32 output cropped to 28x28) and a 32-number code
  through a Dense layer.
    aejax train conv_ae:deep --workdir runs/conv_ae_deep
  Expected (`deep`, 3 of its 10 epochs: `--config.num_epochs=3`): test/mse_per_pixel
  0.0088 (test/bce 69.0 nats), in about 373 s on a 2-core CPU (the test suite was
  running beside it).
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist", "deep")


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "conv"
    config.model.features = (16, 32)  # channels of each conv + pool stage
    config.model.latent_dim = 0  # 0: the last feature map is the code; > 0: Dense bottleneck
    config.model.kernel_size = 3
    config.model.code_activation = "relu"  # the seeds' ReLU after the last conv
    config.loss = "bce"
    if arg == "digits":
        digits_schedule(config)
    elif arg in ("mnist", "deep"):
        mnist_schedule(config, 10)
        if arg == "deep":
            config.model.features = (32, 64, 128)
            config.model.latent_dim = 32
            config.model.code_activation = "linear"
    else:
        raise unknown_preset("conv_ae", arg, PRESETS)
    return config
