"""What a trained autoencoder is for, measured and drawn: the applications report of a run.

`write_report(workdir)` loads a run (`aejax.evaluate.TrainedModel`), computes each section
below on its splits, and writes `report.md`, `report.json` and one PNG per figure into
`{workdir}/report/`. Every section is also a function of a `TrainedModel` (plus options)
that returns a `Section`, for notebooks.

Sections (those that do not apply to a run say why and are skipped):

- reconstruction: test MSE per pixel, squared error per image, BCE and PSNR, beside PCA with
  as many components as the code has, fitted on the same training data.
- latent_map: test codes in 2-D coloured by label (the codes themselves when 2-D, else PCA
  and t-SNE of them).
- probe: linear probes (multinomial logistic regression) on frozen codes, on PCA codes of the
  same size and on raw inputs, fitted on train and scored on test.
- anomaly: for runs trained on some classes (`config.data.train_classes`): AUROC and average
  precision of the model's scores and of PCA / IsolationForest; a threshold set on the
  validation split for yes/no decisions.
- denoising: PSNR of corrupted test images and of their reconstructions, per corruption and
  level, with a figure of clean, corrupted and denoised rows.
- generation: samples from the prior (VAE, AAE); for VAEs the ELBO and the importance-weighted
  bound in nats.
- interpolation: decoded images along straight lines between the codes of test pairs, and
  along great circles for Gaussian priors.
- inpainting: masked entries filled by iterating reconstruct-and-replace, error on the masked
  entries beside mean imputation.
- compression: bits per example of the code (float32 and 8-bit), against the raw input and
  gzip, with the reconstruction error at each.
"""

import dataclasses
import functools
import gzip
import json
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from aejax import corruption, metrics, plots
from aejax.errors import AejaxError, ConfigError
from aejax.evaluate import TrainedModel, map_batches, reconstruction_metrics
from aejax.models import interface


@dataclasses.dataclass
class Section:
    """One part of the report.

    Attributes:
      title: the Markdown heading.
      results: JSON-ready numbers.
      lines: Markdown lines (tables, notes) under the heading.
      figures: (caption, file name in the report folder) of each PNG.
    """

    title: str
    results: dict = dataclasses.field(default_factory=dict)
    lines: list[str] = dataclasses.field(default_factory=list)
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Options:
    """Settings of the report's computations (seeded, so a report is reproducible).

    Attributes:
      out_dir: where figures are written.
      seed: seeds every random draw (noise, masks, pairs, t-SNE, samples).
      iwae_k: importance samples of the IWAE bound (VAEs).
      tsne_points: test codes embedded by t-SNE (a random subset; t-SNE is quadratic).
      probe_train: training examples the linear probes are fitted on (0: all).
      inpaint_steps: reconstruct-and-replace iterations.
      fpr: the false-positive rate on validation normals that sets the anomaly threshold.
    """

    out_dir: str
    seed: int = 0
    iwae_k: int = 1000
    tsne_points: int = 2000
    probe_train: int = 0
    inpaint_steps: int = 50
    fpr: float = 0.05


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table; floats get 4 significant digits."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(fmt(v) for v in row) + " |" for row in rows),
    ]


def _records(header: list[str], rows: list[list]) -> list[dict]:
    """Table rows as JSON records."""
    return [dict(zip(header, row, strict=True)) for row in rows]


def _is_image(m: TrainedModel) -> bool:
    return plots.is_image_shape(m.dataset.example_shape)


def _code_size(m: TrainedModel) -> int:
    return int(np.prod(m.code_shape))


_pair_metrics = jax.jit(lambda b: reconstruction_metrics(b[:, 0], b[:, 1]))


def _mean_metrics(x: np.ndarray, x_hat: np.ndarray, image: bool) -> dict[str, float]:
    """Test means of the reconstruction metrics (BCE and PSNR only for [0, 1] images)."""
    per_example = map_batches(_pair_metrics, np.stack([x, x_hat], 1), 1000)
    keep = ("mse_per_pixel", "sq_err_per_image") + (("bce_per_pixel", "psnr") if image else ())
    return {k: float(np.mean(per_example[k])) for k in keep}


