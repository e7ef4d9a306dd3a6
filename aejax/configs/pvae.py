"""Poincaré VAE, P-VAE (Mathieu, Le Lan, Maddison, Tomioka & Teh, 2019, "Continuous
Hierarchical Representations with Poincaré Variational Auto-Encoders", NeurIPS 2019).

Wrapped normal posterior N_W(μ(x), diag σ²(x)) and prior N_W(0, I) on the Poincaré ball of
curvature −c (model "pvae", `aejax.models.manifold_vae`; the ball's maps in
`aejax.models.poincare`), and the paper's decoder, whose first layer gives the signed
distances to learned gyroplanes (`model.pvae_decoder="gyroplane"`; "mlp" feeds the ball
point to the mirrored MLP, as pythae's default decoder does). The KL has no closed form:
the recipe is "bce + kl_sample", the one-sample log q(z|x) − log p(z) (pythae's). The
Riemannian normal of the paper (pythae's other option) is not implemented. test/loss is the
test negative ELBO with one z per image.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP encoder 64-128-64-(8-D ball, c = 1;
  8 + 8 outputs for μ and σ), decoder 8-(64 gyroplanes)-128-64, Bernoulli likelihood
  ("bce + kl_sample"), 100 epochs.
    aejax train pvae --workdir runs/pvae_digits
  Expected: test/loss (negative ELBO) 24.49 nats (test/bce 21.62, test/kl_sample 2.88)
  after 2200 steps, in 17 s on the shared 2-core CPU (90 s under a heavier load of the
  other jobs). `aejax evaluate runs/pvae_digits --sections=generation` then gives the test
  negative ELBO 24.54 (one-sample KL 2.85) and the negative IWAE bound 24.04 at k = 1000,
  in 7 s. (The VAE of the same widths, `vae:digits`, reaches 23.9.)

- `mnist`: pythae 0.1.2 ships no MNIST config file for its PoincareVAE; this preset follows
  its reproduction script (examples/scripts/reproducibility/pvae.py, the paper's MNIST
  setting): encoder 784-600-(10-D ball, one σ per image), c = 0.7, wrapped normal prior and
  posterior, decoder 10-(600 gyroplanes)-784 with a sigmoid output, "bce", Adam at a
  constant 5e-4, batch 128, 80 epochs. (pythae binarizes the training images once with
  Bernoulli draws; here they are MNIST's grey levels.) Needs MNIST's IDX files.
    aejax train pvae:mnist --workdir runs/pvae_mnist
  Measured with --config.num_epochs=1 (468 steps), not the 80 epochs: test/loss 127.54
  (test/bce 110.29, test/kl_sample 17.26), in 92 s on the shared 2-core CPU; with
  --config.num_epochs=3 (1404 steps): test/loss 116.78 (test/bce 99.05, test/kl_sample
  17.73) in 91 s, and `aejax evaluate W --sections=generation --iwae_k=100` gave the test
  negative ELBO 116.8 and the negative IWAE bound 113.0 at k = 100 (44 s). 80 epochs were
  not run.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("pvae", arg, PRESETS)
    config = base_config()
    config.model.name = "pvae"
    config.model.sample_at_eval = True
    config.model.curvature = 1.0
    config.model.pvae_decoder = "gyroplane"
    config.model.pvae_isotropic = False
    config.loss = "bce + kl_sample"
    if arg == "mnist":
        mnist_schedule(config, 80)
        config.model.encoder_widths = (600, 10)
        config.model.curvature = 0.7
        config.model.pvae_isotropic = True
        config.optimizer.learning_rate = 5e-4
        config.optimizer.schedule = "constant"
    else:
        config.model.encoder_widths = (128, 64, 8)  # hidden widths, then the ball's d
        digits_schedule(config)
    return config
