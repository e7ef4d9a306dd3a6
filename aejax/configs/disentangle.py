"""Disentangling VAEs: β-TC-VAE, FactorVAE and the annealed-capacity β-VAE, beside the VAE.

- β-TC-VAE (Chen, Li, Grosse & Duvenaud, 2018, "Isolating Sources of Disentanglement in
  Variational Autoencoders"): the KL split into index-code mutual information, total
  correlation and dimension-wise KL, the total correlation weighted β = 6 ("bce +
  tc_mutual_information + 6*tc_total_correlation + tc_dimwise_kl"; minibatch-weighted
  sampling with the training split's size, `aejax.losses.disentangle`).
- FactorVAE (Kim & Mnih, 2018, "Disentangling by Factorising"): "bce + kl_normal +
  γ*factor_tc" with γ = 35 and a discriminator of six 1000-unit layers (two of 64 on the
  digits) trained by the extra phase "factor_discriminator @ discriminator"
  (`aejax.models.factor_vae`).
- Annealed capacity (Burgess et al., 2018, "Understanding disentangling in β-VAE"):
  "bce + 1000*kl_capacity", the KL pulled towards a capacity raised from 0 to 25 nats
  over the run (`loss_options.kl_capacity`).
- `vae`: the plain VAE, "bce + kl_normal", the baseline they are measured against.

Presets: `<model>` (the digits, 8x8: trains in seconds; MLP 128-64-(8 Gaussian), 100
epochs) and `<model>_sprites` (64x64 sprites with dSprites' factors, `aejax.data.sprites`:
MLP 1200-1200-(10 Gaussian) as Chen et al.'s dSprites encoder, batch 64, Adam 1e-3
constant, 10,000 steps on 50,000 images drawn from the grid). The disentanglement metrics
of trained sprites runs, over seeds: `experiments/disentangle.py`.

    aejax train disentangle:beta_tcvae --workdir runs/tc_digits
    aejax train disentangle:factor_vae_sprites --workdir runs/factor_sprites

Measured on the digits (2200 steps each; times on the 2-core CPU shared with other jobs,
about 4x slower than alone):

- `beta_tcvae`: Expected: test/bce 22.99 (test/tc_mutual_information 9.14,
  test/tc_total_correlation 50.9, test/tc_dimwise_kl −58.1: minibatch-weighted sampling
  with N = 1438 biases each part by about log N·M per dimension; their sum is the KL),
  128 s.
- `factor_vae`: Expected: test/bce 24.46 (test/kl_normal 4.53, test/factor_tc 0.004,
  test/factor_discriminator 1.390, chance being 2·log 2 = 1.386: on 8 digit codes the
  discriminator finds little total correlation to penalize), 198 s.
- `annealed`: Expected: test/bce 25.18 (test/kl_capacity 0.18: the KL ends 0.18 nats from
  its capacity of 10), 152 s.
- `vae`: Expected: test/bce 21.40 (test/kl_normal 2.97), 176 s.

Measured on the sprites (10,000 steps, seeds 0, 1, 2; mean over the seeds; the results row
`disentanglement` in docs/RESULTS.md, with the metrics). These runs trained on the 2-core
CPU, most of them while one other training job shared it:

- `beta_tcvae_sprites`: test/bce 92.8; 13 to 16 min a run (about 21 steps/s).
- `factor_vae_sprites`: test/bce 74.1; 16 min a run alone (about 11 steps/s: the six
  1,000-unit layers of the discriminator), 27 to 29 min shared.
- `vae_sprites`: test/bce 54.4; 15 min a run.
- `annealed_sprites`: test/bce 116.8 (100.0 to 140.3 over the seeds); 7.8 min a run
  alone (about 21 steps/s), 12 to 14 min shared.
"""

import ml_collections

from aejax.config import base_config, digits_schedule
from aejax.configs import unknown_preset

MODELS = ("beta_tcvae", "factor_vae", "annealed", "vae")
PRESETS = (*MODELS, *(f"{m}_sprites" for m in MODELS))

RECIPES = {
    "beta_tcvae": "bce + tc_mutual_information + 6*tc_total_correlation + tc_dimwise_kl",
    "factor_vae": "bce + kl_normal + 35*factor_tc",
    "annealed": "bce + 1000*kl_capacity",
    "vae": "bce + kl_normal",
}


def get_config(arg: str = "beta_tcvae"):
    if arg not in PRESETS:
        raise unknown_preset("disentangle", arg, PRESETS)
    model = arg.removesuffix("_sprites")
    sprites = arg.endswith("_sprites")
    config = base_config()
    config.model.name = "factor_vae" if model == "factor_vae" else "vae"
    config.model.sample_at_eval = True
    config.loss = RECIPES[model]
    if sprites:
        config.data.source = "sprites"
        config.data.max_train, config.data.max_test = 50_000, 5_000
        config.model.encoder_widths = (1200, 1200, 10)
        config.batch_size = 64
        config.num_steps = 10_000
        config.optimizer.schedule = "constant"
        config.log_every_steps = 100
        config.steps_per_dispatch = 100
        config.eval_every_steps = 2_500
        config.checkpoint_every_steps = 2_500
    else:
        config.model.encoder_widths = (128, 64, 8)
        digits_schedule(config, 1e-3)
    if model == "factor_vae":
        config.model.vae_base = "vae"
        config.model.discriminator_widths = (1000,) * 6 if sprites else (64, 64)
        # The VAE's update leaves the discriminator alone; its own phase trains it.
        config.loss_params = "vae"
        config.extra_phases = ("factor_discriminator @ discriminator",)
    if model == "annealed":
        steps = config.num_steps or config.num_epochs * 22
        config.loss_options.kl_capacity = ml_collections.ConfigDict(
            {"capacity_max": 25.0 if sprites else 10.0, "anneal_steps": steps}
        )
    return config
