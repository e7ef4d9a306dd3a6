"""The application rows of docs/RESULTS.md: what an autoencoder is used for beyond
reconstruction (semi-supervised learning, clustering, watermark removal, colorization,
augmentation, disentanglement), each beside its paper or a classical baseline.

Each row's computation lives in its own module (`experiments/app_<name>.py`) with the
signature of the rows in `results_compute`: (workdir, adjust, opts) -> the row's numbers.
`results_rows.ROWS` holds these rows after the reproduced published numbers.
"""

import app_augment
from results_compute import Row

APP_ROWS: dict[str, Row] = {
    "augmentation": Row(
        "Data augmentation with VAE and AAE samples, 100 / 1000 labelled MNIST images",
        "the small CNN of aejax.features trained on the labelled images alone, same steps",
        "test accuracy, 100 labelled, best augmentation on validation (mean of 3 seeds)",
        "none (a baseline: labelled images alone)",
        "≥ labelled only",
        True,
        None,
        app_augment.compute,
    ),
}
