"""The runs behind docs/RESULTS.md: published numbers reproduced, each row one preset.

    python experiments/results.py --rows hinton --workdir runs/results

trains the row's run in W/<row> (reusing a finished one) and evaluates it; the anomaly
rows run the protocols of experiments/anomaly.py with the presets of configs/anomaly.py.
Every choice below was fixed in advance or chosen on a validation split carved from the
training data (config.data.valid_fraction, or binarized MNIST's own), never on the test
split. Times are wall-clock on the 2-core CPU developer machine (no GPU), usually shared
with a second job, so an idle machine is faster.

Presets (the part after the colon):

- `hinton`: Hinton & Salakhutdinov (Science, 2006): 784-1000-500-250-30-250-500-1000-784,
  a linear 30-unit code, logistic output, cross-entropy loss as in the paper; ReLU hidden
  units and Adam (cosine schedule, 120 epochs of all 60k training images) instead of their
  logistic units with RBM pretraining and conjugate-gradient fine-tuning.
    python experiments/results.py --rows hinton --workdir runs/results
  Expected: test squared error per image (summed over the 784 pixels) 2.9 against the
  paper's 3.00; PCA-30 13.87 (the paper's 13.87). About 25 min.
"""

from aejax.config import base_config, mnist_schedule


def hinton(data: str = "mnist", loss: str = "bce", sigma: float = 0.0):
    config = base_config()
    config.model.encoder_widths = (1000, 500, 250, 30)
    config.model.code_activation = "linear"
    config.corruption.name = "gaussian" if sigma else "none"
    config.corruption.sigma = sigma
    config.loss = loss
    mnist_schedule(config, 40, name=data)
    config.data.valid_fraction = 1 / 12  # 5k of the 60k training images
    config.eval_every_steps = 429 * 10
    return config


def hinton_mse():
    return hinton(loss="mse")


def hinton_noise():
    return hinton(sigma=0.1)


def hinton_fashion():
    config = hinton("fashion_mnist")
    config.num_epochs = 30
    return config


def vae_binarized():
    config = base_config()
    config.data.source = "binarized_mnist"
    config.model.name = "vae"
    config.model.encoder_widths = (512, 256, 32)  # hidden widths, then the latent size
    config.model.x_logvar = "none"
    config.model.sample_at_eval = True
    config.loss = "bce + kl_normal"
    config.batch_size = 128
    config.num_epochs = 150
    config.log_every_steps = 39
    config.steps_per_dispatch = 39
    config.eval_every_steps = 390 * 10
    # A checkpoint every 10 epochs, all kept: results.py picks the one with the best
    # validation ELBO (binarized MNIST's own 10k validation images).
    config.checkpoint_every_steps = 390 * 10
    config.keep_checkpoints = 15
    return config


def probe(data: str = "mnist"):
    config = base_config()
    config.model.name = "conv"  # configs/conv_ae.py:mnist, the seeds' conv AE
    config.model.features = (16, 32)
    config.model.latent_dim = 0  # the code: the last 7x7x32 feature map
    config.model.kernel_size = 3
    config.model.code_activation = "relu"
    config.loss = "bce"
    mnist_schedule(config, 10, name=data)
    config.data.valid_fraction = 1 / 6  # 10k of the 60k training images
    config.eval_every_steps = 390 * 5
    return config


def probe_fashion():
    return probe("fashion_mnist")


def dae():
    config = base_config()
    config.model.encoder_widths = (512, 256, 128)
    config.corruption.name = "gaussian"
    config.corruption.sigma = 0.5
    config.loss = "mse"
    mnist_schedule(config, 30)
    config.data.valid_fraction = 1 / 12  # 5k of the 60k training images
    config.eval_every_steps = 429 * 10
    return config


PRESETS = {
    "hinton": hinton,
    "hinton_mse": hinton_mse,
    "hinton_noise": hinton_noise,
    "hinton_fashion": hinton_fashion,
    "vae_binarized": vae_binarized,
    "probe": probe,
    "probe_fashion": probe_fashion,
    "dae": dae,
}


def get_config(arg: str = "hinton"):
    if arg not in PRESETS:
        raise ValueError(f"configs/results.py: unknown preset {arg!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[arg]()
