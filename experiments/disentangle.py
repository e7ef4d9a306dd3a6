"""Disentanglement on the sprites: β-TC-VAE, FactorVAE and the annealed-capacity β-VAE
beside the VAE, over several seeds, scored by the metrics of Locatello et al. (2019).

    python experiments/disentangle.py --workdir runs/disentangle \
        [--models beta_tcvae,factor_vae,annealed,vae] [--seeds 0,1,2] \
        [--num_steps 10000] [--num_points 10000]

Trains `disentangle:<model>_sprites` once per seed into W/<model>_seed<s> (a finished run
there is reused, a cut-off one continued), then scores each run's posterior means on the
sprites (`aejax.data.sprites`, dSprites' factor grid re-rendered): the β-VAE score, the
FactorVAE score, MIG and DCI (`aejax.disentanglement`; `--num_points` training points per
metric, half as many for evaluation, DCI on a tenth with 50 boosted trees per factor so
that it runs in minutes on a CPU). Writes W/disentangle.json (every number), W/disentangle.md
(mean and spread over the seeds) and W/traversal_<model>.png (each latent dimension of
seed 0's model swept from −2 to 2 around one test image's code).
"""

import json
import os
import time

import numpy as np
from absl import flags
from sklearn import ensemble

from aejax import cli, disentanglement, plots
from aejax.config import load_config
from aejax.configs.disentangle import MODELS
from aejax.data import sprites
from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel

flags.DEFINE_string("workdir", None, "Where the runs and results go.", required=True)
flags.DEFINE_string("models", ",".join(MODELS), "Models, comma-separated: " + ", ".join(MODELS))
flags.DEFINE_string("seeds", "0,1,2", "Seeds, comma-separated.")
flags.DEFINE_integer("num_steps", 0, "Training steps of each run (0: the config's).")
flags.DEFINE_integer("max_train", 0, "Training images (0: the config's 50,000).")
flags.DEFINE_integer("num_points", 10_000, "Training points of each metric.")

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


def _table(results: dict) -> list[str]:
    lines = [
        "| model | " + " | ".join(METRICS) + " | test bce |",
        "|---" * (len(METRICS) + 2) + "|",
    ]
    for model, runs in results.items():
        cells = []
        for name in (*METRICS, "test_bce"):
            v = np.array([r[name] for r in runs.values()], np.float64)
            cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def main(argv):
    del argv
    f = flags.FLAGS
    models = [m.strip() for m in f.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise AejaxError(f"--models={f.models!r}: known models are {', '.join(MODELS)}")
    try:
        seeds = [int(s) for s in f.seeds.split(",") if s.strip()]
    except ValueError:
        raise AejaxError(f"--seeds={f.seeds!r} must be integers, e.g. 0,1,2") from None
    if not seeds or f.num_points < 10:
        raise AejaxError("--seeds must name one seed or more and --num_points be >= 10")
    from aejax.train import train_and_evaluate

    results, t0 = {}, time.perf_counter()
    for model in models:
        results[model] = {}
        for seed in seeds:
            config = load_config(f"disentangle:{model}_sprites")
            config.seed = seed
            config.progress_bar = False
            if f.num_steps:
                config.num_steps = f.num_steps
                if model == "annealed":
                    config.loss_options.kl_capacity.anneal_steps = f.num_steps
            if f.max_train:
                config.data.max_train = f.max_train
            run = os.path.join(f.workdir, f"{model}_seed{seed}")
            t = time.perf_counter()
            _, metrics = train_and_evaluate(config, run)
            trained = TrainedModel.load(run)
            row = scores(trained, f.num_points, seed)
            row["test_bce"] = float(metrics.get("test/bce", np.nan))
            row["seconds"] = time.perf_counter() - t
            results[model][seed] = row
            print(model, seed, {k: round(v, 4) for k, v in row.items()}, flush=True)
            if seed == seeds[0]:
                path = os.path.join(f.workdir, f"traversal_{model}.png")
                traversal(trained, path, f"{model}: each dimension from −2 to 2")
    with open(os.path.join(f.workdir, "disentangle.json"), "w") as out:
        json.dump({"results": results, "seconds": time.perf_counter() - t0}, out, indent=1)
    text = "\n".join(_table(results)) + "\n"
    with open(os.path.join(f.workdir, "disentangle.md"), "w") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    cli.run(main)
