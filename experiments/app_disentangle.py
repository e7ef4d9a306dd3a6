"""The disentanglement row: β-TC-VAE, FactorVAE and the annealed-capacity β-VAE beside the
VAE on the sprites, over several seeds, scored by the metrics of Locatello et al. (2019).

`run_models` trains `disentangle:<model>_sprites` once per seed into W/<model>_seed<s> (a
finished run is reused, a cut-off one continued, and a run already scored, its
scores.json, is not scored again, so runs can go in parallel processes and a last call
gathers them), then scores each run's posterior means on the sprites
(`aejax.data.sprites`, dSprites' factor grid re-rendered): the β-VAE score, the FactorVAE
score, MIG and DCI (`aejax.disentanglement`; `num_points` training points per metric,
half as many for evaluation, DCI on a tenth with 50 boosted trees per factor so that it
runs in minutes on a CPU). `compute` is the row of docs/RESULTS.md;
`experiments/disentangle.py` is the script of the same runs.
"""

import json
import os
import time

import numpy as np
from sklearn import ensemble

from aejax import disentanglement, plots
from aejax.configs.disentangle import MODELS
from aejax.data import sprites
from aejax.evaluate import TrainedModel
from results_compute import Adjust, Options, adjusted_config, machine, timed_training

METRICS = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness")


