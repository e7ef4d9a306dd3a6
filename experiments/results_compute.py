"""The computations of the rows of docs/RESULTS.md (`results_rows.ROWS`) that train and
evaluate single runs: reconstruction against PCA, the VAE's likelihood bounds, the linear
probe and the Fashion-MNIST row (denoising: `results_denoising.py`), and what every row's
computation shares: `Options`, `Row`, `train_preset`, `mean_psnr`, `machine`.

Each takes (workdir, adjust, opts), trains its runs (presets of aejax/configs/results.py) under
workdir, reusing finished ones, and returns the row's numbers. Every choice is fixed in
advance or made on a validation split carved from the training data (or binarized MNIST's
own); the test split is only ever scored.
"""

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from aejax import config as config_lib
from aejax import metrics
from aejax.configs.aae_cluster import MNIST_WIDTH as CLUSTER_PAPER_WIDTH
from aejax.configs.disentangle import MODELS as DISENTANGLE_MODELS
from aejax.errors import AejaxError, ConfigError
from aejax.evaluate import TrainedModel

Adjust = Callable[[ml_collections.ConfigDict], None]


@dataclasses.dataclass(frozen=True)
class Options:
    """Evaluation settings of the rows (tests shrink them).

    Attributes:
      iwae_k: importance samples per test image for the VAE's bound.
      valid_k: importance samples per validation image, to choose the VAE's run.
      tune_images: validation images the classical denoisers are tuned on.
      probe_c: the linear probes' inverse L2 strengths tried on validation.
      classes: the one-class protocol's normal digits.
      sets: ADBench set stems (None: all).
      disentangle_points: training points of each disentanglement metric.
      disentangle_seeds: seeds of each disentangling model.
      disentangle_models: the disentangling models trained (`disentangle:<model>_sprites`);
        the row compares β-TC-VAE with the VAE, so both must be among them.
      cluster_width: the clustering AAE's hidden width (its encoder's, decoder's and
        discriminators' two layers); the presets' own, the paper's 3000, takes hours a run
        on a CPU.
    """

    iwae_k: int = 5000
    valid_k: int = 100
    tune_images: int = 500
    probe_c: tuple[float, ...] = (1.0, 0.1, 0.01)
    classes: tuple[int, ...] = tuple(range(10))
    sets: tuple[str, ...] | None = None
    disentangle_points: int = 3000
    disentangle_seeds: int = 3
    disentangle_models: tuple[str, ...] = DISENTANGLE_MODELS
    cluster_width: int = CLUSTER_PAPER_WIDTH

    def __post_init__(self):
        """Refuses a bad setting (ConfigError naming its flag) before any row trains."""
        for name in (
            "iwae_k",
            "valid_k",
            "tune_images",
            "disentangle_points",
            "disentangle_seeds",
            "cluster_width",
        ):
            config_lib.check_number(getattr(self, name), f"--{name}", integer=True, low=1)
        for c in self.probe_c:
            config_lib.check_number(c, "probe_c", low=0, low_open=True)
        models = self.disentangle_models
        if any(m not in DISENTANGLE_MODELS for m in models) or not {"beta_tcvae", "vae"} <= set(
            models
        ):
            raise ConfigError(
                f"--disentangle_models={','.join(models)}: give models of "
                f"{', '.join(DISENTANGLE_MODELS)}, beta_tcvae and vae among them"
            )


@dataclasses.dataclass(frozen=True)
class Row:
    """One published result: where it is from, what is compared, and how it is computed."""

    title: str
    reference: str
    metric: str
    published: str
    target: str
    higher_is_better: bool
    target_value: float | None  # None: the row computes it (a baseline's figure), or none
    compute: Callable[[str, Adjust, Options], dict]


def machine() -> str:
    """This machine in words: cores, CPU model, accelerators and the jax version."""
    import jax

    backend = jax.default_backend()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", str(device))
    gpu = "" if backend == "cpu" else f", {jax.device_count()}x {kind}"
    return f"{cpus}-core {cpu}{gpu}, jax {jax.__version__} on {backend}"


