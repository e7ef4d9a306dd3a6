"""Report sections about the code: reconstruction, the latent map, linear probes, anomaly
scores and denoising. Each is a function of a `TrainedModel` and `Options` returning a
`Section`."""

import functools
import os
import time

import jax
import numpy as np

from aejax import corruption, metrics, plots
from aejax.evaluate import TrainedModel
from aejax.report.base import (
    Options,
    Section,
    _code_size,
    _is_image,
    _mean_metrics,
    _records,
    _table,
)


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
    capped = [n for n, r in rows.items() if not r["converged"]]
    if capped:
        s.lines += [
            "",
            f"**Not converged**: L-BFGS reached its 200-iteration cap on {', '.join(capped)}; "
            "those accuracies are of a point short of the optimum (fewer training examples, "
            "`--probe_train`, converge sooner).",
        ]
    s.results["not_converged"] = capped
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
