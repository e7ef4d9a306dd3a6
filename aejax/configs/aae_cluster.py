"""Unsupervised clustering with an adversarial autoencoder (Makhzani et al., 2016,
"Adversarial Autoencoders", §6).

The encoder outputs a softmax y over K clusters and a continuous style z; the decoder
reconstructs from [y, z] (`aae_cluster`, `aejax.models.aae_cluster`). Each step makes the
paper's three updates, each with its own Adam state:

1. reconstruction: `config.loss` ("mse") on the autoencoder (`config.loss_params`);
2. both discriminators: "adv_discriminator + adv_cat_discriminator @ discriminators", one
   telling z from N(0, I) draws, the other y from one-hot draws of a uniform categorical;
3. the encoder as generator: "adv_generator + adv_cat_generator @ autoencoder/encoder".

An example's cluster is the argmax of y (the first K entries of `encode`'s output). Its
error against the labels, each cluster labelled by the majority class of its validation
examples: `aejax.clustering.cluster_accuracy`; the results row `clustering`
(`experiments/app_cluster.py`) scores it beside k-means.

Presets (the part after the colon):

- `digits` (default): scikit-learn's 8x8 digits, 64-256-128-(16 clusters + 4 style),
  batch norm, discriminators 64-64, 50 epochs.
    aejax train aae_cluster --workdir runs/aae_cluster_digits
  Expected: test/mse_per_pixel 0.0173, test/adv_cat_discriminator 0.999 (chance: 1.39);
  10 of the 16 clusters used; purity 0.77 (each cluster labelled by its test majority)
  (measured on a 2-core CPU shared with other jobs). Without batch norm every digit went to
  one cluster.
- `mnist16`, `mnist30`: MNIST with 16 or 30 clusters, 784-3000-3000-(K + 5 style) ReLU
  with batch norm, mirrored decoder, discriminators 3000-3000 on y and on z (the paper's
  widths), batch 128, Adam 1e-3 cosine, 50 epochs of 50k training images (10k held out to
  label the clusters). The paper trains longer. At these widths a CPU takes hours: on an
  H200 GPU shared by 14 training processes `mnist16` ran at a median of 444 steps/s and
  ended at test/mse_per_pixel 0.0196 (test/adv_cat_discriminator 0.843, chance 1.39).
    aejax train aae_cluster:mnist16 --workdir runs/aae_cluster_mnist16
  At 512 units a layer (`--config.model.encoder_widths='(512,512,5)'
  --config.model.discriminator_widths='(512,512)'`, what the results row's
  `--cluster_width 512` trains) a 2-core CPU runs 56 steps/s alone, 11.5 and 12.8 min for
  the two 50-epoch runs with another job sharing it; test cluster errors 0.371 (16
  clusters, 11 used) and 0.392 (30, 23 used), worse than k-means on the pixels.
  Measured numbers: the `clustering` row in docs/RESULTS.md.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("digits", "mnist16", "mnist30")
# The MNIST presets' two hidden layers of the encoder, decoder and discriminators (the
# paper's width).
MNIST_WIDTH = 3000


def get_config(arg: str = "digits"):
    config = base_config()
    config.model.name = "aae_cluster"
    config.model.num_clusters = 16
    config.model.discriminator_widths = (64, 64)
    # Batch norm before each hidden ReLU: without it the softmax head's logits share one
    # large component across examples (the inputs are non-negative), so the category
    # discriminator's pull to one-hot vectors sent every example to one cluster, where the
    # saturated softmax passes no gradient (measured on the digits: 1 cluster of 16 used,
    # against 10 with batch norm).
    config.model.batch_norm = True
    config.loss = "mse"
    # The reconstruction update moves the encoder and decoder alone.
    config.loss_params = "autoencoder"
    config.extra_phases = (
        "adv_discriminator + adv_cat_discriminator @ discriminators",
        "adv_generator + adv_cat_generator @ autoencoder/encoder",
    )
    if arg == "digits":
        config.model.encoder_widths = (256, 128, 4)
        digits_schedule(config, 1e-3)
        config.num_epochs = 50
    elif arg in ("mnist16", "mnist30"):
        mnist_schedule(config, 50)
        config.model.num_clusters = int(arg.removeprefix("mnist"))
        config.model.encoder_widths = (MNIST_WIDTH, MNIST_WIDTH, 5)
        config.model.discriminator_widths = (MNIST_WIDTH, MNIST_WIDTH)
        config.data.valid_fraction = 1 / 6  # 10k of the 60k training images
        config.eval_every_steps = 390 * 10
    else:
        raise unknown_preset("aae_cluster", arg, PRESETS)
    return config
