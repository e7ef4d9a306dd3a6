"""The `augmentation` row: do a VAE's or an adversarial AE's samples, labelled, help the
small MNIST classifier of `aejax.features` trained on 100 or 1000 labelled images?

The VAE and the AAE (`aejax/configs/augment.py`) are trained once, without labels, on the
training split (the semi-supervised setting: every training image is there, few labels),
and reused for every seed. For each labelled-set size and seed, class-balanced labelled and
validation images are drawn from the training split; the classifier is trained on

- the labelled images alone;
- the labelled images and class-conditional samples: a Gaussian per class fitted to the
  labelled images' codes (`ClassConditionalGaussianSampler`, its shrinkage chosen by the
  validation images' code likelihood), decoded; the label is the class drawn;
- the labelled images and prior samples pseudo-labelled by the first classifier, kept when
  its confidence is at least a threshold chosen on validation accuracy (seed 0's
  validation images; the other seeds reuse it).

Real images are repeated so that they weigh about as much as the samples
(`aejax.augment.mix`); every classifier trains for the same number of steps.
"""

import dataclasses
import json
import os
import time

import jax
import numpy as np

from aejax import augment, features, plots, samplers, sampling
from aejax.data.sources import Dataset
from results_compute import Adjust, Options, train_preset


@dataclasses.dataclass(frozen=True)
class Settings:
    """The protocol's settings, fixed before any run.

    Attributes:
      labelled: labelled-set sizes (class-balanced).
      valid: validation images (class-balanced, disjoint from the labelled ones).
      seeds: draws of the labelled and validation images (and the classifier's seed).
      samples: generated samples drawn per classifier (before the confidence filter).
      thresholds: pseudo-label confidence thresholds tried on validation.
      shrinkages: the class-conditional Gaussians' shrinkage λ tried on validation.
      classifier_steps: Adam steps of every classifier (batch 128, or the whole set if less).
    """

    labelled: tuple[int, ...] = (100, 1000)
    valid: int = 200
    seeds: tuple[int, ...] = (0, 1, 2)
    samples: int = 2000
    thresholds: tuple[float, ...] = (0.7, 0.95)
    shrinkages: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    classifier_steps: int = 100


MODELS = {"VAE": "augment.py:vae", "AAE": "augment.py:aae"}
BASE = "labelled only"


class _Saved:
    """Each classifier's (validation, test) accuracy, written to `path` as it is computed,
    so an interrupted row resumes where it stopped (under the same settings only)."""

    def __init__(self, path: str, settings: "Settings"):
        self.path, self.tag = path, dataclasses.asdict(settings)
        self.acc = {}
        if os.path.isfile(path):
            with open(path) as f:
                saved = json.load(f)
            if saved["settings"] == json.loads(json.dumps(self.tag)):
                self.acc = saved["accuracy"]

    def get(self, key: str, fn) -> tuple[float, float]:
        if key not in self.acc:
            self.acc[key] = list(fn())
            print(
                f"augmentation {key}: validation {self.acc[key][0]:.4f}, test "
                f"{self.acc[key][1]:.4f}",
                flush=True,
            )
            with open(self.path + ".tmp", "w") as f:
                json.dump({"settings": self.tag, "accuracy": self.acc}, f)
            os.replace(self.path + ".tmp", self.path)
        return tuple(self.acc[key])


