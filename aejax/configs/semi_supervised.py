"""Semi-supervised learning with few labels (Kingma, Rezende, Mohamed & Welling, 2014,
"Semi-Supervised Learning with Deep Generative Models"): M2, the labels a partly observed
latent, and M1, a classifier on a VAE's codes.

The "partly_labelled" data source (`aejax.data.semisup`) flattens each image and appends
its one-hot label for `data.num_labels` class-balanced training examples (drawn with
`data.label_seed`) and zeros for the rest; `data.num_valid` training examples are held out
as a labelled validation split, and the labelled rows are repeated until they are
`data.labelled_fraction` of the training rows (Kingma et al.'s code puts labelled
examples in every minibatch). The model `m2` (`aejax.models.m2`) runs q(z|x,y) and
p(x|y,z) for each of the 10 classes; the recipe "m2_elbo + α*m2_classify"
(`aejax.losses.semisup`) takes the labelled bound at the observed label, the unlabelled
bound (the expectation over q(y|x) plus its entropy) elsewhere, and α·(−log q(y|x)) on
labelled rows. α = 0.1·N_u/N_l (`alpha`): with half of each batch labelled, the per-batch
form of the paper's α = 0.1·N. Test error: the argmax of q(y|x) (`experiments/app_semisup.py`,
the results row `semi_supervised`, also scores M1 and M1+M2 and logistic regressions).

Presets:
- `tiny` (default): scikit-learn's 8x8 digits, 50 labels (5 a class), 100 validation
  examples; M2 with MLPs of 64 units, z of 8; 600 steps of batch 64.
    aejax train semi_supervised:tiny --workdir runs/m2_tiny
  Expected: test/m2_elbo 26.79 (nats per image; the test split is all unlabelled, so this
  is −U(x)); the argmax of q(y|x) errs on 18.4% of the test digits (logistic regression on
  the 50 labelled images' pixels: 14.8%). 181 s wall, 54 s of CPU, on the 2-core CPU
  shared with other jobs (load average about 10).
- `m2_mnist`: MNIST, 100 labels, 100 validation examples; M2 as in the paper (one hidden
  layer of 500 softplus units in each MLP, z of 50), batch 100, Adam 1e-3, 9,000 steps
  (15 epochs; the paper trains for thousands). Each step is ten times a VAE's work: 9,000
  steps took 550 to 630 s on the 2-core CPU shared with two other training jobs (about
  32 steps/s alone, over a 200-step run); on an H200 GPU shared by 14 training processes,
  a median of 2,190 steps/s (100 labels) to 3,750 (1,000 labels). Expected (100 labels):
  test/m2_elbo 110.26 nats, and the argmax of q(y|x) errs on 20.1% of the test digits
  (the results row `semi_supervised`: 10.3%, 9.8%, 6.5% with 600, 1,000, 3,000 labels).
    aejax train semi_supervised:m2_mnist --workdir runs/m2_mnist
- `m1_mnist`: M1, a VAE 784-600-600-(50 Gaussian) on all 60,000 MNIST training images
  (no labels), softplus, bce + kl_normal, batch 100, 30 epochs (18,000 steps; test/loss
  96.97 nats; 352 s on the 2-core CPU shared with another job, a median of 1,256
  steps/s on the shared H200);
  `experiments/app_semisup.py` fits a
  logistic regression to the codes of the labelled examples.
    aejax train semi_supervised:m1_mnist --workdir runs/m1_mnist
- `m1m2_mnist`: M2 on M1's codes (the posterior means, 50 features, Gaussian likelihood
  with a learned variance per feature), `data.name` the `.npz` of the codes that
  `experiments/app_semisup.py` writes (the "split_npz" source); 9,000 steps.
"""

from aejax.config import base_config, digits_schedule, mnist_schedule
from aejax.configs import unknown_preset

PRESETS = ("tiny", "m2_mnist", "m1_mnist", "m1m2_mnist")


def alpha(num_labels: int, num_train: int, fraction: float = 0.5) -> float:
    """The weight of `m2_classify`: 0.1·N_u/N_l, scaled by (1 − f)/f for a labelled
    fraction f of each batch (1 at f = ½), so that relative to the unlabelled bound it
    weighs what it does when each step sees one labelled and one unlabelled batch."""
    unlabelled = num_train - num_labels
    return 0.1 * unlabelled / num_labels * (1 - fraction) / fraction


def set_labels(config, num_labels: int, num_train: int) -> None:
    """Sets `data.num_labels` and the recipe's α for a training pool of num_train images
    (the training split less the validation examples)."""
    config.data.num_labels = num_labels
    a = alpha(num_labels, num_train, config.data.labelled_fraction)
    likelihood = "m2_elbo_gaussian" if config.model.likelihood == "gaussian_nll" else "m2_elbo"
    config.loss = f"{likelihood} + {a:.4g}*m2_classify + 0*m2_labelled"


def get_config(arg: str = "tiny"):
    if arg not in PRESETS:
        raise unknown_preset("semi_supervised", arg, PRESETS)
    config = base_config()
    if arg == "m1_mnist":
        mnist_schedule(config, 30)
        config.batch_size = 100
        config.model.name = "vae"
        config.model.activation = "softplus"
        config.model.encoder_widths = (600, 600, 50)
        config.model.sample_at_eval = True
        config.loss = "bce + kl_normal"
        return config
    config.model.name = "m2"
    config.data.source = "partly_labelled"
    config.data.labelled_fraction = 0.5
    config.data.label_seed = 0
    config.model.activation = "softplus"
    config.model.num_classes = 10
    if arg == "tiny":
        config.data.base_source = "digits"
        config.data.num_valid = 100
        config.model.encoder_widths = (64, 8)
        config.model.classifier_widths = (64,)
        config.model.likelihood = "bce"
        digits_schedule(config, 1e-3)
        config.num_epochs, config.num_steps = 0, 600
        config.checkpoint_every_steps = 200
        set_labels(config, 50, 1438 - 100)
        return config
    mnist_schedule(config, 10)  # (it sets the source to "idx": the base, here)
    config.data.source = "partly_labelled"
    config.batch_size = 100
    config.data.base_source = "idx"
    config.data.num_valid = 100
    config.model.encoder_widths = (500, 50)
    config.model.classifier_widths = (500,)
    config.num_epochs = 0
    config.log_every_steps = config.steps_per_dispatch = 20
    if arg == "m2_mnist":
        config.model.likelihood = "bce"
        config.num_steps = 9_000
    else:  # m1m2_mnist: M2 on M1's codes, a fixed train/test split in an .npz
        config.data.base_source = "split_npz"
        config.data.name = ""
        config.model.likelihood = "gaussian_nll"
        config.num_steps = 9_000
    config.eval_every_steps = config.checkpoint_every_steps = config.num_steps
    set_labels(config, 100, 60_000 - config.data.num_valid)
    return config
