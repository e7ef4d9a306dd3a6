"""Hyperspherical VAE, S-VAE (Davidson, Falorsi, De Cao, Kipf & Tomczak, 2018,
"Hyperspherical Variational Auto-Encoders", UAI 2018).

A von Mises-Fisher posterior vMF(μ(x), κ(x)) on the unit sphere S^{d−1} ⊂ R^d and a
uniform prior on it (model "svae", `aejax.models.manifold_vae`); the recipe is a likelihood
plus the closed-form KL(vMF ‖ uniform), `kl_vmf` ("bce + kl_sample" gives the one-sample
estimate instead). z is drawn by Wood's rejection sampler and a Householder reflection,
reparameterized through the accepted draw (the paper's g_rep; its correction term is left
out, as in pythae). test/loss is the test negative ELBO with one z per image.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(S^7 in R^8: 8 + 1
  outputs for μ and κ) and its mirror, Bernoulli likelihood ("bce + kl_vmf"), 100 epochs.
    aejax train svae --workdir runs/svae_digits
  Expected: test/loss (negative ELBO) 25.24 nats (test/bce 22.94, test/kl_vmf 2.30) after
  2200 steps, in 31 s on the shared 2-core CPU (83 s under a heavier load of the other
  jobs). `aejax evaluate runs/svae_digits --sections=generation` then gives the test
  negative ELBO 25.13 (one-sample KL 2.18) and the negative IWAE bound 24.53 at k = 1000,
  in 14 s. (The VAE of the same widths, `vae:digits`, reaches 23.9.)

- `mnist`: pythae 0.1.2's MNIST S-VAE (examples/scripts/configs/mnist/svae_config.json:
  latent_dim 16, reconstruction_loss "mse"; its default MLP 784-512-(16 + 1) and mirror
  with a sigmoid output; Adam at a constant 1e-3, batch 100, 100 epochs). pythae's "mse"
  is ½‖x − x̂‖², the unit-variance Gaussian likelihood without its constant; here it is
  "gaussian_nll" (variance 1), the same gradients plus the constant 784·½ log 2π = 720.4
  nats, so that the likelihood bounds are true densities. Needs MNIST's IDX files.
    aejax train svae:mnist --workdir runs/svae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/loss 744.58
  (test/gaussian_nll 742.35, so ½‖x − x̂‖² = 21.9; test/kl_vmf 2.23; test/sq_err_per_image
  43.8), in 110 s on the shared 2-core CPU; with --config.num_epochs=3 (1800 steps):
  test/loss 742.57 (½‖x − x̂‖² = 17.9, test/kl_vmf 4.30, test/sq_err_per_image 35.7) in
  80 s, and `aejax evaluate W --sections=generation --iwae_k=100` gave the test negative
  ELBO 742.5 and the negative IWAE bound 741.4 at k = 100 (70 s). With a unit variance
  the likelihood weighs little beside the KL: the KL stays at a few nats and the
  reconstructions are coarse (the mean training image scores 52.9 squared error). 100
  epochs were not run.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("svae", arg, PRESETS)
    config = base_config()
    config.model.name = "svae"
    config.model.sample_at_eval = True
    if arg == "mnist":
        config.loss = "gaussian_nll + kl_vmf"
        config.loss_options.gaussian_nll = ml_collections.ConfigDict({"variance": 1.0})
        wae.pythae_mnist(config)
    else:
        config.loss = "bce + kl_vmf"
        config.model.encoder_widths = (128, 64, 8)  # hidden widths, then d (S^{d-1} ⊂ R^d)
        digits_schedule(config)
    return config
