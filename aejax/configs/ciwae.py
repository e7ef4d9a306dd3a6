"""CIWAE (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily Better",
ICML, §5): a Bernoulli VAE trained on β·ELBO + (1 − β)·IWAE_K on the same K samples.

The recipe "ciwae_bce" (`aejax.losses.importance`) on the VAE's K latent samples
(config.model.num_samples = K, config.loss_options.ciwae_bce.beta = β); the ELBO is the
mean of the K single-sample log weights. β = 0 is the IWAE (`vae:iwae`'s recipe), β = 1
the K-sample ELBO. test/ciwae_bce is the test bound with K samples drawn with a fixed key.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian), K = 64,
  β = 0.5, 100 epochs.
    aejax train ciwae --workdir runs/ciwae_digits
  Expected: test/ciwae_bce 23.52 nats (test/mse_per_pixel 0.0320) after 2200 steps, in
  about 24 s on a 2-core CPU. Its report (`aejax evaluate`, generation section): the
  negative IWAE bound at k = 1000, 23.28; the negative ELBO, 23.73 (the IWAE with 64
  samples: 23.23 and 27.66; the ELBO-trained `vae:digits`: 23.68 and 24.12).

- `mnist`: pythae 0.1.2's MNIST setting (its default MLP 784-512-(16 Gaussian) and mirror;
  Adam at a constant 1e-3, batch 100, 100 epochs) with the K = 64 and β = 0.5 of pythae's
  MNIST run of CIWAE (examples/scripts/reproducibility/ciwae.py, the paper's setting;
  pythae 0.1.2 ships no MNIST config file for CIWAE) and its Bernoulli likelihood. Needs
  MNIST's IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train ciwae:mnist --workdir runs/ciwae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/ciwae_bce
  113.24 (test/mse_per_pixel 0.0190), in 1452 s on the 2-core CPU shared with other jobs
  (load average about 16). Its report (`aejax evaluate --iwae_k=64`, generation section):
  the negative IWAE bound at k = 64, 111.18; the negative ELBO, 115.37. For
  comparison, the same VAE trained one epoch on the IWAE with 64 samples (`miwae:mnist
  --config.loss=iwae_bce`, 648 s at a lighter load) reached test/iwae_bce 111.41, and in
  its report 111.39 and a negative ELBO of 121.76. 100 epochs were not run.
"""

import ml_collections

from aejax.config import base_config
from aejax.configs import miwae, unknown_preset

PRESETS = ("digits", "mnist")


def get_config(arg: str = "digits"):
    if arg not in PRESETS:
        raise unknown_preset("ciwae", arg, PRESETS)
    config = base_config()
    miwae.importance_vae(config, arg, 64)
    config.loss = "ciwae_bce"
    config.loss_options.ciwae_bce = ml_collections.ConfigDict({"beta": 0.5})
    return config