def adjusted_config(spec: str, adjust: Adjust) -> ml_collections.ConfigDict:
    config = config_lib.load_config(spec)
    adjust(config)
    return config


def timed_training(config, run_dir: str) -> tuple[dict, float | None, bool]:
    """Trains (or reuses, or continues) config's run in run_dir.

    Returns:
      (the final metrics, the wall seconds of the training, whether it started here). The
      seconds are measured when the run is trained from its start, saved in
      run_dir/train_seconds.json and read back when the run is reused; None for a run
      continued whose start was not timed.
    """
    from aejax.train import train_and_evaluate

    record_path = os.path.join(run_dir, "train_seconds.json")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    fresh = not (os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir))
    t0 = time.perf_counter()
    _, final = train_and_evaluate(config, run_dir)
    seconds = time.perf_counter() - t0
    if fresh:
        with open(record_path, "w") as f:
            json.dump({"seconds": seconds}, f)
    elif os.path.isfile(record_path):
        with open(record_path) as f:
            seconds = json.load(f)["seconds"]
    else:
        seconds = None
    return final, seconds, fresh


def train_preset(spec: str, run_dir: str, adjust: Adjust) -> tuple[TrainedModel, dict]:
    """Trains (or reuses) the run of preset `spec` in run_dir (`timed_training`). Returns
    the model and its training record: the preset, wall seconds, steps."""
    _, seconds, fresh = timed_training(adjusted_config(spec, adjust), run_dir)
    m = TrainedModel.load(run_dir)
    return m, {"preset": spec, "train_seconds": seconds, "steps": m.step, "trained_here": fresh}


