"""Disentanglement on the sprites: β-TC-VAE, FactorVAE and the annealed-capacity β-VAE
beside the VAE, over several seeds, scored by the metrics of Locatello et al. (2019).

    python experiments/disentangle.py --workdir runs/disentangle \
        [--models beta_tcvae,factor_vae,annealed,vae] [--seeds 0,1,2] \
        [--num_steps 10000] [--num_points 10000]

Trains `disentangle:<model>_sprites` once per seed into W/<model>_seed<s> and scores it
(`app_disentangle.run_models`: a finished run is reused, a scored one not scored again, so
one process per model and seed can run in parallel and a last call gathers them). Writes
W/disentangle.json (every number), W/disentangle.md (mean and spread over the seeds, and
the published ordering checked) and each run's latent traversal, W/<model>_seed<s>/
traversal.png. The results row of the same runs: `experiments/results.py --rows
disentanglement`.
"""

import json
import os
import time

from absl import flags

import app_disentangle
from aejax import cli
from aejax.configs.disentangle import MODELS
from aejax.errors import AejaxError

flags.DEFINE_string("workdir", None, "Where the runs and results go.", required=True)
flags.DEFINE_string("models", ",".join(MODELS), "Models, comma-separated: " + ", ".join(MODELS))
flags.DEFINE_string("seeds", "0,1,2", "Seeds, comma-separated.")
flags.DEFINE_integer("num_steps", 0, "Training steps of each run (0: the config's).")
flags.DEFINE_integer("max_train", 0, "Training images (0: the config's 50,000).")
flags.DEFINE_integer("num_points", 10_000, "Training points of each metric.")


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
    for name in ("num_steps", "max_train"):
        if getattr(f, name) < 0:
            raise AejaxError(f"--{name}={getattr(f, name)} must be >= 0 (0: the config's)")

    def adjust(config):
        config.progress_bar = False
        if f.num_steps:
            config.num_steps = f.num_steps
        if f.max_train:
            config.data.max_train = f.max_train

    t0 = time.perf_counter()
    results = app_disentangle.run_models(
        f.workdir, models, seeds, adjust, f.num_points, log=lambda *a: print(*a, flush=True)
    )
    with open(os.path.join(f.workdir, "disentangle.json"), "w") as out:
        json.dump({"results": results, "seconds": time.perf_counter() - t0}, out, indent=1)
    table = app_disentangle.table_rows(results)
    lines = ["| " + " | ".join(table["header"]) + " |", "|---" * len(table["header"]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
    text = "\n".join(lines + [""] + app_disentangle.ordering(results)) + "\n"
    with open(os.path.join(f.workdir, "disentangle.md"), "w") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    cli.run(main)