def reconstruction(m: TrainedModel, opts: Options) -> Section:
    """Test reconstruction metrics of the model and of PCA with as many components."""
    ds, image = m.dataset, _is_image(m)
    k = _code_size(m)
    k_pca = min(k, ds.num_train, int(np.prod(ds.example_shape)))
    x_hat = m.reconstruct(ds.test_x)
    pca = metrics.PCA.fit(ds.train_x, k_pca)
    x_pca = pca.reconstruct(ds.test_x).astype(np.float32)
    rows = {"autoencoder": _mean_metrics(ds.test_x, x_hat, image)}
    rows[f"PCA ({k_pca} components)"] = _mean_metrics(ds.test_x, x_pca, image)
    s = Section("Reconstruction and dimensionality reduction", {"code_size": k, "methods": rows})
    names = list(next(iter(rows.values())))
    s.lines += [f"Test split ({len(ds.test_x)} examples); code size {k}.", ""]
    s.lines += _table(["method", *names], [[n, *r.values()] for n, r in rows.items()])
    if k_pca < k:
        s.lines += ["", f"PCA is capped at {k_pca} components (the data's dimension)."]
    if image:
        plots.save_image_rows(
            os.path.join(opts.out_dir, "reconstruction.png"),
            {"test input": ds.test_x[:10], "autoencoder": x_hat[:10], "PCA": x_pca[:10]},
            f"Test images, the autoencoder's and PCA-{k_pca}'s reconstructions",
            xlabel="test example",
        )
        s.figures.append(("Test images and reconstructions", "reconstruction.png"))
    return s


def latent_map(m: TrainedModel, opts: Options) -> Section:
    """Test codes in 2-D: as they are when 2-D, else their PCA and a t-SNE of a subset."""
    ds = m.dataset
    codes = m.encode(ds.test_x).reshape(len(ds.test_x), -1)
    s = Section("Latent map", {"code_size": codes.shape[1]})
    labels = ds.test_y
    if codes.shape[1] == 1:
        s.lines.append("Skipped: the code is 1-D.")
        return s
    if codes.shape[1] == 2:
        maps = {"latent_2d.png": ("the 2-D codes", codes, labels, "z[0]", "z[1]")}
    else:
        pca = metrics.PCA.fit(codes, 2)
        rng = np.random.default_rng(opts.seed)
        subset = rng.permutation(len(codes))[: opts.tsne_points]
        from sklearn.manifold import TSNE

        tsne = TSNE(2, init="pca", random_state=opts.seed).fit_transform(codes[subset])
        maps = {
            "latent_pca.png": ("PCA of the codes", pca.encode(codes), labels, "PC 1", "PC 2"),
            "latent_tsne.png": (
                f"t-SNE of {len(subset)} random test codes",
                tsne,
                None if labels is None else labels[subset],
                "t-SNE 1",
                "t-SNE 2",
            ),
        }
        s.results["pca_explained_variance"] = pca.explained_variance.tolist()
    for name, (what, xy, lab, xl, yl) in maps.items():
        plots.save_scatter(os.path.join(opts.out_dir, name), xy, lab, f"{ds.name}: {what}", xl, yl)
        s.figures.append((what[0].upper() + what[1:], name))
    s.lines.append("Test codes" + (", coloured by label." if labels is not None else "."))
    return s


