"""The six models of Keras' autoencoder tutorial ("Building Autoencoders in Keras",
blog.keras.io) on MNIST, with Keras' choices: Glorot-uniform kernels, losses averaged over
the 784 pixels (`bce_mean`), Adadelta (learning rate 1.0, ρ 0.95, ε 1e-7: Keras 2's
defaults, which the tutorial used) or RMSprop (ε 1e-7, outside the square root as in
Keras) at a constant learning rate, and the tutorial's batch sizes and epochs.

    aejax train keras_tutorial:simple --workdir runs/k_simple
    aejax evaluate runs/k_simple

Presets (the part after the colon; all need $AEJAX_DATA_DIR/mnist):

- `simple` (default): Dense 32 + ReLU, Dense 784 + sigmoid; Adadelta, binary
  cross-entropy, 50 epochs of batch 256.
- `sparse`: `simple` with an L1 activity penalty of 1e-4 (Keras' `l1(10e-5)`) on the code;
  100 epochs. The penalty is per example, summed over the code units, as tf.keras adds an
  activity regularizer's value divided by the batch size.
- `deep`: Dense 128, 64, 32 (ReLU), then 64, 128, 784; Adadelta, 100 epochs of batch 256.
- `conv`: Conv 16, pool, Conv 8, pool, Conv 8, pool (a 4x4x8 code); Conv 8, up, Conv 8,
  up, Conv 16 (VALID: 16 -> 14), up, Conv 1 + sigmoid (`model.decoder_layers`); 4385
  parameters, counted layer by layer from Keras' model (tests/test_keras.py). Adadelta,
  50 epochs of batch 128.
- `denoising`: Conv 32, pool, Conv 32, pool (7x7x32); Conv 32, up, Conv 32, up, Conv 1;
  inputs with Gaussian noise of σ 0.5 clipped to [0, 1] (`corruption.clip`), loss
  against the clean images; Adadelta, 100 epochs of batch 128. (The tutorial adds the
  noise once to a fixed copy of the data; here each step draws new noise.)
- `vae`: Dense 256 + ReLU to a 2-D Gaussian latent, Dense 256 + ReLU, Dense 784 + sigmoid;
  the tutorial's loss, 784 · binary cross-entropy + KL, is `bce + kl_normal` (both summed
  per image); RMSprop (ρ 0.9), 50 epochs of batch 100. Its report (`evaluate.py`) draws
  the tutorial's 15x15 manifold of decoded prior quantiles.

Measured with fewer epochs than the presets (`--config.num_epochs=N`; the full runs were
too long for the machine at hand), on a 2-core CPU shared with other jobs, so the times
are upper bounds. test/loss is in the units the progress line states: per pixel for
`bce_mean` (sparse: with the L1 term, test/bce_mean 0.1705 + 1e-4 · test/l1_activity
87.07), nats per image for the VAE (test/bce 151.5 + test/kl_normal 5.35). The evaluation
feeds clean images, so the denoising row is the reconstruction of clean test images.

| preset | epochs run | test/loss | test/mse_per_pixel | wall time (with start-up) |
| --- | --- | --- | --- | --- |
| simple | 10 of 50 | 0.1649 | 0.0321 | 59 s |
| sparse | 10 of 100 | 0.1792 | 0.0341 | 84 s |
| deep | 10 of 100 | 0.1627 | 0.0331 | 184 s |
| conv | 2 of 50 | 0.1381 | 0.0261 | 467 s |
| denoising | 1 of 100 | 0.1053 | 0.0136 | 376 s |
| vae | 10 of 50 | 156.87 | 0.0447 | 185 s |
"""

from aejax.config import base_config, mnist_schedule
from aejax.configs import unknown_preset

PRESETS = ("simple", "sparse", "deep", "conv", "denoising", "vae")


def _keras_optimizer(config, name: str) -> None:
    """Keras 2's defaults of `name` at a constant rate (Keras' optimizers had no schedule)."""
    opt = config.optimizer
    opt.name = name
    opt.schedule = "constant"
    opt.eps = 1e-7  # Keras' backend epsilon
    if name == "adadelta":
        opt.learning_rate, opt.rho = 1.0, 0.95
    else:  # rmsprop
        opt.learning_rate, opt.rho = 1e-3, 0.9


def get_config(arg: str = "simple"):
    if arg not in PRESETS:
        raise unknown_preset("keras_tutorial", arg, PRESETS)
    config = base_config()
    config.model.kernel_init = "glorot_uniform"  # Keras' default
    config.loss = "bce_mean"  # Keras' binary_crossentropy: a mean over the pixels
    _keras_optimizer(config, "adadelta")
    if arg in ("simple", "sparse", "deep"):
        mnist_schedule(config, 50 if arg == "simple" else 100)
        config.batch_size = 256  # 234 steps an epoch: 6 logs of 39 steps
        config.model.name = "mlp"
        config.model.encoder_widths = (128, 64, 32) if arg == "deep" else (32,)
        config.model.code_activation = "relu"
        if arg == "sparse":
            config.loss = "bce_mean + 1e-4*l1_activity"
    elif arg in ("conv", "denoising"):
        mnist_schedule(config, 50 if arg == "conv" else 100)
        config.model.name = "conv"
        config.model.code_activation = "relu"  # Keras' ReLU after the last encoder conv
        if arg == "conv":
            config.model.features = (16, 8, 8)
            config.model.decoder_layers = ("conv:8", "up", "conv:8", "up", "conv:16:valid", "up")
        else:
            config.model.features = (32, 32)
            config.model.decoder_layers = ("conv:32", "up", "conv:32", "up")
            config.corruption.name = "gaussian"
            config.corruption.sigma = 0.5
            config.corruption.clip = True
    else:  # vae
        mnist_schedule(config, 50)
        config.batch_size = 100  # 600 steps an epoch: 12 logs of 50 steps
        config.log_every_steps = 50
        config.steps_per_dispatch = 50
        config.model.name = "vae"
        config.model.encoder_widths = (256, 2)
        config.loss = "bce + kl_normal"
        _keras_optimizer(config, "rmsprop")
    return config