def scores(trained: TrainedModel, num_points: int, seed: int) -> dict[str, float]:
    """The metrics of a trained model's posterior means on its sprites."""
    data = sprites.ground_truth(trained.exp.config.data)
    represent = trained.encode
    rng = np.random.default_rng(seed)
    n_eval = max(1, num_points // 2)
    beta = disentanglement.beta_vae_score(
        represent, data, rng, num_train=num_points, num_eval=n_eval
    )
    factor = disentanglement.factor_vae_score(
        represent,
        data,
        rng,
        num_train=num_points,
        num_eval=n_eval,
        num_variance_estimate=num_points,
    )
    n_dci = max(100, num_points // 10)
    n = max(num_points, n_dci)
    codes, factors = disentanglement.codes_and_factors(represent, data, n, rng)
    test = disentanglement.codes_and_factors(represent, data, n_dci // 2, rng)
    trees = lambda: ensemble.GradientBoostingClassifier(n_estimators=50, random_state=0)  # noqa: E731
    dci = disentanglement.dci(codes[:n_dci], factors[:n_dci], *test, classifier=trees)
    return {
        "beta_vae": beta["eval_accuracy"],
        "factor_vae": factor["eval_accuracy"],
        "mig": disentanglement.mig(codes, factors),
        "dci_disentanglement": dci["disentanglement"],
        "dci_completeness": dci["completeness"],
        "dci_informativeness": dci["informativeness_test"],
    }


def traversal(trained: TrainedModel, path: str, title: str, steps: int = 9) -> None:
    """Each code dimension swept from −2 to 2 around the first test image's code."""
    z0 = trained.encode(trained.dataset.test_x[:1])[0]
    values = np.linspace(-2.0, 2.0, steps, dtype=np.float32)
    codes = np.repeat(z0[None, None], len(z0), 0).repeat(steps, 1)
    for d in range(len(z0)):
        codes[d, :, d] = values
    images = trained.decode(codes.reshape(-1, len(z0))).reshape(len(z0), steps, 64, 64, 1)
    plots.save_image_grid(
        path, images, title, "code value", "dimension", values, np.arange(len(z0))
    )


def table_rows(results: dict) -> dict:
    """{"header", "rows"}: each model's mean ± standard deviation over its seeds."""
    rows = []
    for model, runs in results.items():
        cells = []
        for name in (*METRICS, "test_bce"):
            v = np.array([r[name] for r in runs.values()], np.float64)
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}")
        rows.append([model, *cells])
    return {"header": ["model", *METRICS, "test bce"], "rows": rows}


def run_models(
    workdir: str,
    models=MODELS,
    seeds=(0, 1, 2),
    adjust: Adjust = lambda config: None,
    num_points: int = 10_000,
    log=print,
) -> dict:
    """Trains and scores every model and seed (see the module docstring).

    Returns:
      model -> seed -> {metric: value, "test_bce", "seconds" (the wall time of the call
      that scored it: training or reusing the run, and scoring), "train_seconds" (the
      run's training, `timed_training`), "steps", "trained_here"}.
    """
    results = {}
    for model in models:
        results[model] = {}
        for seed in seeds:
            run = os.path.join(workdir, f"{model}_seed{seed}")
            saved = os.path.join(run, "scores.json")
            if os.path.isfile(saved):
                with open(saved) as fh:
                    results[model][seed] = {**json.load(fh), "trained_here": False}
                continue
            config = adjusted_config(f"disentangle:{model}_sprites", adjust)
            config.seed = seed
            if model == "annealed":  # the capacity reaches its maximum at the run's end
                config.loss_options.kl_capacity.anneal_steps = config.num_steps
            t = time.perf_counter()
            metrics, train_seconds, _ = timed_training(config, run)
            trained = TrainedModel.load(run)
            row = scores(trained, num_points, seed)
            row["test_bce"] = float(metrics.get("test/bce", np.nan))
            row.update(seconds=time.perf_counter() - t, train_seconds=train_seconds)
            row.update(steps=int(trained.step), num_points=num_points, machine=machine())
            log(
                model, seed, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            )
            title = f"{model}, seed {seed}: each dimension from −2 to 2"
            traversal(trained, os.path.join(run, "traversal.png"), title)
            with open(saved, "w") as fh:
                json.dump(row, fh, indent=1)
            results[model][seed] = {**row, "trained_here": True}
    return results


def _mean(results: dict, model: str, metric: str) -> float:
    return float(np.mean([r[metric] for r in results[model].values()]))


def ordering(results: dict) -> list[str]:
    """The published ordering, checked: β-TC-VAE and FactorVAE above the VAE on MIG and the
    FactorVAE score (seeds' means)."""
    out = []
    for model in ("beta_tcvae", "factor_vae"):
        for metric in ("mig", "factor_vae"):
            if model in results and "vae" in results:
                a, b = _mean(results, model, metric), _mean(results, "vae", metric)
                out.append(
                    f"{model} {'above' if a > b else 'NOT above'} vae on {metric}: "
                    f"{a:.3f} against {b:.3f}"
                )
    return out


def compute(workdir: str, adjust: Adjust, opts: Options) -> dict:
    """The row: MIG of β-TC-VAE (ours) beside the VAE's, every metric in the table."""
    seeds = tuple(range(opts.disentangle_seeds))
    models = opts.disentangle_models
    results = run_models(workdir, models, seeds, adjust, opts.disentangle_points)
    table = table_rows(results)
    runs = [
        {
            "preset": f"disentangle.py:{model}_sprites (seed {seed})",
            "train_seconds": r.get("train_seconds"),
            "steps": r.get("steps"),
            "trained_here": r["trained_here"],
        }
        for model, by_seed in results.items()
        for seed, r in by_seed.items()
    ]
    return {
        "ours": _mean(results, "beta_tcvae", "mig"),
        "baselines": {m: _mean(results, m, "mig") for m in models if m != "beta_tcvae"},
        "target_value": _mean(results, "vae", "mig"),
        "runs": runs,
        "table": table,
        "results": results,
        "disentangle_models": list(models),
        "notes": [
            "Trained and scored on: "
            + ", ".join(
                sorted({r.get("machine", "?") for m in results.values() for r in m.values()})
            )
            + ".",
            "Figures: each run's latent traversal, W/disentanglement/<model>_seed<s>/"
            "traversal.png.",
            f"Each cell is the mean ± standard deviation over {len(seeds)} seeds; every "
            f"metric uses {opts.disentangle_points} training points (half as many to "
            "evaluate), Locatello et al. use 10,000.",
            *(f"- {line}." for line in ordering(results)),
            *(
                [f"Not trained for this row: {', '.join(m for m in MODELS if m not in models)}."]
                if set(models) != set(MODELS)
                else []
            ),
        ],
    }
