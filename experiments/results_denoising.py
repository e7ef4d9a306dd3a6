"""The denoising row of docs/RESULTS.md: the denoising autoencoder against non-local means
and total variation (scikit-image), each classical denoiser's parameter chosen on noisy
validation images."""

import functools
import os

import jax
import numpy as np

from aejax import corruption
from aejax.errors import AejaxError
from results_compute import Adjust, Options, mean_psnr, train_preset


def _nl_means(x: np.ndarray, h: float, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    kw = dict(h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
    return np.stack([denoise_nl_means(img[..., 0], **kw)[..., None] for img in x])


def _tv(x: np.ndarray, weight: float, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    del sigma
    return denoise_tv_chambolle(x[..., 0], weight=weight, channel_axis=0)[..., None]


# Each denoiser's parameter grid (NLM's h as a multiple of sigma, TV's weight).
DENOISERS = {
    "non-local means (scikit-image)": (_nl_means, (0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)),
    "total variation, Chambolle (scikit-image)": (_tv, (0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)),
}


def denoising(workdir: str, adjust: Adjust, opts: Options, sigma: float = 0.5) -> dict:
    """Test PSNR of images under Gaussian noise σ: noisy, the DAE's output, and each
    classical denoiser with its parameter tuned on validation images. Outputs are clipped to
    [0, 1] (the DAE's sigmoid output already is)."""
    m, run = train_preset("results.py:dae", os.path.join(workdir, "run"), adjust)
    ds = m.dataset
    if ds.valid_x is None:
        raise AejaxError("results.py:dae: the denoising row needs config.data.valid_fraction")
    noise = jax.jit(functools.partial(corruption.gaussian, sigma=sigma))
    valid = ds.valid_x[: opts.tune_images]
    noisy_valid = np.asarray(noise(jax.random.key(1), valid))
    noisy = np.asarray(noise(jax.random.key(2), ds.test_x))
    psnr = {"noisy input": mean_psnr(ds.test_x, noisy)}
    psnr["denoising autoencoder"] = mean_psnr(ds.test_x, m.reconstruct(noisy))
    tuning = {}
    for name, (fn, grid) in DENOISERS.items():
        scores = {p: mean_psnr(valid, np.clip(fn(noisy_valid, p, sigma), 0, 1)) for p in grid}
        best = max(grid, key=scores.get)
        tuning[name] = {"grid": {str(p): s for p, s in scores.items()}, "chosen": best}
        psnr[f"{name}, {best:g}"] = mean_psnr(ds.test_x, np.clip(fn(noisy, best, sigma), 0, 1))
    classical = {k: v for k, v in psnr.items() if k not in ("noisy input", "denoising autoencoder")}
    best_classical = max(classical.values())
    return {
        "ours": psnr["denoising autoencoder"],
        "baselines": {k: v for k, v in psnr.items() if k != "denoising autoencoder"},
        "target_value": best_classical + 3.0,
        "runs": [run],
        "tuning": tuning,
        "table": {
            "header": ["method", "test PSNR (dB)"],
            "rows": [[k, v] for k, v in psnr.items()],
        },
        "notes": [
            f"Gaussian noise σ = {sigma} on the {len(ds.test_x)} test images (not clipped); "
            "PSNR per image (peak 1), averaged. Classical parameters (NLM's h in units of σ, "
            f"5x5 patches within 6 pixels; TV's weight) chosen on {len(valid)} noisy "
            "validation images: "
            + "; ".join(
                f"{n}: " + ", ".join(f"{p} → {s:.2f} dB" for p, s in t["grid"].items())
                for n, t in tuning.items()
            )
        ],
    }
