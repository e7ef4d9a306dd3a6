"""The application rows of docs/RESULTS.md: what an autoencoder is used for beyond
reconstruction (semi-supervised learning, clustering, watermark removal, colorization,
augmentation, disentanglement), each beside its paper or a classical baseline.

Each row's computation lives in its own module (`experiments/app_<name>.py`) with the
signature of the rows in `results_compute`: (workdir, adjust, opts) -> the row's numbers.
`results_rows.ROWS` holds these rows after the reproduced published numbers.
"""

from app_colorize import colorize
from results_compute import Row

APP_ROWS: dict[str, Row] = {
    "colorize": Row(
        "Colorization, 32x32 patches of photos not trained on",
        "Zhang, Isola & Efros, ECCV 2016 (colorization; their regression baseline); Hasler & "
        "Süsstrunk 2003 (colourfulness); baselines: the gray input, the training mean chroma",
        "test PSNR (dB)",
        "no published number on these photos",
        "≥ the better baseline",
        True,
        None,
        colorize,
    ),
}
