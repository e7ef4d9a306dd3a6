"""VAE with a VampPrior (Tomczak & Welling, 2018, "VAE with a VampPrior", AISTATS 2018).

The `vamp_vae` model: an MLP VAE whose prior is p(z) = (1/K) Σ_k q(z | u_k), its own
Gaussian posterior at K learned pseudo-inputs u_k (`aejax.models.vamp`). The KL to this
prior has no closed form, so the recipe is a likelihood + `kl_sample`, the one-sample
log q(z|x) − log p(z) at the model's training sample; test/loss is the test negative
ELBO in nats per image with one z per image. `aejax evaluate W --sections=generation`
adds the samples from the prior and the ELBO and IWAE bounds.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian) as
  `vae:digits`, K = 50 pseudo-inputs, a Bernoulli likelihood ("bce + kl_sample"), 100
  epochs.
    aejax train vamp --workdir runs/vamp_digits
  Expected: MEASURED_DIGITS

- `mnist`: pythae 0.1.2's MNIST VAMP (examples/scripts/configs/mnist/vamp_config.json:
  latent 16, 50 components, its "mse" reconstruction ½‖x − x̂‖², which is
  `gaussian_nll` with variance 1 less its constant; its default MLP 784-512-(16 Gaussian)
  and mirror with a sigmoid output; Adam at a constant 1e-3, batch 100, 100 epochs).
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train vamp:mnist --workdir runs/vamp_mnist
  MEASURED_MNIST
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("vamp", arg, PRESETS)
    config = base_config()
    config.model.name = "vamp_vae"
    config.model.sample_at_eval = True
    config.model.num_pseudo_inputs = 50  # K, pythae's default and MNIST setting
    config.model.pseudo_activation = "hardtanh"  # u_k in [0, 1], as pythae's
    config.loss_options.gaussian_nll = ml_collections.ConfigDict({"variance": 1.0})
    if arg == "mnist":
        config.loss = "gaussian_nll + kl_sample"
        wae.pythae_mnist(config)
    else:
        config.loss = "bce + kl_sample"
        config.model.encoder_widths = (128, 64, 8)
        digits_schedule(config)
    return config
