"""Regularized autoencoders, RAE-L2 and RAE-GP (Ghosh, Sajjadi, Vergari, Black & Schölkopf,
2020, "From Variational to Deterministic Autoencoders", ICLR 2020).

A deterministic MLP autoencoder trained on ‖x − x̂‖² + β·½‖z‖² + λ·R: the code penalty
`code_l2` and a decoder regularizer R (`aejax.losses.regularizers`), either ½‖θ_dec‖²
(`decoder_l2`, which with Adam makes the updates of pythae's decoder weight decay λ) or the
gradient penalty ‖∂(Σx̂)/∂z‖² (`decoder_gradient_penalty`; `decoder_jacobian` is the
exact ‖∂x̂/∂z‖²_F). The model has no prior: generate with the ex-post Gaussian mixture
(`aejax.samplers.GaussianMixtureSampler`, the paper's sampler), which the report's
generation section fits for it.

Presets (the part after the colon):

- `l2` (default): scikit-learn's 8x8 digits, MLP 64-128-8 and its mirror, β = 1e-2,
  λ = 1e-4 ("mse + 0.01*code_l2 + 0.0001*decoder_l2"), 100 epochs.
    aejax train rae --workdir runs/rae_l2_digits
  Expected: test/mse (squared error per image) 0.799, test/code_l2 3.84, test/decoder_l2
  235.0, test/loss 0.861 after 2200 steps; about 5 s on a 2-core CPU.

- `gp`: `l2` with the gradient penalty ("mse + 0.01*code_l2 + 0.0001*decoder_gradient_penalty").
    aejax train rae:gp --workdir runs/rae_gp_digits
  Expected: test/mse 0.796, test/code_l2 3.58, test/decoder_gradient_penalty 12.2,
  test/loss 0.833; about 5 s.

- `l2_mnist`, `gp_mnist`: pythae 0.1.2's MNIST RAEs (examples/scripts/configs/mnist/
  rae_l2_config.json and rae_gp_config.json: β = 1e-2, λ = 1e-4, latent 16; its default MLP
  784-512-16 and mirror, sigmoid output; Adam at a constant 1e-3, batch 100, 100 epochs).
  Needs MNIST's IDX files.
    aejax train rae:l2_mnist --workdir runs/rae_l2_mnist
  Measured with --config.num_epochs=3 (1800 steps), not the 100 epochs: `l2_mnist`
  test/mse 9.22, test/code_l2 24.7, test/decoder_l2 1077, test/loss 9.57 in 139 s;
  `gp_mnist` test/mse 9.22, test/decoder_gradient_penalty 404, test/loss 9.52 in 147 s
  (start-up included, on the shared 2-core CPU). `l2_mnist` with --config.num_epochs=10
  (6000 steps): test/mse 7.57, test/code_l2 17.5, test/decoder_l2 1689, test/loss 7.92, in
  72 s at a quieter moment (times on this shared machine vary about threefold). 100
  epochs were not run. The report's generation section on the 3-epoch `l2_mnist` run
  (a 10-component mixture fitted to 10000 training codes) draws legible digits.
"""

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset, wae

PRESETS = ("l2", "gp", "l2_mnist", "gp_mnist")
REGULARIZERS = {"l2": "decoder_l2", "gp": "decoder_gradient_penalty"}


def get_config(arg: str = "l2"):
    if arg not in PRESETS:
        raise unknown_preset("rae", arg, PRESETS)
    config = base_config()
    config.model.name = "mlp"
    config.loss = f"mse + 0.01*code_l2 + 0.0001*{REGULARIZERS[arg.split('_')[0]]}"
    if arg.endswith("_mnist"):
        wae.pythae_mnist(config)
    else:
        config.model.encoder_widths = (128, 8)
        digits_schedule(config)
    return config
