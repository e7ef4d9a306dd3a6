"""The watermark-removal row: a denoising conv autoencoder trained on watermarked images
(aejax/configs/watermark.py), against the stamped input and scikit-image's biharmonic
inpainting given the true mask of each stamp (the classical method's best case).

    python experiments/results.py --rows watermark --workdir runs/results

The test images are stamped once with a fixed key (`aejax.watermark`, the options of the
preset's `config.corruption`); `watermark_stamp` with the same key gives the pixels each
stamp touched, which the inpainting fills from the rest of the image. Nothing is tuned: the
presets are fixed and biharmonic inpainting has no parameter.
"""

import functools
import os
import time

import jax
import numpy as np

from aejax import watermark
from results_compute import Adjust, Options, mean_psnr, train_preset

DATASETS = {"MNIST": "watermark.py:mnist", "Fashion-MNIST": "watermark.py:fashion"}
TEST_KEY = 2  # the stamps of the test images (training draws its own from config.seed)
FIGURE = "examples.png"
FIGURE_IMAGES = 8


def biharmonic(stamped: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """Each image's touched pixels filled by biharmonic inpainting from the others,
    clipped to [0, 1]. stamped [N, H, W, C], touched [N, H, W] bool -> [N, H, W, C]."""
    from skimage.restoration import inpaint_biharmonic

    out = np.empty_like(stamped)
    for i, (img, mask) in enumerate(zip(stamped, touched, strict=True)):
        if not mask.any():  # nothing to fill (skimage wants at least one masked pixel)
            out[i] = img
            continue
        # Copies: skimage's Cython code needs writable buffers; jax's arrays are read-only.
        filled = inpaint_biharmonic(np.array(img), np.array(mask), channel_axis=-1)
        out[i] = np.clip(filled, 0.0, 1.0)
    return out


def _stamp(key, x, **options):
    """(the stamped batch, the pixels the stamps touched) of one draw."""
    return watermark.watermark(key, x, **options), watermark.watermark_stamp(
        key, x.shape, **options
    ).touched


def _one(name: str, spec: str, workdir: str, adjust: Adjust) -> dict:
    """Trains (or reuses) one preset and scores its test images (and, for reference, its
    validation images, which are stamped in the same draw)."""
    m, run = train_preset(spec, os.path.join(workdir, spec.partition(":")[2]), adjust)
    ds = m.dataset
    options = watermark.check_options(
        {k: v for k, v in m.exp.config.corruption.items() if k in watermark.DEFAULTS}
    )
    x = ds.test_x
    valid = ds.valid_x if ds.valid_x is not None else x[:0]
    # One draw for the validation and test images together (one compilation, not two).
    both = np.concatenate([valid, x])
    stamped, touched = jax.jit(functools.partial(_stamp, **options))(jax.random.key(TEST_KEY), both)
    stamped, touched = np.array(stamped), np.array(touched)
    restored = m.reconstruct(stamped)
    n = len(valid)
    stamped, touched, ours = stamped[n:], touched[n:], restored[n:]
    t0 = time.perf_counter()
    inpainted = biharmonic(stamped, touched)
    seconds = time.perf_counter() - t0
    out = {
        "stamped": mean_psnr(x, stamped),
        "ours": mean_psnr(x, ours),
        "biharmonic": mean_psnr(x, inpainted),
        # Given the true mask too: the autoencoder's output inside it, the input outside.
        "ours_masked": mean_psnr(x, np.where(touched[..., None], ours, stamped)),
        # The autoencoder on the clean images: the ceiling its bottleneck sets.
        "ours_clean": mean_psnr(x, m.reconstruct(x)),
        "batch_size": m.exp.config.batch_size,
        "area": float(touched.sum(axis=(1, 2)).mean()),
        "images": len(x),
        "biharmonic_seconds": seconds,
        "options": options,
        "run": run,
    }
    if n:  # for reference: the same measure on held-out training images
        out["valid_ours"] = mean_psnr(valid, restored[:n])
    k = FIGURE_IMAGES
    out["figure"] = {
        "stamped": stamped[:k],
        "ours": ours[:k],
        "biharmonic": inpainted[:k],
        "clean": x[:k],
    }
    return out


def compute(workdir: str, adjust: Adjust, opts: Options) -> dict:
    """Test PSNR (dB, peak 1, mean over images) on MNIST and Fashion-MNIST of the stamped
    input, the autoencoder's output and biharmonic inpainting with the true mask. Ours is
    MNIST's; its target is the biharmonic inpainting's MNIST figure."""
    from aejax import plots

    del opts
    res = {name: _one(name, spec, workdir, adjust) for name, spec in DATASETS.items()}
    rows_fig = {}
    for name, r in res.items():
        for label, images in r.pop("figure").items():
            rows_fig[f"{name}: {label}"] = images
    plots.save_image_rows(
        os.path.join(workdir, FIGURE),
        rows_fig,
        "Watermarked test images, the autoencoder's output, biharmonic inpainting "
        "(true mask), clean",
        xlabel="test example",
    )
    mnist = res["MNIST"]
    o = mnist["options"]
    header = [
        "test PSNR (dB)",
        "stamped input",
        "denoising conv AE (ours)",
        "biharmonic, true mask",
        "conv AE inside the true mask",
    ]
    keys = ("stamped", "ours", "biharmonic", "ours_masked")
    rows = [[n, *(r[k] for k in keys)] for n, r in res.items()]
    budget = ", ".join(
        f"{n}: {r['run']['steps']} steps at batch {r['batch_size']} "
        f"(validation PSNR {r.get('valid_ours', float('nan')):.2f} dB)"
        for n, r in res.items()
    )
    ceiling = ", ".join(f"{r['ours_clean']:.2f} dB on {n}" for n, r in res.items())
    return {
        "ours": mnist["ours"],
        "baselines": {
            f"{label} ({n})": r[k]
            for n, r in res.items()
            for k, label in (
                ("stamped", "stamped input"),
                ("biharmonic", "biharmonic inpainting, true mask"),
                ("ours", "denoising conv AE"),
                ("ours_masked", "conv AE inside the true mask"),
            )
            if (n, k) != ("MNIST", "ours")
        },
        "target_value": mnist["biharmonic"],
        "runs": [r["run"] for r in res.values()],
        "per_dataset": {n: {k: v for k, v in r.items() if k != "run"} for n, r in res.items()},
        "table": {"header": header, "rows": rows},
        "notes": [
            f"Ours is the MNIST figure. Every one of the {mnist['images']} test images of each "
            f"data set is stamped once (key {TEST_KEY}) with a text of {o['length']} random "
            f"characters (5x7 bitmap font) or a logo (ring, cross, bars), height or side "
            f"{o['scale'][0]:g} to {o['scale'][1]:g} of the image's, opacity "
            f"{o['opacity'][0]:g} to {o['opacity'][1]:g} toward {o['value']} (mean stamp area "
            + ", ".join(f"{n} {r['area']:.0f} pixels" for n, r in res.items())
            + "); PSNR per image (peak 1), averaged over all of them. The autoencoder is not "
            "told where the stamp is; scikit-image's `inpaint_biharmonic` is given the true "
            "mask (the pixels each stamp touched), the classical method's best case, and "
            "fills them from the rest of the image (in "
            + ", ".join(f"{r['biharmonic_seconds']:.0f} s on {n}" for n, r in res.items())
            + "). The last column is given the true mask too: the autoencoder's output inside "
            "it, the stamped input outside. On the clean test images the autoencoder's output "
            f"scores {ceiling}: its reconstruction sets the ceiling of a blind removal. "
            "Nothing is tuned. Budget: "
            + budget
            + ": what a shared 2-core CPU trains in minutes; longer training would raise the "
            "autoencoder's figures. Figure (stamped, ours, biharmonic, clean; "
            f"{FIGURE_IMAGES} test images per data set): `{FIGURE}` beside this row's "
            "result.json (runs/results/watermark/).",
        ],
    }