def probe(m: TrainedModel, opts: Options) -> Section:
    """Linear-probe accuracy of frozen codes, PCA codes of the same size and raw inputs."""
    ds = m.dataset
    s = Section("Feature extraction: linear probes")
    if ds.train_y is None or ds.test_y is None:
        s.lines.append("Skipped: the dataset has no labels.")
        return s
    n = opts.probe_train or ds.num_train
    train_x, train_y = ds.train_x[:n], ds.train_y[:n]
    k = _code_size(m)
    k_pca = min(k, len(train_x), int(np.prod(ds.example_shape)))
    pca = metrics.PCA.fit(train_x, k_pca)
    features = {
        f"autoencoder codes ({k})": (m.encode(train_x), m.encode(ds.test_x)),
        f"PCA codes ({k_pca})": (pca.encode(train_x), pca.encode(ds.test_x)),
        f"raw inputs ({int(np.prod(ds.example_shape))})": (train_x, ds.test_x),
    }
    rows = {}
    for name, (tr, te) in features.items():
        t0 = time.perf_counter()
        rows[name] = metrics.linear_probe(tr, train_y, te, ds.test_y)
        rows[name]["fit_s"] = time.perf_counter() - t0
    s.results = {"train_examples": len(train_x), "features": rows}
    s.lines += [
        f"Multinomial logistic regression (L2, C=1) on standardized features, fitted on "
        f"{len(train_x)} training examples (at most 200 L-BFGS iterations), scored on the "
        f"{len(ds.test_x)} test examples.",
        "",
        *_table(
            ["features", "test accuracy", "train accuracy", "L-BFGS iterations", "fit (s)"],
            [
                [n, r["test_accuracy"], r["train_accuracy"], r["iterations"], r["fit_s"]]
                for n, r in rows.items()
            ],
        ),
    ]
    return s


def anomaly(m: TrainedModel, opts: Options) -> Section:
    """One-class anomaly detection: normal = the classes the run trained on."""
    from aejax import anomaly as anomaly_lib

    ds, classes = m.dataset, tuple(m.exp.config.data.train_classes)
    s = Section("Anomaly detection")
    if not classes or ds.test_y is None:
        s.lines.append(
            "Skipped: the run trained on every class, so the test split holds no anomalies. "
            "Train with `--config.data.train_classes='(3,)'` (one-class), or run "
            "`experiments/anomaly.py` for the MNIST one-class and ADBench protocols."
        )
        return s
    is_anomaly = ~np.isin(ds.test_y, classes)
    test = anomaly_lib.model_scores(m, ds.test_x)
    valid = None if ds.valid_x is None else anomaly_lib.model_scores(m, ds.valid_x)
    scored = {name: (test[name], None if valid is None else valid[name]) for name in test}
    scored.update(
        anomaly_lib.baseline_scores(ds.train_x, ds.test_x, _code_size(m), opts.seed, ds.valid_x)
    )
    rows = {
        name: anomaly_lib.summarize(t, is_anomaly, v, opts.fpr) for name, (t, v) in scored.items()
    }
    s.results = {"normal_classes": list(classes), "fpr": opts.fpr, "methods": rows}
    s.lines += [
        f"Normal: labels {list(classes)}; {int(is_anomaly.sum())} of {len(is_anomaly)} test "
        f"examples are anomalies. Threshold: the score flagging {opts.fpr:.0%} of the "
        "validation split's (normal) examples."
        + ("" if ds.valid_x is not None else " No validation split: no threshold."),
        "",
    ]
    cols = ["auroc", "average_precision", "precision", "recall", "f1", "false_positive_rate"]
    s.lines += _table(
        ["score", *cols], [[n, *(r.get(c, "–") for c in cols)] for n, r in rows.items()]
    )
    return s


DENOISING_LEVELS = {
    "gaussian": ("sigma", (0.1, 0.3, 0.5)),
    "masking": ("fraction", (0.25, 0.5, 0.75)),
    "salt_and_pepper": ("fraction", (0.1, 0.2, 0.4)),
}


