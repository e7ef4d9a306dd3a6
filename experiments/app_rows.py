"""The application rows of docs/RESULTS.md: what an autoencoder is used for beyond
reconstruction (semi-supervised learning, clustering, watermark removal, colorization,
augmentation, disentanglement), each beside its paper or a classical baseline.

Each row's computation lives in its own module (`experiments/app_<name>.py`) with the
signature of the rows in `results_compute`: (workdir, adjust, opts) -> the row's numbers.
`results_rows.ROWS` holds these rows after the reproduced published numbers.
"""

import app_cluster
from results_compute import Row

APP_ROWS: dict[str, Row] = {
    "clustering": Row(
        "Unsupervised clustering, MNIST (adversarial autoencoder)",
        "Makhzani et al. 2016, Adversarial Autoencoders, §6 (16 clusters 9.55%, 30 clusters "
        "4.10%); k-means on pixels and PCA codes, run by the same script",
        "test cluster error, 16 clusters (each labelled by its validation majority)",
        "0.0955 (16 clusters); 0.0410 (30)",
        "≤ k-means with 16 clusters",
        False,
        None,
        app_cluster.compute,
    ),
}
