"""Hamiltonian VAE (Caterini, Doucet & Sejdinovic, 2018, "Hamiltonian Variational
Auto-Encoder", NeurIPS 2018).

A Gaussian encoder's z_0 and a momentum ρ_0 ~ N(0, I/β_0) move by K tempered leapfrog
steps of size ε on log p(x, z), its gradient taken through the decoder
(`aejax.models.hvae`); the decoder sees z_K. The loss is the one-sample extended-space
negative ELBO, the recipe "<likelihood> + kl_sample" on the model's log q and log p(z_K);
`config.model.likelihood` names the likelihood of the Hamiltonian's target and must be the
recipe's. test/loss is that negative ELBO on the test split (one sample, a fixed key).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-(8 Gaussian) and its mirror,
  Bernoulli likelihood, K = 3, ε = 0.01, β_0 = 0.3, 100 epochs.
    aejax train hvae --workdir runs/hvae_digits
  Expected: test/loss 24.37 (test/bce 21.10, test/kl_sample 3.27) after 2200 steps; 40 s
  on a 2-core CPU (19 s of CPU time; the machine was shared). `aejax evaluate ...
  --sections=generation` (k = 1000, 46 s): negative ELBO 24.37, negative IWAE bound 24.16.
  The same encoder and decoder as a VAE ("bce + kl_normal") gave test/loss 24.39 and an
  IWAE bound of 24.12: on these digits the flow gains nothing measurable. A larger ε did
  worse (test/loss 24.60 at ε = 0.05, 25.28 at 0.1), and ε learned from 0.01
  (model.learn_eps_lf) drifted to about 0 (test/loss 24.38).

- `mnist`: pythae 0.1.2's MNIST HVAE (examples/scripts/configs/mnist/hvae_config.json:
  latent 16, "mse" (a unit-variance Gaussian likelihood: gaussian_nll), n_lf = 3,
  ε = 0.001, β_0 = 0.3, neither learned; its default MLP 784-512-(16 Gaussian) and mirror;
  Adam at a constant 1e-3, batch 100, 100 epochs). Needs MNIST's IDX files in
  $AEJAX_DATA_DIR/mnist.
    aejax train hvae:mnist --workdir runs/hvae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/loss 742.2
  nats (test/gaussian_nll 737.4, of which 720.4 is the constant ½·784·log 2π;
  test/kl_sample 4.77; test/sq_err_per_image 34.0), in 42 s on the 2-core CPU (34 s of
  CPU time). A unit variance weighs the pixels' errors lightly, so the KL stays small.
  `aejax evaluate ... --sections=generation --iwae_k=10` on that run: negative ELBO 742.2,
  negative IWAE bound (k = 10) 741.4, in 30 s.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist")


def hamiltonian_model(config: ml_collections.ConfigDict, name: str, likelihood: str) -> None:
    """The model fields pythae's HVAEConfig sets (n_lf 3, ε 0.001, β_0 0.3), the
    likelihood of the Hamiltonian and the recipe "<likelihood> + kl_sample"."""
    config.model.name = name
    config.model.sample_at_eval = True
    config.model.likelihood = likelihood
    config.model.likelihood_variance = 1.0
    config.model.n_lf = 3
    config.model.eps_lf = 0.001
    config.model.beta_zero = 0.3
    config.model.learn_eps_lf = False
    config.model.learn_beta_zero = False
    config.loss = f"{likelihood} + kl_sample"
    if likelihood == "gaussian_nll":  # pythae's "mse": a unit variance
        config.loss_options.gaussian_nll = ml_collections.ConfigDict({"variance": 1.0})


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("hvae", arg, PRESETS)
    config = base_config()
    if arg == "mnist":
        hamiltonian_model(config, "hvae", "gaussian_nll")
        wae.pythae_mnist(config)
    else:
        hamiltonian_model(config, "hvae", "bce")
        config.model.eps_lf = 0.01
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config
