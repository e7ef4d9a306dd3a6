"""Contractive autoencoder (Rifai et al., 2011, "Contractive Auto-Encoders: Explicit
Invariance During Feature Extraction"): "mse + λ*contractive", the exact squared Frobenius
norm of the encoder's Jacobian at each training input.

`config.loss_options.contractive.mode` picks how it is computed, all exact: "auto" (the
default: the closed form for MLP encoders, else reverse or forward mode by size),
"closed_form", "jacrev", "jacfwd" (see aejax/contractive.py; their speeds:
`python benchmarks/benchmark.py --configs=ae,cae_auto,cae_closed_form,cae_jacrev,cae_jacfwd`
and docs/BENCHMARKS.md).

Presets (add `_mnist` for MNIST, IDX files in $AEJAX_DATA_DIR/mnist; without it the data
are scikit-learn's embedded 8x8 digits):

- `sigmoid` (default): Rifai et al.'s one layer of 1000 sigmoid code units, λ = 0.1; the
  penalty has the closed form Σ_j (h_j(1 − h_j))² ‖W_j‖².
    aejax train cae:sigmoid_mnist --workdir runs/cae
  Expected (`sigmoid`, digits, 100 epochs): test/mse_per_pixel 0.0123, test/contractive
  3.97, in about 7 s on a 2-core CPU.
  Expected (`sigmoid_mnist`, 3 epochs): test/mse_per_pixel 0.0099, test/contractive 33.7,
  in about 30 s.

- `deep`: the 784-256-32 ReLU encoder with a linear code of the benchmark, λ = 0.01 (closed
  form: a quadratic form in the ReLU slopes).
    aejax train cae:deep_mnist --workdir runs/cae_deep
  Expected (`deep`, digits, 100 epochs): test/mse_per_pixel 0.0028, test/contractive 6.46,
  in about 7 s.
  Expected (`deep_mnist`, 3 epochs): test/mse_per_pixel 0.0104, test/contractive 69.5, in
  about 19 s.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

ARCHITECTURES = {
    # name: (encoder widths, hidden activation, code activation, λ)
    "sigmoid": ((1000,), "sigmoid", "sigmoid", 0.1),
    "deep": ((256, 32), "relu", "linear", 0.01),
}


# The presets, the default first (`aejax list` shows them).
PRESETS = tuple(f"{a}{d}" for a in ARCHITECTURES for d in ("", "_mnist"))


def get_config(arg: str = "sigmoid"):
    name, _, data = arg.partition("_")
    if name not in ARCHITECTURES or data not in ("", "mnist"):
        raise unknown_preset("cae", arg, PRESETS)
    widths, activation, code_activation, lam = ARCHITECTURES[name]
    config = base_config()
    config.model.encoder_widths = widths
    config.model.activation = activation
    config.model.code_activation = code_activation
    config.loss = f"mse + {lam}*contractive"
    config.loss_options.contractive = dict(mode="auto")
    if data == "mnist":
        mnist_schedule(config, 3)
    else:
        digits_schedule(config)
    return config