def denoising(m: TrainedModel, opts: Options) -> Section:
    """PSNR of corrupted test images and of the model's reconstructions of them."""
    ds = m.dataset
    s = Section("Denoising")
    if not _is_image(m):
        s.lines.append("Skipped: PSNR is for images with values in [0, 1].")
        return s
    x = ds.test_x
    rows, series, figure_rows = [], {}, {}
    for i, (name, (param, levels)) in enumerate(DENOISING_LEVELS.items()):
        fn = corruption.get(name)
        psnr_in, psnr_out = [], []
        for j, level in enumerate(levels):
            key = jax.random.fold_in(jax.random.key(opts.seed), 100 * i + j)
            noisy = np.asarray(jax.jit(functools.partial(fn, **{param: level}))(key, x))
            clean_hat = m.reconstruct(noisy)
            a = _mean_metrics(x, noisy, True)["psnr"]
            b = _mean_metrics(x, clean_hat, True)["psnr"]
            psnr_in.append(a)
            psnr_out.append(b)
            rows.append([name, f"{param}={level:g}", a, b, b - a])
            if j == len(levels) - 1:
                figure_rows[f"{name} {level:g}"] = noisy[:10]
                figure_rows[f"denoised {name}"] = clean_hat[:10]
        series[f"{name}: corrupted"] = (levels, psnr_in)
        series[f"{name}: denoised"] = (levels, psnr_out)
    s.results = {"psnr_db": _records(["corruption", "level", "input", "output", "gain"], rows)}
    s.lines += [
        f"Mean PSNR (dB, peak 1) over the {len(x)} test images; corrupted inputs are not "
        "clipped (the model saw them so in training, if it was a denoising run).",
        "",
        *_table(["corruption", "level", "corrupted", "denoised", "gain"], rows),
    ]
    plots.save_lines(
        os.path.join(opts.out_dir, "denoising_psnr.png"),
        series,
        f"{ds.name}: PSNR before and after the autoencoder",
        "noise level (sigma, or fraction of pixels hit)",
        "mean PSNR (dB)",
    )
    plots.save_image_rows(
        os.path.join(opts.out_dir, "denoising.png"),
        {"clean": x[:10], **figure_rows},
        "Clean test images, corrupted (strongest level) and denoised",
        xlabel="test example",
    )
    s.figures += [("PSNR per corruption level", "denoising_psnr.png")]
    s.figures += [("Clean, corrupted and denoised", "denoising.png")]
    return s


def _gaussian_prior(m: TrainedModel) -> bool:
    """A standard normal prior (a VAE's, an AAE trained to a Gaussian prior)."""
    return interface.prior_of(m.model) == "standard_normal"


def generation(m: TrainedModel, opts: Options) -> Section:
    """Samples from the prior; for VAEs the ELBO and IWAE bounds on the test split."""
    from aejax.sampling import sample_prior

    s = Section("Generation and likelihood")
    if interface.prior_of(m.model) is None:
        s.lines.append("Skipped: the model has no prior to sample from (use a VAE or an AAE).")
        return s
    if _is_image(m):
        samples = np.asarray(sample_prior(m.model, m.variables, jax.random.key(opts.seed), 80))
        plots.save_image_rows(
            os.path.join(opts.out_dir, "samples.png"),
            {f"row {r + 1}": samples[10 * r : 10 * r + 10] for r in range(8)},
            f"{m.dataset.name}: 80 samples from the prior (decoder means)",
            xlabel="sample",
        )
        s.figures.append(("Samples from the prior", "samples.png"))
    if interface.has_gaussian_posterior(m.model):
        from aejax import likelihood

        try:
            density = likelihood.get_likelihood(m.exp.weights, m.exp.options)
        except ConfigError as e:  # e.g. mse + kl_normal: the samples stand, the bounds don't
            s.lines.append(f"Likelihood bounds skipped: {e}")
            return s
        t0 = time.perf_counter()
        bounds = likelihood.evaluate_bounds(
            m.model,
            m.variables,
            m.dataset.test_x,
            jax.random.key(opts.seed),
            density,
            k=opts.iwae_k,
        )
        means = {name: float(np.mean(v)) for name, v in bounds.items()}
        s.results = {**means, "iwae_k": opts.iwae_k, "seconds": time.perf_counter() - t0}
        s.lines += [
            f"Test-split means in nats over {len(m.dataset.test_x)} examples "
            f"({s.results['seconds']:.1f} s); the negative IWAE bound estimates the negative "
            "log-likelihood from above. With `bce` on grey-level data the Bernoulli "
            "likelihood is not a normalized density (see aejax/likelihood.py).",
            "",
            *_table(
                ["quantity", "nats"],
                [
                    ["negative ELBO (one z, analytic KL)", -means["elbo"]],
                    ["KL(q(z|x) ‖ p(z))", means["kl"]],
                    [f"negative IWAE bound, k={opts.iwae_k}", -means["iwae"]],
                ],
            ),
        ]
    return s


def slerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between codes along the great circle through them (for
    Gaussian priors, where straight lines pass through improbably small norms).

    Args:
      z0, z1: [B, D] codes; t: [T] fractions in [0, 1].
    Returns:
      [B, T, D]; falls back to linear interpolation for (nearly) parallel codes.
    """
    n0 = z0 / jnp.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = z1 / jnp.linalg.norm(z1, axis=-1, keepdims=True)
    omega = jnp.arccos(jnp.clip(jnp.sum(n0 * n1, -1), -1.0, 1.0))[:, None, None]
    t = t[None, :, None]
    so = jnp.sin(omega)
    safe = jnp.where(so > 1e-6, so, 1.0)
    spherical = (jnp.sin((1 - t) * omega) * z0[:, None] + jnp.sin(t * omega) * z1[:, None]) / safe
    linear = (1 - t) * z0[:, None] + t * z1[:, None]
    return jnp.where(so > 1e-6, spherical, linear)


def lerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Straight-line interpolation: [B, D] and [B, D] at [T] fractions -> [B, T, D]."""
    return (1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]


def interpolation(m: TrainedModel, opts: Options, pairs: int = 8, steps: int = 10) -> Section:
    """Decoded images along lines (and great circles) between codes of test pairs."""
    ds = m.dataset
    s = Section("Interpolation")
    if not _is_image(m):
        s.lines.append("Skipped: the data are not images.")
        return s
    rng = np.random.default_rng(opts.seed)
    idx = rng.choice(len(ds.test_x), 2 * pairs, replace=False)
    codes = m.encode(ds.test_x[idx])
    shape = codes.shape[1:]
    z0, z1 = codes[:pairs].reshape(pairs, -1), codes[pairs:].reshape(pairs, -1)
    t = jnp.linspace(0.0, 1.0, steps)
    paths = {"linear": lerp}
    if _gaussian_prior(m):
        paths["great circle"] = slerp
    for name, path in paths.items():
        z = np.asarray(path(z0, z1, t)).reshape(pairs * steps, *shape)
        images = m.decode(z).reshape(pairs, steps, *ds.example_shape)
        file = f"interpolation_{name.replace(' ', '_')}.png"
        plots.save_image_rows(
            os.path.join(opts.out_dir, file),
            {f"pair {p + 1}": images[p] for p in range(pairs)},
            f"{ds.name}: decoded codes along {name} paths between test pairs",
            xlabel="fraction of the way from the first code to the second (0 to 1)",
        )
        s.figures.append((f"Interpolation along {name} paths", file))
    s.results = {"pairs": idx.reshape(2, pairs).T.tolist(), "paths": list(paths)}
    s.lines.append(f"{pairs} random test pairs, {steps} steps each, ends included.")
    return s


def inpaint(
    reconstruct: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    observed: jax.Array,
    fill: jax.Array,
    steps: int,
) -> jax.Array:
    """Fills missing entries by iterating reconstruct-and-replace.

    x ← observed·x_obs + (1 − observed)·reconstruct(x), starting from `fill` in the missing
    entries; the observed entries never change.

    Args:
      reconstruct: [B, ...] -> [B, ...], the autoencoder.
      x: [B, ...] the inputs (missing entries are ignored).
      observed: [B, ...] booleans, True where the entry is known.
      fill: [...] or [B, ...] starting values of the missing entries (e.g. the train mean).
      steps: iterations.
    Returns:
      [B, ...] the completed inputs.
    """
    start = jnp.where(observed, x, fill)
    body = lambda _, cur: jnp.where(observed, x, reconstruct(cur))
    return jax.lax.fori_loop(0, steps, body, start)