def _classifier(x, y, seed: int, steps: int):
    """The features classifier trained for `steps` steps on (x, y) (a cosine schedule over
    about those steps)."""
    per_epoch = len(x) // min(features.CLASSIFIER_CONFIG["batch_size"], len(x))
    cfg = features.classifier_config(
        seed=seed, num_epochs=max(1, -(-steps // per_epoch)), max_steps=steps
    )
    return features.train_classifier(cfg, Dataset(x, y, x[:1], y[:1], "labelled"))


def _for_budget(settings: Settings, config) -> Settings:
    """The settings under the generative models' (adjusted) budget: a test's few steps
    (num_steps without epochs) shrink the classifiers' steps and the protocol to one size,
    two seeds (the second reuses the first's threshold)."""
    if config.num_epochs:
        return settings
    return dataclasses.replace(
        settings,
        labelled=settings.labelled[:1],
        seeds=settings.seeds[:2],
        classifier_steps=min(settings.classifier_steps, config.num_steps),
    )


def _sizes(settings: Settings, labels: np.ndarray) -> list[int]:
    """The labelled sizes, each cut to what the training split's rarest class allows beside
    the validation images (only a test's few hundred images need it)."""
    k = len(np.unique(labels))
    room = int(np.bincount(labels).min() - settings.valid // k) * k
    return sorted({min(n, room) for n in settings.labelled})


def _save_samples(path: str, x: np.ndarray, y: np.ndarray, title: str, per_class: int = 6):
    """Up to `per_class` samples of each class in a column under its label."""
    grid = np.zeros((per_class, 10, *x.shape[1:]), np.float32)
    for k in range(10):
        rows = x[y == k][:per_class]
        grid[: len(rows), k] = rows
    plots.save_image_grid(path, grid, title, "label", "sample", np.arange(10), np.arange(per_class))


def compute(workdir: str, adjust: Adjust, opts: Options, settings: Settings = Settings()) -> dict:
    del opts
    gens, runs = {}, []
    for name, spec in MODELS.items():
        gens[name], run = train_preset(spec, os.path.join(workdir, name.lower()), adjust)
        runs.append(run)
    ds = gens["VAE"].dataset
    settings = _for_budget(settings, gens["VAE"].exp.config)
    steps = settings.classifier_steps
    x = features.as_images(ds.train_x)
    tx, ty = features.as_images(ds.test_x), ds.test_y
    acc = {}  # (n, method, seed) -> (validation accuracy, test accuracy)
    chosen, kept = {}, {}  # choices on validation; pseudo-labelled samples kept
    t0 = time.perf_counter()
    saved = _Saved(os.path.join(workdir, "accuracy.json"), settings)
    sizes = _sizes(settings, ds.train_y)
    for n in sizes:
        for seed in settings.seeds:
            lab, val = augment.balanced_split(ds.train_y, (n, settings.valid), seed)
            lx, ly, vx, vy = x[lab], ds.train_y[lab], x[val], ds.train_y[val]

            splits = (vx, vy, tx, ty)

            def score(params, splits=splits):
                vx, vy, tx, ty = splits
                return features.accuracy(params, vx, vy), features.accuracy(params, tx, ty)

            def with_samples(name, sx, sy, lx=lx, ly=ly, n=n, seed=seed, score=score):
                train = lambda: score(_classifier(*augment.mix(lx, ly, sx, sy), seed, steps))
                return saved.get(f"{n}/{name}/{seed}", train)

            base_dir = os.path.join(workdir, "classifiers", f"{n}_{seed}")
            if os.path.isdir(base_dir) and f"{n}/{BASE}/{seed}" in saved.acc:
                base = features.load(base_dir)[0]
            else:
                base = _classifier(lx, ly, seed, steps)
                features.save(base_dir, base, {"labelled": n, "seed": seed, "steps": steps})
            # With no sample confident enough, the training set is the labelled images.
            acc[n, BASE, seed] = baseline = saved.get(f"{n}/{BASE}/{seed}", lambda b=base: score(b))
            for g, m in gens.items():
                # Class-conditional: Gaussians on the labelled codes, λ by validation likelihood.
                codes, vcodes = m.encode(lx), m.encode(vx)
                ll = {
                    lam: float(
                        samplers.ClassConditionalGaussianSampler.fit(codes, ly, lam)
                        .log_prob(vcodes, vy)
                        .mean()
                    )
                    for lam in settings.shrinkages
                }
                lam = max(ll, key=ll.get)
                chosen[n, g, "shrinkage", seed] = (lam, ll)
                sampler = samplers.ClassConditionalGaussianSampler.fit(codes, ly, lam)
                z, sy = sampler.sample(settings.samples, seed)
                sx = np.clip(m.decode(z), 0.0, 1.0).reshape(len(z), *x.shape[1:])
                method = f"+ {g} samples, class-conditional"
                acc[n, method, seed] = with_samples(method, sx, sy)
                if n == sizes[0] and seed == settings.seeds[0]:
                    _save_samples(
                        os.path.join(workdir, f"samples_{g.lower()}_conditional.png"),
                        sx,
                        sy,
                        f"{g}: class-conditional samples, {n} labelled",
                    )
                # Pseudo-labels: prior samples labelled by the labelled-only classifier.
                key = jax.random.fold_in(jax.random.key(seed), 1 + list(gens).index(g))
                px = np.asarray(sampling.sample_prior(m.model, m.variables, key, settings.samples))
                px = np.clip(px, 0.0, 1.0).reshape(len(px), *x.shape[1:])
                logits = features.logits(base, px)
                method = f"+ {g} samples, pseudo-labels"
                if seed == settings.seeds[0]:  # the threshold, on this seed's validation
                    trials = {}
                    for t in settings.thresholds:
                        keep, py = augment.confident_labels(logits, t)
                        trials[t] = (
                            with_samples(f"{method} {t}", px[keep], py[keep])
                            if keep.any()
                            else baseline
                        )
                    best = max(settings.thresholds, key=lambda t: trials[t][0])
                    chosen[n, g, "threshold"] = (best, {t: v[0] for t, v in trials.items()})
                    acc[n, method, seed] = trials[best]
                else:
                    best = chosen[n, g, "threshold"][0]
                    keep, py = augment.confident_labels(logits, best)
                    acc[n, method, seed] = (
                        with_samples(f"{method} {best}", px[keep], py[keep])
                        if keep.any()
                        else baseline
                    )
                keep, py = augment.confident_labels(logits, chosen[n, g, "threshold"][0])
                kept[n, g, seed] = int(keep.sum())
                if n == sizes[0] and seed == settings.seeds[0]:
                    _save_samples(
                        os.path.join(workdir, f"samples_{g.lower()}_pseudo.png"),
                        px[keep],
                        py[keep],
                        f"{g}: prior samples, pseudo-labels ≥ {chosen[n, g, 'threshold'][0]}",
                    )
    return _summary(
        settings, sizes, acc, chosen, kept, runs, steps, len(x), time.perf_counter() - t0
    )


def _summary(settings, sizes, acc, chosen, kept, runs, steps, num_train, seconds) -> dict:
    methods = list(dict.fromkeys(m for _, m, _ in acc))
    stat = {}
    for n in sizes:
        for m in methods:
            v = np.array([acc[n, m, s] for s in settings.seeds])
            stat[n, m] = (v[:, 0].mean(), v[:, 1].mean(), v[:, 1].std(), v[:, 1])
    small = sizes[0]
    # Ours: the augmentation with the best mean validation accuracy at the smallest size.
    best = max(methods[1:], key=lambda m: stat[small, m][0])
    rows = [
        [
            n,
            m + (" (chosen)" if (n == small and m == best) else ""),
            stat[n, m][0],
            f"{stat[n, m][1]:.4f} ± {stat[n, m][2]:.4f}",
            " / ".join(f"{a:.4f}" for a in stat[n, m][3]),
        ]
        for n in sizes
        for m in methods
    ]
    thresholds = "; ".join(
        f"{g}, {n} labelled: t = {chosen[n, g, 'threshold'][0]} ("
        + ", ".join(f"{t}: {a:.3f}" for t, a in chosen[n, g, "threshold"][1].items())
        + f"), kept {', '.join(str(kept[n, g, s]) for s in settings.seeds)} of {settings.samples}"
        for n in sizes
        for g in MODELS
    )
    lams = "; ".join(
        f"{g}, {n} labelled: λ = "
        + ", ".join(str(chosen[n, g, "shrinkage", s][0]) for s in settings.seeds)
        for n in sizes
        for g in MODELS
    )
    helped = [
        f"{m} at {n}"
        for n in sizes
        for m in methods[1:]
        if stat[n, m][1] - stat[n, BASE][1] > stat[n, BASE][2] + stat[n, m][2]
    ]
    hurt = [
        f"{m} at {n} ({100 * (stat[n, m][1] - stat[n, BASE][1]):+.2f} points)"
        for n in sizes
        for m in methods[1:]
        if stat[n, BASE][1] - stat[n, m][1] > stat[n, BASE][2] + stat[n, m][2]
    ]
    return {
        "ours": float(stat[small, best][1]),
        "baselines": {f"{BASE}, {n} labelled": float(stat[n, BASE][1]) for n in sizes}
        | {
            f"{m}, {n} labelled": float(stat[n, m][1])
            for n in sizes
            for m in methods[1:]
            if (n, m) != (small, best)
        },
        "target_value": float(stat[small, BASE][1]),
        "runs": runs,
        "chosen": best,
        "accuracy": {f"{n}/{m}/{s}": list(v) for (n, m, s), v in acc.items()},
        "protocol_seconds": seconds,
        "table": {
            "header": [
                "labelled",
                "training set",
                "validation accuracy (mean)",
                "test accuracy (mean ± std over seeds)",
                "per seed",
            ],
            "rows": rows,
        },
        "notes": [
            f"The VAE and the AAE are trained once, without labels, on all {num_train} "
            "training images (the semi-supervised setting), and reused for every seed: "
            f"`augment:vae` and `augment:aae`, {runs[0]['steps']} and {runs[1]['steps']} "
            "steps (2 epochs of batch 128 at the row's budget; the `vae:mnist` and "
            "`aae:mnist` presets train 10 epochs), a budget chosen to fit about half an hour "
            "on the shared 2-core CPU; longer-trained models would give sharper samples. Per "
            f"seed ({', '.join(map(str, settings.seeds))}), {', '.join(map(str, sizes))} "
            f"labelled images and {settings.valid} validation images, class-balanced and "
            "disjoint, are drawn from the training split; the test split is only scored. "
            f"Every classifier (aejax.features' CNN) trains {steps} Adam steps of batch 128 "
            "(the whole set if smaller). Each augmentation adds "
            f"{settings.samples} samples (before the confidence filter); the labelled images "
            "are repeated to weigh about as much as the samples. Class-conditional: a "
            "Gaussian per class on the labelled images' codes (VAE: posterior means), "
            "shrunk towards the pooled within-class covariance by λ chosen per seed by the "
            f"validation codes' likelihood: {lams}. Pseudo-labels: prior samples labelled by "
            "the labelled-only classifier, kept when its confidence is at least t, chosen "
            f"by seed {settings.seeds[0]}'s validation accuracy: {thresholds}. "
            f"Ours: the augmentation with the best mean validation accuracy at {small} "
            f"labelled ({best}); the target is the labelled-only classifier's accuracy.",
            "Helped by more than the seeds' spread (difference of means above the sum of "
            "the two standard deviations): "
            + (
                ", ".join(helped)
                if helped
                else "none: adding these samples does not help "
                "this classifier by more than the spread over seeds"
            )
            + ". Hurt by more than that spread: "
            + (", ".join(hurt) if hurt else "none")
            + ". Figures: samples_<model>_<scheme>.png in this row's folder (the first "
            "seed's added samples, by label).",
        ],
    }
