"""The application rows of docs/RESULTS.md: what an autoencoder is used for beyond
reconstruction (semi-supervised learning, clustering, watermark removal, colorization,
augmentation, disentanglement), each beside its paper or a classical baseline.

Each row's computation lives in its own module (`experiments/app_<name>.py`) with the
signature of the rows in `results_compute`: (workdir, adjust, opts) -> the row's numbers.
`results_rows.ROWS` holds these rows after the reproduced published numbers.
"""

import app_augment
import app_cluster
import app_disentangle
import app_watermark
from app_colorize import colorize
from app_semisup import compute as semi_supervised
from results_compute import Row

APP_ROWS: dict[str, Row] = {
    "disentanglement": Row(
        "Disentanglement, sprites with dSprites' factors",
        "Chen et al. 2018 (β-TC-VAE), Kim & Mnih 2018 (FactorVAE), Burgess et al. 2018 "
        "(annealed capacity); metrics as in Locatello et al., ICML 2019",
        "MIG of β-TC-VAE, mean over seeds",
        "above the VAE's (Chen et al. 2018, Locatello et al. 2019)",
        "≥ the VAE's MIG",
        True,
        None,
        app_disentangle.compute,
    ),
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
    "semi_supervised": Row(
        "Semi-supervised MNIST, 100 labels: M1+M2 (and M1, M2 at 100/600/1000/3000 labels)",
        "Kingma, Rezende, Mohamed & Welling 2014, Table 1 (M1+M2 with 100 labels: 3.33%)",
        "test error (%) of M1+M2 with 100 labels",
        "3.33",
        "≤ 3.33",
        False,
        3.33,
        semi_supervised,
    ),
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
