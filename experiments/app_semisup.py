"""The results row `semi_supervised`: MNIST test error with 100, 600, 1000 and 3000 labels
(Kingma, Rezende, Mohamed & Welling, 2014, "Semi-Supervised Learning with Deep Generative
Models", Table 1), M1, M2 and M1+M2 beside logistic regression on pixels and on PCA codes
fitted to the same labels.

For each label count n the labelled examples (n/10 a class) and a labelled validation
split of n examples are drawn from the training split by `aejax.data.semisup.label_split`
(seed 0), the same draw the "partly_labelled" source makes, so every method sees the same
labels. Every choice (the classifiers' C, PCA's components) is made on that validation
split; the test split is only scored.

- M1: the VAE of `semi_supervised:m1_mnist` trained once on every training image (no
  labels); logistic regression on the codes (posterior means) of the n labelled images.
- M2: `semi_supervised:m2_mnist` with n labels; the argmax of q(y|x).
- M1+M2: `semi_supervised:m1m2_mnist`, M2 on M1's codes, the argmax of its q(y|x).
- Baselines: logistic regression on the n labelled images' pixels, and on their PCA codes
  (PCA fitted on every training image; components chosen on validation).
"""

import os

import jax
import numpy as np

from aejax import metrics
from aejax.configs import semi_supervised
from aejax.data.semisup import label_split
from results_compute import Adjust, Options, adjusted_config, train_preset

LABEL_COUNTS = (100, 600, 1000, 3000)
# Table 1 of Kingma et al. (2014), test error in %.
PAPER = {
    "M1+TSVM": (11.82, 5.72, 4.24, 3.49),
    "M2": (11.97, 4.94, 3.60, 3.92),
    "M1+M2": (3.33, 2.59, 2.40, 2.18),
}
PCA_COMPONENTS = (10, 20, 50, 100)
SEED = 0


def _probe(features, lab, valid, test, opts: Options) -> tuple[float, float, dict]:
    """Logistic regression on the labelled features with C chosen on validation.

    Args:
      features: x -> features; lab, valid, test: (x, y) pairs of the labelled,
        validation and test examples.
    Returns:
      (validation error, test error, {C: validation error}) in %, at the chosen C.
    """
    f_lab, f_valid, f_test = features(lab[0]), features(valid[0]), features(test[0])
    scores = {
        c: 100 * (1 - metrics.linear_probe(f_lab, lab[1], f_valid, valid[1], c=c)["test_accuracy"])
        for c in opts.probe_c
    }
    c = min(opts.probe_c, key=scores.get)
    test_err = 100 * (
        1 - metrics.linear_probe(f_lab, lab[1], f_test, test[1], c=c)["test_accuracy"]
    )
    return scores[c], test_err, {"c": c, "valid": scores}


def _m2_errors(m) -> tuple[float, float]:
    """Validation and test error (%) of a trained M2's q(y|x) argmax."""
    classify = jax.jit(lambda v, x: m.model.apply(v, x, method="classify"))
    err = lambda x, y: 100 * float(np.mean(np.argmax(classify(m.variables, x), 1) != y))
    ds = m.dataset
    return err(ds.valid_x, ds.valid_y), err(ds.test_x, ds.test_y)


def _m2_run(preset: str, n: int, pool: int, run_dir: str, adjust: Adjust, name: str = ""):
    """Trains (or reuses) the M2 preset with n labels and n validation examples."""

    def with_labels(config):
        adjust(config)
        config.data.num_valid = n
        if name:
            config.data.name = name
        semi_supervised.set_labels(config, n, pool)

    return train_preset(f"semi_supervised.py:{preset}", run_dir, with_labels)


