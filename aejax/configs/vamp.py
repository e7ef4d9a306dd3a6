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
  Expected: test/loss (negative ELBO) 23.60 nats (test/bce 20.34, test/kl_sample 3.26)
  after 2200 steps; 58 s wall (20 s of CPU time) on the shared 2-core CPU. `vae:digits`,
  the same MLP with the N(0, I) prior, measured beside it: test/loss 23.91.
  `aejax evaluate runs/vamp_digits --sections=generation` (359 test images, 33 s): negative
  ELBO 23.49, KL 3.22, negative IWAE bound (k = 1000) 23.28 nats; `vae:digits`' 24.12 and
  23.68.

- `mnist`: pythae 0.1.2's MNIST VAMP (examples/scripts/configs/mnist/vamp_config.json:
  latent 16, 50 components, its "mse" reconstruction ½‖x − x̂‖², which is
  `gaussian_nll` with variance 1 less its constant; its default MLP 784-512-(16 Gaussian)
  and mirror with a sigmoid output; Adam at a constant 1e-3, batch 100, 100 epochs).
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train vamp:mnist --workdir runs/vamp_mnist
  Measured with --config.num_epochs=2 (1200 steps), not the 100 epochs: test/loss 740.24
  nats, of which 720.45 is the likelihood's constant (784/2·log 2π) and 5.29 test/kl_sample;
  test/sq_err_per_image 29.0 (½ of it, 14.5, is pythae's reconstruction loss), in 123 s
  wall (34 s of CPU time) on the shared 2-core CPU. `aejax evaluate runs/vamp_mnist
  --sections=generation --iwae_k=100` (10000 test images, 94 s): negative ELBO 740.3, KL
  5.34, negative IWAE bound (k = 100) 739.5 nats. With variance 1 on pixels in [0, 1] the
  likelihood is weak beside the KL: the posterior carries 5.3 nats and the reconstructions
  are blurry (a 4 read as a 9, a 5 as an 8 in reconstructions.png). 100 epochs were not run.
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
