"""Anomaly detection benchmark protocols: each trains one run per class or data set and
scores it with the functions of `aejax.anomaly` (the autoencoder's scores beside PCA and
IsolationForest, AUROC and average precision on test, decisions at a threshold set on
validation normals). `experiments/anomaly.py` is the script.

Protocols (`one_class_mnist`, `adbench`); each trains one run per class or data set with
`aejax.train.train_and_evaluate` into `{workdir}/class_{c}` or `{workdir}/{stem}` (an
existing finished run there is reused, a cut-off one continued) and writes nothing else:

- One-class MNIST (Ruff et al., "Deep One-Class Classification", ICML 2018, the Deep SVDD
  protocol): for each digit c, train on the training images labelled c only (about 6k; a
  seeded fraction `config.data.valid_fraction`, 0.1 unless set, is held out as validation
  normals for the threshold), then score the whole 10k test split: the ~1k test images of
  digit c are normal, the ~9k of the other nine digits are anomalies. Pixels in [0, 1],
  no further preprocessing (Ruff et al. also apply global contrast normalization and
  min-max scaling; we do not). Baselines fit on the same training images (raw pixels).
  Besides the squared error, each class's run is scored by Σ_i |x̂_i − x_i|^p with p
  chosen from LP_NORMS on validation data: the held-out normals against 2000 training
  images of the other classes (never test images).
  The protocol works for any labelled image source (`config.data.source` idx, digits,
  tfds); the config's data fields are used as given, apart from `train_classes`.
- ADBench classical (Han et al., "ADBench", NeurIPS 2022 Datasets and Benchmarks; the .npz
  files of `data_dir/adbench_classical`, X and y with y = 1 for anomalies), in the
  semi-supervised (one-class) setting: for each set, a random 70% of the normal rows
  (seeded with `config.data.split_seed`) are the training normals, of which a fraction
  `valid_fraction` (0.1 unless set) is held out as validation normals for the threshold;
  the other 30% of the normal rows and every anomaly are scored. Features are z-scored with
  the training normals' mean and std (`config.data.standardize`, on by default). The
  protocol sets `data.source="npz"`, `data.name`, `data.train_classes=(0,)` and
  `data.train_fraction=0.7`; the model must have a code smaller than each set's number of
  features (3 for http and smtp), which is checked before anything is trained.
  With `codes` (ADBENCH_CODES by default) each set also gets one run per code size k
  (below its number of features; the config's own code is its main run, the others go to
  `{workdir}/{stem}-code{k}`), each scored by the squared error and by the standardized
  squared error Σ_j (r_j / s_j)², s_j the root-mean-square residual of feature j on the
  training normals. The validation normals hold no anomaly, so the code and the score are
  chosen (`CHOSEN_NAME`, row["choice"]) by AUROC of the validation normals against
  `synthetic_anomalies` drawn from the training normals, never on test rows.
"""

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence

import ml_collections
import numpy as np

from aejax import metrics
from aejax.anomaly import (
    LP_NORMS,
    baseline_scores,
    code_size,
    lp_errors,
    model_scores,
    residual_scores,
    summarize,
    synthetic_anomalies,
)
from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel

# The one-class protocol also scores Σ_i |x̂_i − x_i|^p (`aejax.anomaly.lp_errors`) with p
# chosen per class from LP_NORMS on validation data: held-out normals against
# VALID_ANOMALIES training images of the other classes.
LP_NAME = "reconstruction error, L_p (p on validation)"
VALID_ANOMALIES = 2000

ADBENCH_FOLDER = "adbench_classical"
# ADBench: the candidate code sizes, and how the chosen one is named. The candidates' scores
# are `aejax.anomaly.residual_scores`' SQUARED and STANDARDIZED.
ADBENCH_CODES = (1, 2, 4)
CHOSEN_NAME = "reconstruction error, code and score chosen on validation"
ADBENCH_TRAIN_FRACTION = 0.7
DEFAULT_VALID_FRACTION = 0.1

Log = Callable[[str], None] | None