def compute(workdir: str, adjust: Adjust, opts: Options) -> dict:
    m1, m1_run = train_preset("semi_supervised.py:m1_mnist", os.path.join(workdir, "m1"), adjust)
    ds = m1.dataset
    n_train = len(ds.train_x)
    # A label count needs its labels and as many validation examples out of the pool.
    counts = [n for n in LABEL_COUNTS if 4 * n <= n_train]
    codes = {"train": m1.encode(ds.train_x), "test": m1.encode(ds.test_x)}
    codes_path = os.path.abspath(os.path.join(workdir, "m1_codes.npz"))
    np.savez(
        codes_path,
        train_x=codes["train"],
        train_y=ds.train_y,
        test_x=codes["test"],
        test_y=ds.test_y,
    )
    pixels = lambda x: np.asarray(x).reshape(len(x), -1)
    d = pixels(ds.train_x[:1]).shape[1]
    components = [k for k in PCA_COMPONENTS if k <= min(d, n_train)]
    full = metrics.PCA.fit(pixels(ds.train_x), max(components))
    # PCA's first k components are the k-component fit's.
    pcas = {
        k: metrics.PCA(full.mean, full.components[:k], full.explained_variance[:k])
        for k in components
    }
    runs, table, chosen = [m1_run], {}, {}
    for n in counts:
        train_idx, valid_idx, labelled = label_split(ds.train_y, n, n, SEED)
        lab_idx = train_idx[labelled]
        lab = (ds.train_x[lab_idx], ds.train_y[lab_idx])
        valid = (ds.train_x[valid_idx], ds.train_y[valid_idx])
        test = (ds.test_x, ds.test_y)
        res = {}
        res["pixels"] = _probe(pixels, lab, valid, test, opts)
        by_k = {k: _probe(pcas[k].encode, lab, valid, test, opts) for k in components}
        best_k = min(by_k, key=lambda k: by_k[k][0])
        res["pca"] = (*by_k[best_k][:2], {**by_k[best_k][2], "components": best_k})
        res["m1"] = _probe(m1.encode, lab, valid, test, opts)
        pool = n_train - n
        m2, run = _m2_run("m2_mnist", n, pool, os.path.join(workdir, f"m2_{n}"), adjust)
        runs.append({**run, "preset": f"{run['preset']} ({n} labels)"})
        res["m2"] = (*_m2_errors(m2), {})
        m12, run = _m2_run(
            "m1m2_mnist", n, pool, os.path.join(workdir, f"m1m2_{n}"), adjust, codes_path
        )
        runs.append({**run, "preset": f"{run['preset']} ({n} labels)"})
        res["m1m2"] = (*_m2_errors(m12), {})
        table[n] = res
        chosen[n] = {k: v[2] for k, v in res.items() if v[2]}
    names = {
        "m1m2": "M1+M2 (M2 on the VAE's codes)",
        "m2": "M2",
        "m1": "M1 (logistic regression on the VAE's codes)",
        "pca": "PCA + logistic regression",
        "pixels": "logistic regression on pixels",
    }
    paper_of = {"m1m2": "M1+M2", "m2": "M2", "m1": "M1+TSVM"}
    header = ["method"] + [f"{n} labels: test (validation)" for n in counts]
    header += [f"paper, {n}" for n in counts]
    rows = []
    for key, label in names.items():
        row = [label] + [f"{table[n][key][1]:.2f} ({table[n][key][0]:.1f})" for n in counts]
        paper = PAPER.get(paper_of.get(key, ""))
        row += [paper[LABEL_COUNTS.index(n)] if paper else "–" for n in counts]
        rows.append(row)
    first = counts[0]
    m1_config = adjusted_config("semi_supervised.py:m1_mnist", adjust)
    return {
        "ours": table[first]["m1m2"][1],
        "baselines": {names[k]: table[first][k][1] for k in names if k != "m1m2"},
        "runs": runs,
        "chosen": {str(n): c for n, c in chosen.items()},
        "errors": {str(n): {k: v[1] for k, v in r.items()} for n, r in table.items()},
        "table": {"header": header, "rows": rows},
        "notes": [
            "Test error in % (validation error in brackets) with n class-balanced labels "
            f"drawn from the {n_train} MNIST training images (seed {SEED}); each label "
            "count holds out its own labelled validation split of n images (labels too: "
            "kept as small as the label budget), on which the logistic regressions' C "
            f"(from {', '.join(map(str, opts.probe_c))}) and PCA's components (from "
            f"{', '.join(map(str, components))}) are chosen. "
            "M1 classifies with logistic regression, not the paper's transductive SVM. "
            f"M1: a VAE {m1_config.model.encoder_widths} trained {m1.step} steps on every "
            "training image without labels. M2 and M1+M2: one hidden layer of 500 softplus "
            "units in each network, z of 50, half of each batch labelled (the labelled "
            "images repeated), α = 0.1·N_unlabelled/N_labelled on −log q(y|x). "
            f"Budget: M2 runs {runs[1]['steps']} steps and M1+M2 {runs[2]['steps']} steps "
            f"of batch {m1_config.batch_size} on this loaded 2-core CPU; the paper trains for "
            "far longer (thousands of epochs on a GPU), so these errors are those of a short "
            "run, not of the method at convergence."
        ],
    }
