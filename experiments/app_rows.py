"""The application rows of docs/RESULTS.md: what an autoencoder is used for beyond
reconstruction (semi-supervised learning, clustering, watermark removal, colorization,
augmentation, disentanglement), each beside its paper or a classical baseline.

Each row's computation lives in its own module (`experiments/app_<name>.py`) with the
signature of the rows in `results_compute`: (workdir, adjust, opts) -> the row's numbers.
`results_rows.ROWS` holds these rows after the reproduced published numbers.
"""

import app_watermark
from results_compute import Row

APP_ROWS: dict[str, Row] = {
    "watermark": Row(
        "Watermark removal, MNIST and Fashion-MNIST",
        "scikit-image's biharmonic inpainting (`inpaint_biharmonic`) given the true mask",
        "test PSNR (dB) against the clean image, MNIST",
        "the stamped input; biharmonic inpainting with the true mask",
        "≥ biharmonic inpainting (true mask)",
        True,
        None,
        app_watermark.compute,
    ),
}
