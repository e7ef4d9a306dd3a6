"""The colorization row: gray 32x32 patches of photographs the model never saw, coloured by
the autoencoder of `colorize:patches`, against the gray input and the training patches'
mean chroma; PSNR and Hasler & Süsstrunk's colourfulness (`aejax.color`).
"""

import os

import jax
import numpy as np

from aejax import color, corruption, plots
from aejax.errors import AejaxError
from results_compute import Adjust, Options, mean_psnr, train_preset

GRAY, MEAN, AE, AE_LUMA = (
    "gray input",
    "mean chroma of the training patches",
    "autoencoder output",
    "autoencoder chroma, input luminance kept",
)
FIGURE = "colorize_test_patches.png"


def pooled_psnr(x: np.ndarray, x_hat: np.ndarray) -> float:
    """10·log10(1 / MSE) of the MSE over every pixel of every image, in dB (peak 1): unlike
    the mean of per-image PSNRs, not dominated by the nearly gray images, whose per-image
    PSNR any colour guess lowers by much."""
    return float(10.0 * np.log10(1.0 / np.mean((np.asarray(x) - np.asarray(x_hat)) ** 2)))


def colourfulness(x: np.ndarray) -> float:
    """Mean over images [N, H, W, 3] of Hasler & Süsstrunk's M (0..255 scale)."""
    return float(np.mean(jax.jit(color.colourfulness)(np.asarray(x, np.float32))))


def colorings(reconstruct, x: np.ndarray, mean_chroma: np.ndarray) -> dict[str, np.ndarray]:
    """The candidates' colour images of the colour images x [N, H, W, 3], each from x's
    gray version only: the gray input itself, the mean chroma added to its luminance, the
    autoencoder's output (clipped to [0, 1]) and the autoencoder's YUV chroma on the
    input's luminance (its blurred luminance replaced)."""
    gray = np.asarray(jax.jit(corruption.grayscale)(None, x))
    luma = gray[..., :1]
    out = np.clip(reconstruct(gray), 0.0, 1.0)
    return {
        GRAY: gray,
        MEAN: np.asarray(color.with_chroma(luma, mean_chroma)),
        AE: out,
        AE_LUMA: np.asarray(color.with_chroma(luma, color.rgb_to_yuv(out)[..., 1:])),
    }


def colorize(
    workdir: str, adjust: Adjust, opts: Options, preset: str = "colorize.py:patches"
) -> dict:
    """Test PSNR and colourfulness of the autoencoder's colorings of held-out photos'
    patches, beside the gray input and the mean-chroma baseline; which of the autoencoder's
    two colorings (its output, or its chroma on the input's luminance) is ours is chosen
    by validation PSNR."""
    del opts
    m, run = train_preset(preset, os.path.join(workdir, "run"), adjust)
    ds = m.dataset
    if ds.valid_x is None:
        raise AejaxError(f"{preset}: the colorize row needs config.data.valid_fraction > 0")
    if ds.example_shape[-1] != 3:
        raise AejaxError(f"{preset}: the colorize row needs RGB images, not {ds.example_shape}")
    # The baseline's chroma: the mean U and V over every pixel of the training patches.
    mean_chroma = np.asarray(color.rgb_to_yuv(ds.train_x)[..., 1:].reshape(-1, 2).mean(0))
    valid = colorings(m.reconstruct, ds.valid_x, mean_chroma)
    test = colorings(m.reconstruct, ds.test_x, mean_chroma)
    valid_psnr = {k: mean_psnr(ds.valid_x, v) for k, v in valid.items()}
    test_psnr = {k: mean_psnr(ds.test_x, v) for k, v in test.items()}
    test_pooled = {k: pooled_psnr(ds.test_x, v) for k, v in test.items()}
    test_colour = {k: colourfulness(v) for k, v in test.items()}
    truth_colour = colourfulness(ds.test_x)
    chosen = max((AE, AE_LUMA), key=valid_psnr.get)
    baselines = (GRAY, MEAN)

    # Unseen test patches, the same from each held-out photo.
    show = np.concatenate([np.flatnonzero(ds.test_y == y)[:5] for y in np.unique(ds.test_y)])
    plots.save_image_rows(
        os.path.join(workdir, FIGURE),
        {
            "gray": test[GRAY][show],
            "ours": test[chosen][show],
            "mean chroma": test[MEAN][show],
            "truth": ds.test_x[show],
        },
        "Colorization of patches of photos not trained on",
    )
    rows = [
        [k + (" (ours: chosen on validation)" if k == chosen else ""), valid_psnr[k]]
        + [test_psnr[k], test_pooled[k], test_colour[k]]
        for k in test
    ]
    rows.append(["true colour images", "–", "–", "–", truth_colour])
    return {
        "ours": test_psnr[chosen],
        "baselines": {f"{k} (test PSNR)": test_psnr[k] for k in baselines},
        "target_value": max(test_psnr[k] for k in baselines),
        "colourfulness": {**test_colour, "truth": truth_colour},
        "pooled_psnr": test_pooled,
        "valid_psnr": valid_psnr,
        "chosen": chosen,
        "mean_chroma_uv": mean_chroma.tolist(),
        "figure": FIGURE,
        "runs": [run],
        "table": {
            "header": [
                "coloring",
                "validation PSNR (dB)",
                "test PSNR (dB)",
                "test PSNR of the pooled error (dB)",
                "test colourfulness (Hasler & Süsstrunk)",
            ],
            "rows": rows,
        },
        "notes": [
            f"{ds.name}: {len(ds.train_x)} training, {len(ds.valid_x)} validation (patches of "
            f"the training photos) and {len(ds.test_x)} test patches, 32x32 RGB. The input is "
            "the BT.601 luminance (the `grayscale` corruption); the mean chroma is the "
            f"training patches' mean YUV chroma (U, V) = ({mean_chroma[0]:.4f}, "
            f"{mean_chroma[1]:.4f}) on the input's luminance. PSNR per patch (peak 1), "
            "averaged (the pooled column: the PSNR of the MSE over all test pixels); "
            "colourfulness M = sqrt(σ_rg² + σ_yb²) + 0.3·sqrt(μ_rg² + μ_yb²) per patch on the "
            "0..255 scale (Hasler & Süsstrunk 2003: 15 slightly, 33 moderately, 45 averagely "
            "colourful), averaged. Which of the autoencoder's two colorings is ours was chosen "
            "by validation PSNR; the validation patches come from the training photos, so "
            "they do not measure how colours carry over to new photos, as the test patches "
            f"do. Trained on `{m.exp.config.loss}`: {run['steps']} steps of "
            f"batch {m.exp.config.batch_size}; Zhang et al. (2016) trained on 1.3M ImageNet "
            f"images for far longer. Figure: `{FIGURE}` (gray / ours / mean chroma / truth).",
        ],
    }
