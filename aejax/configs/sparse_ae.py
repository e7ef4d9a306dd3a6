"""Sparse autoencoders with an overcomplete code: KL sparsity and the k-sparse (top-k) code.

The L1-activity sparse AE is `mlp_ae:overcomplete`. Add `_mnist` to a preset for
MNIST (IDX files in $AEJAX_DATA_DIR/mnist); without it the data are scikit-learn's embedded
8x8 digits.

- `kl` (default): Ng (2011), "Sparse autoencoder" (CS294A notes): one layer of 1024 sigmoid
  code units, "mse + 3.0*kl_sparsity" with target rate ρ = 0.05
  (`--config.loss_options.kl_sparsity.rho=0.1` changes it). The test set's mean code
  activation ends near ρ.
    aejax train sparse_ae:kl_mnist --workdir runs/kl
  Expected (`kl`, digits, 100 epochs): test/mse_per_pixel 0.0181, test/kl_sparsity 0.018,
  in about 6 s on a 2-core CPU.
  Expected (`kl_mnist`, 3 epochs): test/mse_per_pixel 0.0425, test/kl_sparsity 1.54, in
  about 24 s.

- `topk`: Makhzani & Frey (2013), "k-Sparse Autoencoders": 1000 linear code units of which
  the k = 25 largest per example are kept (`config.model.top_k`), MSE.
    aejax train sparse_ae:topk_mnist --workdir runs/topk
  Expected (`topk`, digits, 100 epochs): test/mse_per_pixel 0.0067, in about 8 s.
  Expected (`topk_mnist`, 3 epochs): test/mse_per_pixel 0.0176, in about 25 s.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("kl", "kl_mnist", "topk", "topk_mnist")


def get_config(arg: str = "kl"):
    name, _, data = arg.partition("_")
    if name not in ("kl", "topk") or data not in ("", "mnist"):
        raise unknown_preset("sparse_ae", arg, PRESETS)
    config = base_config()
    if name == "kl":
        config.model.encoder_widths = (1024,)
        config.model.code_activation = "sigmoid"
        config.loss = "mse + 3.0*kl_sparsity"
        config.loss_options.kl_sparsity = dict(rho=0.05)
    else:
        config.model.encoder_widths = (1000,)
        config.model.code_activation = "linear"
        config.model.top_k = 25
        config.loss = "mse"
    if data == "mnist":
        mnist_schedule(config, 3)
    else:
        digits_schedule(config)
    return config