def _sq_err(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean over examples of the squared error summed over an example's entries."""
    return float(np.mean(np.sum(metrics.residuals(x, x_hat) ** 2, axis=1)))


def mean_psnr(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean over images of 10·log10(1 / per-pixel MSE), in dB (peak 1)."""
    mse = np.mean(metrics.residuals(x, x_hat) ** 2, axis=1)
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))))


# --------------------------------------------------------------------------- reconstruction


def reconstruction(
    workdir: str, adjust: Adjust, opts: Options, presets=("results.py:hinton",)
) -> dict:
    """Test squared error per image of the autoencoder with the lowest validation error
    among `presets`, and of PCA with as many components as its code (fitted on the same
    training images)."""
    del opts
    models, runs, valid = [], [], []
    for preset in presets:
        run_dir = os.path.join(workdir, preset.partition(":")[2] if len(presets) > 1 else "run")
        m, run = train_preset(preset, run_dir, adjust)
        if m.dataset.valid_x is None and len(presets) > 1:
            raise AejaxError(f"{preset}: choosing among presets needs a validation split")
        models.append(m)
        runs.append(run)
        if m.dataset.valid_x is not None:
            valid.append(_sq_err(m.dataset.valid_x, m.reconstruct(m.dataset.valid_x)))
    best = int(np.argmin(valid)) if valid else 0
    m = models[best]
    ds = m.dataset
    k = int(np.prod(m.code_shape))
    test = [_sq_err(ds.test_x, x.reconstruct(ds.test_x)) for x in models]
    pca = metrics.PCA.fit(ds.train_x, k)
    pca_test = _sq_err(ds.test_x, pca.reconstruct(ds.test_x))
    valid_text = valid or ["–"] * len(presets)
    rows = [
        [f"autoencoder `{p}`" + (" (chosen)" if i == best else ""), v, t]
        for i, (p, v, t) in enumerate(zip(presets, valid_text, test, strict=True))
    ]
    if ds.valid_x is not None:
        rows.append([f"PCA-{k}", _sq_err(ds.valid_x, pca.reconstruct(ds.valid_x)), pca_test])
    else:
        rows.append([f"PCA-{k}", "–", pca_test])
    return {
        "ours": test[best],
        "baselines": {f"PCA-{k}": pca_test},
        "runs": runs,
        "chosen": presets[best],
        "table": {
            "header": ["method", "validation squared error per image", "test"],
            "rows": rows,
        },
        "notes": [
            f"The autoencoder with the lowest validation error is chosen; {len(ds.train_x)} "
            "training images"
            + (f", {len(ds.valid_x)} held out for validation." if ds.valid_x is not None else ".")
        ],
    }


# --------------------------------------------------------------------------- likelihood


VAE_PRESETS = (
    "results.py:vae_binarized",
    "results.py:vae_binarized_iwae",
    "results.py:vae_binarized_iwae_long",
    "results.py:vae_binarized_iwae_wd",
)


def vae_likelihood(workdir: str, adjust: Adjust, opts: Options, presets=VAE_PRESETS) -> dict:
    """Binarized MNIST test negative log-likelihood by the IWAE bound (k = opts.iwae_k) and
    the negative ELBO, in nats, of the preset and checkpoint with the best validation IWAE
    bound (k = opts.valid_k): ELBO training and IWAE training are compared on the number
    the row reports, and static binarization overfits, so every checkpoint is a candidate."""
    from aejax.likelihood import evaluate_bounds, get_likelihood

    def bounds(m, x, key, k):
        cfg = m.exp.config
        b = evaluate_bounds(
            m.model, m.variables, x, key, get_likelihood(cfg.loss, cfg.loss_options), k=k
        )
        return {
            "nll_iwae": -float(b["iwae"].mean()),
            "neg_elbo": -float(b["elbo"].mean()),
            "kl": float(b["kl"].mean()),
        }

    runs, trained, valid = [], {}, {}
    for preset in presets:
        name = preset.partition(":")[2]
        run_dir = os.path.join(workdir, name)
        trained[name], run = train_preset(preset, run_dir, adjust)
        runs.append(run)
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        for step in sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit()):
            m = trained[name].at_step(step)
            valid[name, step] = bounds(m, m.dataset.valid_x, jax.random.key(2), opts.valid_k)
    # Each preset's best checkpoint; only the best of these is scored on test.
    best_by_run = {
        name: min((s for n, s in valid if n == name), key=lambda s: valid[name, s]["nll_iwae"])
        for name in trained
    }
    best = min(best_by_run.items(), key=lambda c: valid[c]["nll_iwae"])
    m = trained[best[0]].at_step(best[1])
    t = bounds(m, m.dataset.test_x, jax.random.key(1), opts.iwae_k)
    k, vk = opts.iwae_k, opts.valid_k
    rows = [
        [f"`{n}` step {s}" + (" (chosen)" if (n, s) == best else ""), valid[n, s]["nll_iwae"]]
        + ([t["nll_iwae"], t["neg_elbo"], t["kl"]] if (n, s) == best else ["–"] * 3)
        for n, s in best_by_run.items()
    ]
    return {
        "ours": t["nll_iwae"],
        "baselines": {"negative ELBO": t["neg_elbo"]},
        "runs": runs,
        "iwae_k": k,
        "valid_k": vk,
        "chosen": f"results.py:{best[0]}",
        "chosen_step": best[1],
        "splits": {"test": t, "valid": valid[best]},
        "valid_by_run": {f"{n}/{s}": v for (n, s), v in valid.items()},
        "table": {
            "header": [
                "run and its best checkpoint",
                f"validation −log p(x), IWAE k={vk}",
                f"test −log p(x), IWAE k={k}",
                "test negative ELBO",
                "test KL",
            ],
            "rows": rows,
        },
        "notes": [
            f"Each preset's saved checkpoints are scored on the "
            f"{len(trained[best[0]].dataset.valid_x)} "
            f"validation images by the IWAE bound with k = {vk}; the best of all is the only "
            "one scored on the test split. "
            "Validation bounds: "
            + "; ".join(f"{n} step {s}: {v['nll_iwae']:.2f}" for (n, s), v in valid.items())
            + f". Test: k = {k} samples per image; example i's samples are drawn from "
            "fold_in(key, i). The negative ELBO uses one z per image and the closed-form KL."
        ],
    }


# --------------------------------------------------------------------------- linear probe


def probe(workdir: str, adjust: Adjust, opts: Options, preset: str = "results.py:probe") -> dict:
    """Linear-probe test accuracy on frozen codes, PCA codes of the same size (at most the
    input size) and raw pixels; each probe's L2 strength chosen on the validation split."""
    m, run = train_preset(preset, os.path.join(workdir, "run"), adjust)
    ds = m.dataset
    if ds.valid_x is None:
        raise AejaxError(f"{preset}: the probe row needs config.data.valid_fraction > 0")
    k = int(np.prod(m.code_shape))
    d = int(np.prod(ds.example_shape))
    k_pca = min(k, d, len(ds.train_x))
    pca = metrics.PCA.fit(ds.train_x, k_pca)
    features = {
        f"autoencoder codes ({k})": m.encode,
        f"PCA codes ({k_pca})": pca.encode,
        f"raw pixels ({d})": lambda x: x,
    }
    acc, chosen = {}, {}
    for name, f in features.items():
        train, valid, test = f(ds.train_x), f(ds.valid_x), f(ds.test_x)
        scores = {
            c: metrics.linear_probe(train, ds.train_y, valid, ds.valid_y, c=c)["test_accuracy"]
            for c in opts.probe_c
        }
        c = max(opts.probe_c, key=scores.get)
        chosen[name] = {"valid": {str(c): a for c, a in scores.items()}, "c": c}
        acc[name] = metrics.linear_probe(train, ds.train_y, test, ds.test_y, c=c)
    names = list(acc)
    return {
        "ours": acc[names[0]]["test_accuracy"],
        "baselines": {n: acc[n]["test_accuracy"] for n in names[1:]},
        "runs": [run],
        "chosen": chosen,
        "table": {
            "header": ["features", "C (on validation)", "test accuracy", "train accuracy"],
            "rows": [
                [n, chosen[n]["c"], a["test_accuracy"], a["train_accuracy"]] for n, a in acc.items()
            ],
        },
        "notes": [
            "Multinomial logistic regression (L2 weight ½‖W‖²/C) on standardized features, "
            f"fitted on the {len(ds.train_x)} training images (at most 200 L-BFGS "
            f"iterations); C chosen by accuracy on the {len(ds.valid_x)} held-out training "
            "images: "
            + "; ".join(
                f"{n}: " + ", ".join(f"C={c} {a:.4f}" for c, a in ch["valid"].items())
                for n, ch in chosen.items()
            )
            + "."
        ],
    }


# --------------------------------------------------------------------------- Fashion-MNIST


def fashion(workdir: str, adjust: Adjust, opts: Options) -> dict:
    """The reconstruction and probe rows on Fashion-MNIST."""
    rec = reconstruction(
        os.path.join(workdir, "reconstruction"), adjust, opts, ("results.py:hinton_fashion",)
    )
    prb = probe(os.path.join(workdir, "probe"), adjust, opts, "results.py:probe_fashion")
    return {
        "ours": prb["ours"],
        "baselines": {**rec["baselines"], **prb["baselines"]},
        "reconstruction": rec,
        "probe": prb,
        "runs": rec["runs"] + prb["runs"],
        "table": {
            "header": ["measure", "autoencoder", "PCA", "raw pixels"],
            "rows": [
                ["test squared error per image", rec["ours"], *rec["baselines"].values(), ""],
                ["linear probe test accuracy", prb["ours"], *prb["baselines"].values()],
            ],
        },
        "notes": prb["notes"],
    }