def _with_data(config: ml_collections.ConfigDict, **fields) -> ml_collections.ConfigDict:
    """A copy of `config` with these `config.data` fields set, and a validation fraction."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        for name, value in fields.items():
            config.data[name] = value
        if not config.data.valid_fraction:
            config.data.valid_fraction = DEFAULT_VALID_FRACTION
    return config


def _score_run(
    config: ml_collections.ConfigDict,
    run_dir: str,
    is_anomaly: Callable[[np.ndarray], np.ndarray],
    fpr: float,
    log: Log,
    label: str,
    valid_anomalies: np.ndarray | None = None,
) -> dict:
    """Trains (or reuses) one run, then scores its test split with the model and the
    baselines; returns one result row. With `valid_anomalies` it also scores the L_p error
    with p chosen on them and the validation normals (`LP_NAME`, row["lp_choice"])."""
    t0 = time.perf_counter()
    from aejax.train import train_and_evaluate

    ckpt_dir = os.path.join(run_dir, "checkpoints")
    resumed = os.path.isdir(ckpt_dir) and bool(os.listdir(ckpt_dir))
    train_and_evaluate(config, run_dir)
    t_train = time.perf_counter() - t0
    trained = TrainedModel.load(run_dir)
    ds = trained.dataset
    if ds.test_y is None:
        raise AejaxError(f"dataset {ds.name!r} has no test labels: anomalies cannot be scored")
    labels = is_anomaly(ds.test_y)
    test = model_scores(trained, ds.test_x)
    valid = model_scores(trained, ds.valid_x)
    k = code_size(config.model, ds.example_shape)
    base = baseline_scores(ds.train_x, ds.test_x, k, config.seed, ds.valid_x)
    methods = {name: summarize(test[name], labels, valid[name], fpr) for name in test}
    methods |= {name: summarize(t, labels, v, fpr) for name, (t, v) in base.items()}
    lp_choice = None
    if valid_anomalies is not None:
        err = {
            split: lp_errors(trained, x)
            for split, x in (("test", ds.test_x), ("valid", ds.valid_x), ("anom", valid_anomalies))
        }
        is_anom = np.r_[np.zeros(len(ds.valid_x)), np.ones(len(valid_anomalies))]
        valid_auroc = {
            p: metrics.auroc(np.r_[err["valid"][p], err["anom"][p]], is_anom) for p in LP_NORMS
        }
        p = max(LP_NORMS, key=valid_auroc.get)
        methods[LP_NAME] = summarize(err["test"][p], labels, err["valid"][p], fpr)
        lp_choice = {"p": p, "valid_auroc": {str(q): a for q, a in valid_auroc.items()}}
    seconds = {"train": t_train, "score": time.perf_counter() - t0 - t_train}
    if log:
        aurocs = " ".join(f"{m}={r['auroc']:.4f}" for m, r in methods.items())
        log(
            f"{label}: AUROC {aurocs} (train {seconds['train']:.1f} s, "
            f"score {seconds['score']:.1f} s)"
        )
    return {
        "name": label,
        "workdir": run_dir,
        "step": trained.step,
        "resumed": resumed,  # the workdir held a checkpoint: train time is not a full run's
        "n_train": len(ds.train_x),
        "n_valid": len(ds.valid_x),
        "n_test": len(ds.test_x),
        "n_anomalies": int(labels.sum()),
        "pca_components": k,
        "seconds": seconds,
        "methods": methods,
        **({"lp_choice": lp_choice} if lp_choice else {}),
    }


def _with_code(config: ml_collections.ConfigDict, k: int) -> ml_collections.ConfigDict:
    """A copy of an MLP config whose code (the last encoder width) is k."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.model.encoder_widths = (*tuple(config.model.encoder_widths)[:-1], k)
    return config


def _choose_code(
    cfg: ml_collections.ConfigDict,
    run_dir: str,
    codes: Sequence[int],
    is_anomaly: Callable[[np.ndarray], np.ndarray],
    fpr: float,
) -> tuple[dict, dict]:
    """Trains (or reuses) one run per code of `codes` (each below the set's number of
    features; the config's own code is the run in run_dir, the others `{run_dir}-code{k}`)
    and picks the code and score whose validation normals are best told apart from
    `synthetic_anomalies` of the training rows (AUROC). Returns the chosen method's test
    summary and the record of the choice (with "steps", those of the runs of other codes)."""
    from aejax.train import train_and_evaluate

    own = cfg.model.encoder_widths[-1]
    valid_auroc, scored, steps = {}, {}, 0
    for k in codes:
        run = run_dir if k == own else f"{run_dir}-code{k}"
        if k != own:  # the own code's run was trained by _score_run
            train_and_evaluate(_with_code(cfg, k), run)
        trained = TrainedModel.load(run)
        steps += trained.step if k != own else 0
        ds = trained.dataset
        syn = synthetic_anomalies(ds.train_x, VALID_ANOMALIES, cfg.seed)
        is_syn = np.r_[np.zeros(len(ds.valid_x)), np.ones(len(syn))]
        scores = residual_scores(trained, ds.train_x, valid=ds.valid_x, syn=syn, test=ds.test_x)
        for kind, split in scores.items():
            key = f"code {k}, {kind}"
            valid_auroc[key] = metrics.auroc(np.r_[split["valid"], split["syn"]], is_syn)
            scored[key] = (split["test"], is_anomaly(ds.test_y), split["valid"])
    best = max(valid_auroc, key=valid_auroc.get)  # the first of equals: smaller code, squared
    choice = {"chosen": best, "valid_auroc": valid_auroc, "steps": steps}  # steps: other codes'
    return summarize(*scored[best], fpr), choice


