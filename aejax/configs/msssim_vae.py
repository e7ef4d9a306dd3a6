"""MSSSIM-VAE (Snell, Ridgeway, Liao, Roads, Mozer & Zemel, 2017, "Learning to Generate
Images with Perceptual Similarity Metrics").

A VAE whose reconstruction term is 1 − MS-SSIM(x, x̂) (`aejax.losses.msssim`, Wang et
al.'s multi-scale structural similarity) instead of a pixel likelihood: the recipe
"msssim + β*kl_normal" on the `vae` model. test/msssim is the mean 1 − MS-SSIM of the test
reconstructions (0 is perfect); there is no likelihood, so the report gives samples but no
bounds on log p(x). MS-SSIM follows pythae 0.1.2 (window of σ = 1.5, its weights, scales
picked by the image width): 8x8 digits get 3 scales (8, 4, 2 pixels), MNIST 4.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-(8 Gaussian), pythae's MNIST
  window of 3 pixels and β = 0.01 ("msssim + 0.01*kl_normal"), 100 epochs.
    aejax train msssim_vae --workdir runs/msssim_vae_digits
  Expected: test/msssim 0.0685 (test/kl_normal 3.43, test/mse_per_pixel 0.0413) after
  2200 steps, in about 31 s on a 2-core CPU.

- `mnist`: pythae 0.1.2's MNIST MSSSIM-VAE (examples/scripts/configs/mnist/
  msssim_vae_config.json: latent 16, window 3, β = 0.01; its default MLP 784-512-(16
  Gaussian) and mirror; Adam at a constant 1e-3, batch 100, 100 epochs). Needs MNIST's IDX
  files in $AEJAX_DATA_DIR/mnist.
    aejax train msssim_vae:mnist --workdir runs/msssim_vae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/msssim 0.133
  (test/kl_normal 2.53, test/mse_per_pixel 0.0686), in 39 s wall (31 s of CPU) on the
  2-core CPU while the test suite shared it. 100 epochs were not run.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("msssim_vae", arg, PRESETS)
    config = base_config()
    config.model.name = "vae"
    config.model.sample_at_eval = True
    config.loss = "msssim + 0.01*kl_normal"
    # scales 0: pythae's number for the image width (3 for 8x8, 4 for 28x28).
    config.loss_options.msssim = ml_collections.ConfigDict({"window_size": 3, "scales": 0})
    if arg == "mnist":
        wae.pythae_mnist(config)
    else:
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config