def _masks(m: TrainedModel, seed: int) -> dict[str, np.ndarray]:
    """Observed-entry masks of the test split: for images the lower half missing and a random
    half of the pixels missing; for vectors a random 20% of the features missing."""
    x = m.dataset.test_x
    rng = np.random.default_rng(seed)
    if not _is_image(m):
        return {"random 20% of features": rng.uniform(size=x.shape) >= 0.2}
    h = x.shape[1]
    lower = np.ones(x.shape, bool)
    lower[:, h // 2 :] = False
    return {"lower half": lower, "random 50% of pixels": rng.uniform(size=x.shape) >= 0.5}


def inpainting(m: TrainedModel, opts: Options) -> Section:
    """Masked entries filled by the autoencoder beside mean imputation; error on them only."""
    ds = m.dataset
    mean = ds.train_x.mean(axis=0)
    recon = lambda v, x: m.model.apply(v, m.model.apply(v, x, method="encode"), method="decode")[0]
    rows, figure = [], {"test input": ds.test_x[:10]}
    for name, observed in _masks(m, opts.seed).items():
        fn = jax.jit(
            lambda b: {
                "x": inpaint(
                    lambda x: recon(m.variables, x),
                    b[:, 0],
                    b[:, 1] > 0.5,
                    mean,
                    opts.inpaint_steps,
                )
            }
        )
        stacked = np.stack([ds.test_x, observed.astype(np.float32)], 1)
        filled = map_batches(fn, stacked, m.exp.config.eval_batch_size)["x"]
        baseline = np.where(observed, ds.test_x, mean)
        errors = [float(np.mean((est - ds.test_x)[~observed] ** 2)) for est in (filled, baseline)]
        rows.append([name, *errors, float(1.0 - observed.mean())])
        if _is_image(m):
            shown = np.where(observed[:10], ds.test_x[:10], 0.5)  # missing pixels drawn grey
            figure[f"{name} missing"] = shown
            figure[f"{name} filled"] = filled[:10]
    s = Section("Inpainting and imputation")
    s.results = {
        "steps": opts.inpaint_steps,
        "masks": _records(["mask", "autoencoder_mse", "mean_mse", "missing"], rows),
    }
    s.lines += [
        f"Missing entries start at the training mean; {opts.inpaint_steps} iterations of "
        "reconstruct-and-replace. Mean squared error over the missing entries only.",
        "",
        *_table(["mask", "autoencoder MSE", "mean imputation MSE", "missing fraction"], rows),
    ]
    if _is_image(m):
        plots.save_image_rows(
            os.path.join(opts.out_dir, "inpainting.png"),
            figure,
            "Test images with missing pixels (grey) and the autoencoder's completions",
            xlabel="test example",
        )
        s.figures.append(("Inpainting", "inpainting.png"))
    return s


def quantize(codes: np.ndarray, low: np.ndarray, high: np.ndarray, bits: int = 8) -> np.ndarray:
    """Uniform quantization of each code dimension to 2**bits levels between `low` and
    `high` (the training codes' range), returned dequantized (what a decoder would see).

    Args:
      codes: [N, D]; low, high: [D].
    """
    levels = 2**bits - 1
    span = np.where(high > low, high - low, 1.0)
    q = np.round(np.clip((codes - low) / span, 0.0, 1.0) * levels)
    return (q / levels * span + low).astype(np.float32)


def compression(m: TrainedModel, opts: Options) -> Section:
    """Bits per example of the code against the raw input and gzip, with the error at each."""
    ds = m.dataset
    n, d = len(ds.test_x), int(np.prod(ds.example_shape))
    eight_bit = bool(np.all(np.round(ds.test_x * 255) == ds.test_x * 255))
    raw_bits = 8 * d if eight_bit else 32 * d
    raw = (np.round(ds.test_x * 255).astype(np.uint8) if eight_bit else ds.test_x).tobytes()
    gzip_bits = 8 * len(gzip.compress(raw, 9)) / n
    codes = m.encode(ds.test_x)
    flat = codes.reshape(n, -1)
    train_codes = m.encode(ds.train_x[:10_000]).reshape(min(10_000, ds.num_train), -1)
    q = quantize(flat, train_codes.min(0), train_codes.max(0)).reshape(codes.shape)
    sq = lambda x_hat: float(np.mean(np.sum((x_hat - ds.test_x).reshape(n, -1) ** 2, 1)))
    rows = [
        ["raw input", raw_bits, 1.0, gzip_bits / raw_bits, 0.0],  # each ratio: ref. / row
        ["gzip -9 of the test set", gzip_bits, raw_bits / gzip_bits, 1.0, 0.0],
    ]
    for name, z, bits in (("code, float32", codes, 32), ("code, 8-bit", q, 8)):
        b = bits * flat.shape[1]
        rows.append([name, b, raw_bits / b, gzip_bits / b, sq(m.decode(z))])
    header = ["representation", "bits / example", "ratio vs raw", "ratio vs gzip", "sq. error"]
    s = Section("Compression")
    s.results = {"rows": _records(header, rows)}
    s.lines += [
        f"Raw input: {d} values at {'8' if eight_bit else '32'} bits. The 8-bit code quantizes "
        "each dimension uniformly over its range on training codes (the range, 2 floats per "
        "dimension, is sent once). Squared error per example on the test split.",
        "",
        *_table(header, rows),
    ]
    return s


SECTIONS: dict[str, Callable[[TrainedModel, Options], Section]] = {
    "reconstruction": reconstruction,
    "latent_map": latent_map,
    "probe": probe,
    "anomaly": anomaly,
    "denoising": denoising,
    "generation": generation,
    "interpolation": interpolation,
    "inpainting": inpainting,
    "compression": compression,
}


def write_report(
    workdir: str,
    out_dir: str | None = None,
    sections: tuple[str, ...] | None = None,
    step: int | None = None,
    **options,
) -> dict:
    """Computes the report's sections for the run in `workdir` and writes it.

    Args:
      workdir: a training run's folder.
      out_dir: where report.md, report.json and the PNGs go (default: `{workdir}/report`).
      sections: names from SECTIONS (default: all).
      step: the checkpoint (default: the newest).
      **options: fields of `Options` (seed, iwae_k, ...).
    Returns:
      The JSON content: run information, each section's results and its time in seconds.
    """
    sections = tuple(SECTIONS) if sections is None else tuple(sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise AejaxError(
            f"unknown report section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    trained = TrainedModel.load(workdir, step)
    if trained.dataset.train_x is None:
        raise AejaxError(
            f"{workdir} trained on a streamed train split (config.data.stream): the report's "
            "baselines fit on the training examples in memory; evaluate.py without the "
            "report (--sections=none) still gives the test metrics"
        )
    out_dir = out_dir or os.path.join(workdir, "report")
    os.makedirs(out_dir, exist_ok=True)
    opts = Options(out_dir=out_dir, **options)
    config = trained.exp.config
    run = {
        "workdir": os.path.abspath(workdir),
        "step": trained.step,
        "dataset": trained.dataset.name,
        "model": config.model.name,
        "loss": config.loss,
        "corruption": config.corruption.name,
        "backend": jax.default_backend(),
    }
    md = [
        f"# Applications report: {os.path.basename(os.path.abspath(workdir))}",
        "",
        f"Model `{run['model']}`, loss `{run['loss']}`, corruption `{run['corruption']}`, "
        f"data `{run['dataset']}`, step {run['step']}. Backend: {run['backend']}.",
    ]
    out = {"run": run, "sections": {}, "seconds": {}}
    for name in sections:
        t0 = time.perf_counter()
        section = SECTIONS[name](trained, opts)
        seconds = time.perf_counter() - t0
        out["sections"][name] = section.results
        out["seconds"][name] = seconds
        md += ["", f"## {section.title}", "", *section.lines]
        md += [f"\n![{caption}]({file})" for caption, file in section.figures]
        md += ["", f"_{seconds:.1f} s_"]
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return out