def _means(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Each method's mean of every metric over the rows (methods every row has)."""
    methods = [m for m in rows[0]["methods"] if all(m in r["methods"] for r in rows)]
    return {
        m: {
            key: float(np.mean([r["methods"][m][key] for r in rows]))
            for key in rows[0]["methods"][m]
            if key not in ("threshold", "target_fpr")
        }
        for m in methods
    }


def one_class_mnist(
    config: ml_collections.ConfigDict,
    workdir: str,
    classes: Iterable[int] = range(10),
    fpr: float = 0.05,
    log: Log = None,
) -> dict:
    """The one-class protocol of Ruff et al. (2018) (see the module docstring).

    Args:
      config: an experiment config on a labelled image source (anomaly:mnist).
      workdir: class c's run goes to `{workdir}/class_{c}`.
      classes: the normal classes, one run each.
      fpr: the validation false-positive rate that sets each method's threshold.
      log: called with a line per class (e.g. `print`), or None.
    Returns:
      A JSON-ready dict: "protocol", "description", "fpr", "rows" (one per class: "name",
      "class", "workdir", "step", "resumed" (the run existed: reused or continued), sizes,
      "pca_components", "seconds" {"train", "score"}, "methods" {name:
      `summarize` dict}), "mean" (method -> mean of each metric over the classes) and
      "seconds" (the total).
    """
    classes = [int(c) for c in classes]
    if not classes:
        raise AejaxError("one_class_mnist: no classes given")
    t0 = time.perf_counter()
    from aejax.data import load_dataset

    every_cfg = config.data.copy_and_resolve_references()
    with every_cfg.unlocked():
        every_cfg.train_classes, every_cfg.valid_fraction = (), 0.0
    every = load_dataset(every_cfg)  # all classes' training images, for validation anomalies
    labels = every.train_y
    present = [] if labels is None else sorted(int(c) for c in np.unique(labels))
    absent = [c for c in classes if c not in present]
    if labels is not None and absent:  # without labels, _with_data's check says so
        raise AejaxError(
            f"one_class_mnist: class(es) {', '.join(map(str, absent))} not in "
            f"{config.data.name or config.data.source}'s labels ({', '.join(map(str, present))})"
        )
    rows = []
    for c in classes:
        cfg = _with_data(config, train_classes=(c,))
        others = every.train_x[every.train_y != c]
        pick = np.random.default_rng(c).permutation(len(others))[:VALID_ANOMALIES]
        row = _score_run(
            cfg,
            os.path.join(workdir, f"class_{c}"),
            lambda y, c=c: y != c,
            fpr,
            log,
            str(c),
            others[np.sort(pick)],
        )
        rows.append({"class": c, **row})
    return {
        "protocol": "one_class_mnist",
        "description": (
            f"One-class {config.data.name or config.data.source} "
            "(Ruff et al., ICML 2018): each run trains on one class's training images "
            f"(a {_with_data(config).data.valid_fraction:g} fraction held out as validation "
            "normals) and scores the whole test split, the other classes being anomalies; "
            f"thresholds flag {fpr:.0%} of validation normals; PCA with as many components "
            "as the code, IsolationForest on raw inputs."
        ),
        "fpr": fpr,
        "rows": rows,
        "mean": _means(rows),
        "seconds": time.perf_counter() - t0,
    }


def adbench_names(data_dir: str) -> list[str]:
    """The stems of the .npz files in `data_dir/adbench_classical`, by their number."""
    folder = os.path.join(data_dir, ADBENCH_FOLDER)
    if not data_dir or not os.path.isdir(folder):
        raise AejaxError(
            f"no folder {folder!r}: set config.data.data_dir (or $AEJAX_DATA_DIR) to the "
            f"folder that holds {ADBENCH_FOLDER}/"
        )
    stems = [f[: -len(".npz")] for f in os.listdir(folder) if f.endswith(".npz")]
    if not stems:
        raise AejaxError(f"folder {folder} holds no .npz files")
    key = lambda s: (int(s.split("_")[0]) if s.split("_")[0].isdigit() else math.inf, s)
    return sorted(stems, key=key)


def adbench(
    config: ml_collections.ConfigDict,
    workdir: str,
    names: Iterable[str] | None = None,
    fpr: float = 0.05,
    log: Log = None,
    codes: Sequence[int] = ADBENCH_CODES,
) -> dict:
    """The ADBench classical protocol, one-class (see the module docstring).

    Args:
      config: an experiment config for tabular data (anomaly:tabular), an MLP
        autoencoder; its data source and name are replaced.
      workdir: each set's run goes to `{workdir}/{stem}`, other code sizes' runs to
        `{workdir}/{stem}-code{k}`.
      names: file stems under `data_dir/adbench_classical` (default: all of them).
      fpr, log: as in `one_class_mnist`.
      codes: the code sizes to choose from on validation (`CHOSEN_NAME`); () for none.
    Returns:
      The dict of `one_class_mnist`, with "protocol" "adbench" and rows named by stem;
      with `codes`, each row also has row["choice"].
    """
    data_dir = config.data.data_dir
    names = list(names) if names is not None else adbench_names(data_dir)
    if not names:
        raise AejaxError("adbench: no data sets given")
    cfgs = {}
    for stem in names:  # check every set before training any
        path = os.path.join(data_dir, ADBENCH_FOLDER, stem + ".npz")
        if not os.path.isfile(path):
            raise AejaxError(f"adbench: data file {path} does not exist")
        with np.load(path, allow_pickle=False) as f:
            if "X" not in f or "y" not in f:
                raise AejaxError(f"adbench: data file {path} lacks X or y")
            dim = math.prod(f["X"].shape[1:])
        cfg = _with_data(
            config,
            source="npz",
            name=f"{ADBENCH_FOLDER}/{stem}",
            train_classes=(0,),
            train_fraction=ADBENCH_TRAIN_FRACTION,
        )
        k = code_size(cfg.model, (dim,))
        if k >= dim:
            raise AejaxError(
                f"adbench: {stem} has {dim} features but the model's code has {k}: an "
                "autoencoder needs a smaller code (set config.model.encoder_widths' last "
                "width below the fewest features of the sets, or leave this set out)"
            )
        cfgs[stem] = cfg, [c for c in codes if c < dim]
    t0 = time.perf_counter()
    rows = []
    is_anomaly = lambda y: y != 0
    for stem, (cfg, ks) in cfgs.items():
        run_dir = os.path.join(workdir, stem)
        row = _score_run(cfg, run_dir, is_anomaly, fpr, log, stem)
        if ks:
            t1 = time.perf_counter()
            method, row["choice"] = _choose_code(cfg, run_dir, ks, is_anomaly, fpr)
            row["methods"][CHOSEN_NAME] = method
            row["seconds"]["choice"] = time.perf_counter() - t1
            if log:
                log(f"{stem}: {row['choice']['chosen']} AUROC {method['auroc']:.4f}")
        rows.append(row)
    valid_fraction = next(iter(cfgs.values()))[0].data.valid_fraction
    return {
        "protocol": "adbench",
        "description": (
            "ADBench classical sets (Han et al., 2022), one-class: each run trains on a "
            f"seeded {ADBENCH_TRAIN_FRACTION:.0%} of the normal rows (a {valid_fraction:g} "
            "fraction of them held out as validation normals), standardized with their "
            "statistics; the other normal rows and every anomaly are scored; thresholds "
            f"flag {fpr:.0%} of validation normals; PCA with as many components as the code, "
            "IsolationForest on the standardized features."
            + (
                f" AE {CHOSEN_NAME}: one AE per code size in {tuple(codes)} "
                "(below the set's features), each scored by the squared and by the "
                "standardized squared error; the code and score are chosen per set by the "
                f"AUROC of the validation normals against {VALID_ANOMALIES} synthetic "
                "anomalies drawn from the training rows (half with each feature drawn "
                "independently from its training values, half uniform in the widened "
                "bounding box), never on test rows."
                if codes
                else ""
            )
        ),
        "fpr": fpr,
        "rows": rows,
        "mean": _means(rows),
        "seconds": time.perf_counter() - t0,
    }
