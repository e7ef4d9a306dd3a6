"""VAE with planar and radial flows in its posterior (Rezende & Mohamed, 2015; pythae's VAE_LinNF).

Rezende & Mohamed, 2015, "Variational Inference with Normalizing Flows", ICML 2015.

The encoder's Gaussian q0(z0|x) is pushed through the flows listed in `model.flows`
("planar", "radial"; aejax/models/flows.py): each layer's log|det J| in closed form, the
planar flow's û constrained so that w·û > −1 (invertible for any raw parameters). The
flows' parameters are global, as pythae's. The recipe "bce + kl_sample" is the one-sample
negative ELBO: log p(x|z_K) and log q(z_K|x) − log p(z_K), with
log q(z_K|x) = log q0(z0|x) − Σ log|det J_k|. The report's likelihood section gives the
ELBO and the IWAE bound through the model's sampled posterior.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian) (the
  `vae:digits` network), five planar flows, bce + kl_sample, 100 epochs.
    aejax train vae_nf --workdir runs/vae_nf_digits
  Expected: test/loss (one-sample negative ELBO) 24.06 nats (test/bce 20.57,
  test/kl_sample 3.48) after 2200 steps, in 63 s wall (22 s of CPU) on the shared 2-core
  CPU while about 17 other jobs ran. Report (`aejax evaluate runs/vae_nf_digits
  --sections=generation`): negative ELBO 24.09, negative IWAE bound (k = 1000) 23.70.

- `radial`: `digits` with the flows planar, radial, planar, radial, planar.
    aejax train vae_nf:radial --workdir runs/vae_nf_radial
  Expected: test/loss 24.37 (test/bce 21.46, test/kl_sample 2.90); 61 s wall (24 s of
  CPU). Report: negative ELBO 24.40, negative IWAE bound (k = 1000) 24.03.

- `mnist`: pythae 0.1.2's MNIST VAE_LinNF (examples/scripts/configs/mnist/
  vae_lin_nf_config.json: latent 16, five planar flows, "mse" reconstruction; its default MLP
  784-512-(16 Gaussian) and mirror, sigmoid output; Adam at a constant 1e-3, batch 100, 100
  epochs). pythae's "mse" is ½‖x − x̂‖², a unit-variance Gaussian likelihood without its
  constant: here "gaussian_nll + kl_sample" (variance 1), the same gradients, in nats.
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train vae_nf:mnist --workdir runs/vae_nf_mnist
  Measured with --config.num_epochs=2 (1200 steps), not the 100 epochs: test/loss 742.66
  nats (test/gaussian_nll 735.50, of which 720.45 is the constant ½·784·log 2π;
  test/kl_sample 7.16; test/sq_err_per_image 30.10), in 65 s wall (28 s of CPU) under the
  same load. Report with --iwae_k=100: negative ELBO 742.7, negative IWAE bound 741.3. A
  unit-variance likelihood weighs the KL heavily against the squared error: the code
  keeps about 7 nats. 100 epochs were not run.

On the digits, for comparison, `vae:digits` (the same network with a Gaussian posterior and
the closed-form KL), trained and evaluated under the same load: test/loss 23.91, negative
ELBO 24.12, negative IWAE bound (k = 1000) 23.68, in 32 s wall (16 s of CPU). On these 8x8
digits with an 8-d latent the flows do not tighten the bound.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("digits", "radial", "mnist")


def flow_vae_config(name: str, mnist: bool) -> ml_collections.ConfigDict:
    """The base of the flow VAE presets: the model `name` ("vae_nf", "vae_iaf") on the
    `vae:digits` network and schedule, or on pythae's MNIST setting."""
    config = base_config()
    config.model.name = name
    config.model.sample_at_eval = True  # test/loss: the one-sample negative ELBO
    if mnist:
        config.loss = "gaussian_nll + kl_sample"  # pythae's "mse": ½‖x − x̂‖² + const
        config.loss_options.gaussian_nll = ml_collections.ConfigDict({"variance": 1.0})
        wae.pythae_mnist(config)
    else:
        config.loss = "bce + kl_sample"
        config.model.encoder_widths = (128, 64, 8)  # hidden widths, then the latent size
        digits_schedule(config)
    return config


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("vae_nf", arg, PRESETS)
    config = flow_vae_config("vae_nf", mnist=arg == "mnist")
    if arg == "radial":
        config.model.flows = ("planar", "radial", "planar", "radial", "planar")
    else:
        config.model.flows = ("planar",) * 5
    return config
