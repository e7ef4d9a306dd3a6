"""VAE with an inverse autoregressive flow in its posterior (Kingma et al., 2016; pythae's VAE_IAF).

Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, 2016, "Improved Variational
Inference with Inverse Autoregressive Flow", NeurIPS 2016.

The encoder's Gaussian q0(z0|x) is pushed through `model.iaf_blocks` MADE blocks
(aejax/models/flows.py): each reverses the variables' order, computes (m, s) with a MADE
network of `model.made_widths` hidden ReLU layers whose masks make them autoregressive, and
applies the gated update z ← σ⊙z + (1 − σ)⊙m, σ = sigmoid(s + 2) (the offset starts
each step near the identity, as the paper advises), log|det J| = Σ log σ.
pythae's MADE reads z alone (`model.iaf_context=0`); with iaf_context = C > 0 the encoder
also outputs a context h(x) of C numbers that every MADE reads (Kingma et al.'s IAF). The
recipe "bce + kl_sample" is the one-sample negative ELBO, with
log q(z_K|x) = log q0(z0|x) − Σ log σ.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian) (the
  `vae:digits` network), 2 MADE blocks of 32-32 (pythae's MNIST sizes), no context,
  bce + kl_sample, 100 epochs.
    aejax train vae_iaf --workdir runs/vae_iaf_digits
  Expected: test/loss (one-sample negative ELBO) 23.91 nats (test/bce 20.80,
  test/kl_sample 3.11) after 2200 steps, in 55 s wall (23 s of CPU) on the shared 2-core
  CPU while about 17 other jobs ran. Report (`aejax evaluate runs/vae_iaf_digits
  --sections=generation`): negative ELBO 23.94, negative IWAE bound (k = 1000) 23.71.

- `context`: `digits` with a context h(x) of 8 numbers read by every MADE block.
    aejax train vae_iaf:context --workdir runs/vae_iaf_context
  Expected: test/loss 24.02 (test/bce 20.78, test/kl_sample 3.24); 52 s wall (22 s of
  CPU). Report: negative ELBO 24.00, negative IWAE bound (k = 1000) 23.73.

- `mnist`: pythae 0.1.2's MNIST VAE_IAF (examples/scripts/configs/mnist/vae_iaf_config.json:
  latent 16, 2 MADE blocks of 2 hidden layers of 32, "mse" reconstruction; its default MLP
  784-512-(16 Gaussian) and mirror, sigmoid output; Adam at a constant 1e-3, batch 100, 100
  epochs), with "gaussian_nll + kl_sample" (variance 1) for pythae's ½‖x − x̂‖², as
  `vae_nf:mnist`. pythae's step is z·exp(s) + m; this one is Kingma et al.'s gated step.
  Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train vae_iaf:mnist --workdir runs/vae_iaf_mnist
  Measured with --config.num_epochs=2 (1200 steps), not the 100 epochs: test/loss 741.10
  nats (test/gaussian_nll 735.69, of which 720.45 is the constant ½·784·log 2π;
  test/kl_sample 5.40; test/sq_err_per_image 30.49), in 69 s wall (27 s of CPU) under the
  same load. Report with --iwae_k=100: negative ELBO 741.1, negative IWAE bound 740.3.
  100 epochs were not run.

`vae:digits` (a Gaussian posterior), measured under the same load: negative ELBO 24.12,
negative IWAE bound 23.68 (aejax/configs/vae_nf.py): on these digits the IAF does not
tighten the bound.
"""

from aejax.configs import unknown_preset
from aejax.configs.vae_nf import flow_vae_config

PRESETS = ("digits", "context", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("vae_iaf", arg, PRESETS)
    config = flow_vae_config("vae_iaf", mnist=arg == "mnist")
    config.model.iaf_blocks = 2
    config.model.made_widths = (32, 32)
    config.model.iaf_context = 8 if arg == "context" else 0
    return config
