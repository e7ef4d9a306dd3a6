"""Autoencoders for anomaly detection: the presets of experiments/anomaly.py (the
protocols, splits and baselines are described in experiments/anomaly_protocols.py). The
score is each example's reconstruction error (and a VAE's negative ELBO); PCA with as many
components as the code and IsolationForest are fitted on the same training data. Settings
were chosen on validation data only (below), never on the test split. Times are wall-clock
on a 2-core CPU shared with other jobs (load average about 7), so an idle machine is faster.

Presets (the part after the colon):

- `mnist` (default): one-class MNIST (Ruff et al., 2018): one MLP AE per digit,
  784-512-256-128-16-128-256-512-784, ReLU, sigmoid output, MSE, 40 epochs of the ~5.4k
  training images of the digit (a tenth held out as validation normals). Needs MNIST's IDX
  files in $AEJAX_DATA_DIR/mnist.
    python experiments/anomaly.py --protocol mnist_one_class \
        --config anomaly:mnist --workdir runs/anomaly_mnist
  Expected: mean test AUROC 0.968 (per digit 0.996 0.999 0.943 0.960 0.959 0.974 0.994 0.972
  0.904 0.982), against 0.954 for PCA-16 (0.955 for PCA-32) and 0.860 for IsolationForest;
  scored instead by Σ|x̂ − x|^p with p chosen per digit on validation data (p = 2 2 4 3 4
  3 3 4 3 2), 0.970; about 35 s per digit on an idle machine, 7 min in all (16 min with
  three other jobs running). Chosen on validation data: each digit's held-out
  normal training images against 2000 training images of the other digits (the train
  split, never the test split), mean validation AUROC over digits 2, 3, 5, 8: code 32, 20
  epochs 0.943; code 16, 20 epochs 0.946; code 8, 40 epochs 0.931; code 16 with Gaussian
  input noise σ = 0.3 0.943; code 16, 40 epochs 0.948 (this preset). BCE instead of MSE
  and a VAE scored no better on the digits tried.

- `mnist_vae`: the same protocol with a VAE, 784-512-256-128-(16 Gaussian), Bernoulli
  likelihood (bce + kl_normal), 20 epochs; scored by reconstruction error and by the
  negative ELBO (one z per image, drawn with a fixed key).
    python experiments/anomaly.py --protocol mnist_one_class \
        --config anomaly:mnist_vae --workdir runs/anomaly_mnist_vae
  Expected: mean test AUROC 0.948 by reconstruction error and 0.910 by negative ELBO
  (per digit, reconstruction / ELBO: 0.986 / 0.969, 0.999 / 0.999, 0.905 / 0.859, 0.926 /
  0.857, 0.955 / 0.914, 0.955 / 0.906, 0.982 / 0.953, 0.957 / 0.945, 0.855 / 0.775, 0.959 /
  0.923): below the plain AE and PCA-16 (0.954). The likelihood ranks simple images of other
  digits (few lit pixels) as likely (Nalisnick et al., 2019). About 60 s per digit, 10 min.

- `tabular`: the eight ADBench classical sets (one-class; experiments/anomaly_protocols.py),
  an MLP D-64-32-2-32-64-D with a linear output on standardized features, MSE, 4000 steps
  of 128 rows whatever the set's size (2k to 360k training rows). The code of 2 is below the
  fewest features of the sets (3: http and smtp; the others have 6 to 36); for a single set
  with more features a larger code can be set with
  --config.model.encoder_widths='(64, 32, 8)'. Fixed before looking at any result (the
  validation split holds normal rows only, so it cannot rank anomaly scores).
    python experiments/anomaly.py --protocol adbench \
        --config anomaly:tabular --workdir runs/anomaly_adbench
  Expected: mean test AUROC 0.919 against 0.928 for PCA-2 and 0.951 for IsolationForest
  (per set, AE / PCA-2 / IsolationForest: annthyroid 0.799 / 0.904 / 0.904, cardio 0.858 /
  0.945 / 0.957, http 0.997 / 0.991 / 0.994, mammography 0.860 / 0.879 / 0.873, satimage-2
  0.993 / 0.999 / 0.992, shuttle 0.999 / 0.997 / 0.996, smtp 0.907 / 0.771 / 0.904, thyroid
  0.936 / 0.937 / 0.986); about 3 min in all. The protocol also trains codes 1 and 4 and
  chooses, per set, the code and the score (squared, or standardized by each feature's
  training residual) on validation normals against synthetic anomalies
  (aejax.anomaly.synthetic_anomalies): mean 0.933 (per set 0.956 0.814 0.997 0.859 0.981
  1.000 0.912 0.945; chosen codes 4 4 2 2 4 4 1 4, standardized everywhere but http), about
  90 s more.
"""

from aejax.config import base_config, mnist_schedule
from aejax.configs import unknown_preset

# The presets, the default first (`aejax list` shows them).
PRESETS = ("mnist", "mnist_vae", "tabular")


def get_config(arg: str = "mnist"):
    config = base_config()
    config.data.valid_fraction = 0.1
    if arg == "mnist":
        mnist_schedule(config, 40)  # one digit: about 5.4k training images, 42 steps an epoch
        config.model.encoder_widths = (512, 256, 128, 16)
        config.eval_every_steps = 500
        config.checkpoint_every_steps = 500
    elif arg == "mnist_vae":
        mnist_schedule(config, 20)
        config.model.name = "vae"
        config.model.encoder_widths = (512, 256, 128, 16)  # hidden widths, the latent size
        config.model.x_logvar = "none"
        config.model.sample_at_eval = True  # the eval step's loss: a one-sample -ELBO
        config.loss = "bce + kl_normal"
        config.eval_every_steps = 500
        config.checkpoint_every_steps = 500
    elif arg == "tabular":
        config.data.source = "npz"  # the protocol sets data.name, train_classes, fractions
        config.data.name = "adbench_classical/6_cardio"
        config.model.encoder_widths = (64, 32, 2)  # a code of 2: below the fewest features, 3
        config.model.output_activation = "linear"  # standardized features are unbounded
        config.batch_size = 128
        config.num_steps = 4000  # one budget for 2k to 360k training rows
        config.eval_every_steps = 1000
        config.checkpoint_every_steps = 1000
        config.log_every_steps = 100
        config.steps_per_dispatch = 100
    else:
        raise unknown_preset("anomaly", arg, PRESETS)
    return config
