"""MMD-InfoVAE (Zhao, Song & Ermon, 2019, "InfoVAE: Balancing Learning and Inference in
Variational Autoencoders", AAAI 2019).

The InfoVAE objective to minimize is E[−log p(x|z)] + (1 − α)·KL(q(z|x) ‖ p(z)) +
(α + λ − 1)·MMD(q(z) ‖ p(z)): a VAE's ELBO with the KL weighted by 1 − α and an MMD term
between the aggregate posterior and the prior. With a unit-variance Gaussian decoder
(−log p(x|z) = ½‖x − x̂‖² up to a constant) it is the recipe
"0.5*mse + (1−α)*kl_normal + (α+λ−1)*mmd_imq" on the `vae` model, whose aux z is the
reparameterized sample the MMD compares with prior draws (`aejax.losses.mmd`).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-(8 Gaussian), a Bernoulli
  likelihood, α = 0, λ = 10 ("bce + 1*kl_normal + 9*mmd_imq"), 100 epochs.
    aejax train info_vae --workdir runs/info_vae_digits
  Expected: test/loss 24.31 (test/bce 21.18, test/kl_normal 3.15, test/mmd_imq −0.0018)
  after 2200 steps; about 8 s on a 2-core CPU.
  On these 8x8 digits pythae's MNIST weights collapse the posterior: "0.5*mse + kl_normal +
  999*mmd_imq" ended at test/kl_normal 0.0012 (every code the prior, every reconstruction
  the mean digit), and so did "bce + kl_normal + 99*mmd_imq" (0.0024).

- `mnist`: pythae 0.1.2's MNIST InfoVAE (examples/scripts/configs/mnist/info_vae_config.json:
  α = 0, λ = 1000, IMQ kernel, σ = 1, latent 16; its default MLP 784-512-(16 Gaussian) and
  mirror; Adam at a constant 1e-3, batch 100, 100 epochs). (pythae's *class* defaults,
  α = 0 and λ = 1e-3, would give the MMD a weight of −0.999: the objective would push the
  aggregate posterior away from the prior.) Needs MNIST's IDX files.
    aejax train info_vae:mnist --workdir runs/info_vae_mnist
  Measured with --config.num_epochs=3 (1800 steps): the posterior collapses, test/kl_normal
  0.0104 and test/mse 53.4 (the mean training image scores 52.9), test/loss 27.12, in
  101 s on the shared 2-core CPU. The MMD term is what collapses it: after one epoch, "0.5*mse +
  1*kl_normal" alone reached test/kl_normal 5.09 (test/mse 32.6) and with "+ 99*mmd_imq"
  1.01 (test/mse 48.3). 100 epochs were not run.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "mnist")


def recipe(likelihood: str, alpha: float, lbd: float) -> str:
    """The InfoVAE objective as a recipe: likelihood + (1 − α)·KL + (α + λ − 1)·MMD."""
    return f"{likelihood} + {1 - alpha:g}*kl_normal + {alpha + lbd - 1:g}*mmd_imq"


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("info_vae", arg, PRESETS)
    config = base_config()
    config.model.name = "vae"
    config.model.sample_at_eval = True
    config.loss_options.mmd_imq = ml_collections.ConfigDict({"bandwidth": 1.0})
    if arg == "mnist":
        config.loss = recipe("0.5*mse", alpha=0.0, lbd=1000.0)
        wae.pythae_mnist(config)
    else:
        config.loss = recipe("bce", alpha=0.0, lbd=10.0)
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config
