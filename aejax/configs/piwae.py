"""PIWAE (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily Better",
ICML, §5): a Bernoulli VAE whose decoder (θ) climbs the IWAE bound with M·K samples and
whose encoder (φ) climbs the MIWAE bound of M groups of K of the same samples.

The paper's step is θ += α∇_θ IWAE_{M·K}, φ += α∇_φ MIWAE_{M,K}, both on one draw of M·K
samples. Here it is two updates of each step, through the adversarial AE's mechanism:
`config.loss` "iwae_bce" on the parameters under `config.loss_params` = "decoder", then
the extra phase "miwae_bce @ encoder", each with its own Adam state. Both updates draw the
same noise ε (a step's updates share its keys) and the first leaves φ as it was, so the
second sees the same samples z = μ_φ + σ_φ·ε: θ's update is exactly the paper's, and φ's
is the MIWAE gradient of the same samples taken at the decoder after its update (θ_{t+1}
instead of θ_t; an alternating form of the simultaneous step, one decoder step apart).
Adam works per element, so two Adam states over the two disjoint parts make the updates
one Adam over both would (the configs clip no gradient norm). A single term with stopped
gradients cannot do it: a term sees only the decoder's outputs, whose gradient reaches θ
and, through z, φ with the same weights, so no function of them gives θ the IWAE's
weights and φ the MIWAE's. Each step runs the model twice.

pythae 0.1.2's PIWAE differs from the paper in two ways: its coupled-optimizer trainer
backpropagates the MIWAE loss, clears the decoder's gradient alone, then backpropagates the
IWAE loss, so the encoder follows ∇_φ(MIWAE + IWAE); and it normalizes the MIWAE's weights
over the M axis of its [B, M, K] samples (so M and K swap roles, which is the same bound
only when M = K, as in its MNIST run).

test/iwae_bce is the IWAE_{M·K} test bound (comparable with `vae:iwae` trained at k = M·K),
test/miwae_bce the MIWAE_{M,K}; test/loss is their sum (each update's loss).

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, MLP 64-128-64-(8 Gaussian), M = K = 8
  (64 samples), 100 epochs.
    aejax train piwae --workdir runs/piwae_digits
  Expected: test/iwae_bce 23.27 nats (test/miwae_bce 23.49, test/loss 46.76,
  test/mse_per_pixel 0.0478) after 2200 steps, in about 35 s on a 2-core CPU. The same
  VAE trained on the IWAE alone with 64 samples (`vae --config.loss=iwae_bce
  --config.model.num_samples=64`) reaches test/iwae_bce 23.31. Its report (`aejax
  evaluate`, generation section): the negative IWAE bound at k = 1000, 23.22; the
  negative ELBO, 25.86 (the IWAE's: 23.23 and 27.66).

- `mnist`: pythae 0.1.2's MNIST setting (its default MLP 784-512-(16 Gaussian) and mirror;
  Adam at a constant 1e-3, batch 100, 100 epochs) with the M = K = 8 of pythae's MNIST
  run of PIWAE (examples/scripts/reproducibility/piwae.py, the paper's setting; pythae
  0.1.2 ships no MNIST config file for PIWAE) and its Bernoulli likelihood. Needs MNIST's
  IDX files in $AEJAX_DATA_DIR/mnist.
    aejax train piwae:mnist --workdir runs/piwae_mnist
  Measured with --config.num_epochs=1 (600 steps), not the 100 epochs: test/iwae_bce
  110.94 (test/miwae_bce 112.40, test/loss 223.34, test/mse_per_pixel 0.0206), in 1567 s
  on the 2-core CPU shared with other jobs (load average about 16). Its report (`aejax
  evaluate --iwae_k=64`, generation section): the negative IWAE bound at k = 64, 110.95;
  the negative ELBO, 117.20. For
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
        raise unknown_preset("piwae", arg, PRESETS)
    config = base_config()
    groups, per_group = 8, 8  # M, K
    miwae.importance_vae(config, arg, groups * per_group)
    config.loss = "iwae_bce"  # the decoder's update
    config.loss_params = "decoder"
    config.extra_phases = ("miwae_bce @ encoder",)  # then the encoder's
    config.loss_options.miwae_bce = ml_collections.ConfigDict({"groups": groups})
    return config
