"""aejax beside pythae 0.1.2 on MNIST: trains one aejax config through the library and
writes the zoo's JSON and 10,000 samples (benchmarks/zoo_peer.py is pythae's side, in a
PyTorch venv of its own; experiments/zoo_table.py turns the pairs into the table's rows).

    python experiments/zoo.py --model=vae --epochs=1 --out=runs/zoo
    python experiments/zoo.py --model=vae --epochs=1 --out=runs/zoo --nll
    python experiments/zoo.py --model=my_vae --config=vae:mnist \
        --set="loss=0.5*mse + kl_normal" --set=batch_size=100 --epochs=1 --out=runs/zoo

`--model` names a row: a pythae model of `PAIRS` (experiments/zoo_pairs.py), which gives the
aejax config:preset and the overrides that make it pythae's setting. Every pair gets
pythae's default MLP and trainer (`aejax.configs.wae.pythae_mnist`: 784-512-16 and its
mirror with a sigmoid output, Adam at a constant 1e-3, batch 100, 600 steps an epoch).
`--config` runs any config:preset instead, with `--set key=value` overrides (a Python
literal, else a string), under --model's name.

Written to --out: `aejax_<model>.json` (the keys of benchmarks/zoo_schema.py) and
`aejax_<model>.npy`, [10000, 784] float32 in [0, 1].
- seconds_per_epoch: the median over epochs of the training seconds of each epoch, from the
  rows the loop writes (`train_and_evaluate(on_write=...)`): each logged window's steps over
  its train/steps_per_s, less any evaluation inside the window. Loading the data and
  initializing are not counted; the first epoch includes compiling the step
  (steady_seconds_per_epoch leaves out the first window). One checkpoint and one
  evaluation, at the end (pythae's train_step does neither).
- recon_mse_per_pixel, recon_sse_per_image: on the 10,000 test images, x̂ the decoded code
  (a VAE's encoder mean), as pythae's side.
- samples: from the model's prior (`aejax.sampling.sample_prior`), or for a model without one
  from a 10-component Gaussian mixture fitted to 10,000 training codes (`aejax.samplers`),
  as the report's generation section does.
- --nll (models of PAIRS with a binarized recipe): a second run on the 50,000 binarized
  training images with a Bernoulli likelihood; nll is −(the IWAE bound with k samples) of
  `aejax.likelihood.evaluate_bounds` on the first --nll_images binarized test images.
"""

import argparse
import ast
import importlib.util
import math
import os
import shutil
import statistics
import tempfile
import time

import jax
import numpy as np

import aejax
from aejax import config as config_lib
from aejax import likelihood
from aejax.configs import wae
from aejax.errors import ConfigError
from aejax.evaluate import TrainedModel
from aejax.models import interface
from aejax.samplers import GaussianMixtureSampler, sample_decoded
from aejax.sampling import sample_prior
from aejax.train import train_and_evaluate
from zoo_pairs import PAIRS


def _schema():
    """benchmarks/zoo_schema.py, the JSON both sides write (numpy only)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
    spec = importlib.util.spec_from_file_location("zoo_schema", os.path.join(path, "zoo_schema.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_override(config, text: str) -> None:
    """Sets "a.b=value" on `config`: the value a Python literal, else the string itself."""
    key, eq, raw = text.partition("=")
    if not eq:
        raise ConfigError(f"--set {text!r} is not key=value")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    *parents, leaf = key.strip().split(".")
    node = config
    for p in parents:
        node = node.get(p) if hasattr(node, "get") else None
    if node is None or not hasattr(node, "get") or leaf not in node:
        raise ConfigError(f"--set {text!r}: the config has no field {key.strip()!r}")
    node[leaf] = value


def build_config(args, binarized: bool = False):
    """The run's config: a pair's (pythae's MLP and trainer, its overrides) or --config, then
    --set; the epochs and --seed; for the binarized run, binarized MNIST and the Bernoulli
    recipe."""
    if args.config:
        config = config_lib.load_config(args.config)
    else:
        spec, overrides, binarized_loss, _ = PAIRS[args.model]
        config = config_lib.load_config(spec)
        wae.pythae_mnist(config)
        for key, value in overrides.items():
            apply_override(config, f"{key}={value!r}")
        if binarized:
            config.data.source = "binarized_mnist"
            if isinstance(binarized_loss, str):
                binarized_loss = {"loss": binarized_loss}
            for key, value in binarized_loss.items():
                apply_override(config, f"{key}={value!r}")
    for text in args.set:  # last: it may change a pair's settings (model.kernel_init=...)
        apply_override(config, text)
    config.num_epochs = (args.nll_epochs or args.epochs) if binarized else args.epochs
    # --seed seeds the training too (initialization, batch order, noise), as the peer's
    # --seed seeds pythae's: without it, runs at other seeds differed in sampling only.
    config.seed = args.seed
    config.num_steps = 0
    config.progress_bar = False
    if args.data_dir:
        config.data.data_dir = args.data_dir
    return config


class EpochClock:
    """Training seconds per epoch from the rows the loop writes (its `on_write`).

    A train row ends a window of steps at its step; the window lasted steps / its
    train/steps_per_s, measured from the previous row's fetch, so it may contain an
    evaluation: the time before the last evaluation row's write is taken out.
    """

    def __init__(self):
        self.rows: list[tuple[float, int, float | None]] = []

    def __call__(self, step: int, row: dict) -> None:
        self.rows.append((time.perf_counter(), step, row.get("train/steps_per_s")))

    def windows(self) -> list[tuple[int, int, float]]:
        """(first step, last step, training seconds) of each logged window, in order."""
        out, start, evaluated = [], 0, -math.inf
        for t, step, rate in self.rows:
            if rate is None:  # an evaluation's row, written when it ended
                evaluated = t
                continue
            out.append((start, step, min((step - start) / rate, t - evaluated)))
            start = step
        return out

    def epoch_seconds(self, steps_per_epoch: int) -> list[float]:
        """The training seconds of each epoch (a window counts in the epoch it ends in)."""
        per: dict[int, float] = {}
        for _, end, seconds in self.windows():
            epoch = math.ceil(end / steps_per_epoch)
            per[epoch] = per.get(epoch, 0.0) + seconds
        return [per[e] for e in sorted(per)]

    def steady_seconds_per_epoch(self, steps_per_epoch: int) -> float | None:
        """Seconds an epoch at the median rate of the windows after the first (compiling)."""
        rates = [(b - a) / s for a, b, s in self.windows()[1:]]
        return steps_per_epoch / statistics.median(rates) if rates else None


def train(config, out: str, keep: bool):
    """Trains `config` in a fresh workdir under `out`: (TrainedModel, epoch seconds, steady
    seconds per epoch, the workdir or None once removed)."""
    workdir = tempfile.mkdtemp(prefix="aejax_run_", dir=out)
    config.checkpoint_every_steps = config.eval_every_steps = 10**9  # at the end only
    clock = EpochClock()
    train_and_evaluate(config, workdir, on_write=clock)
    trained = TrainedModel.load(workdir)
    spe = trained.exp.steps_per_epoch
    if not keep:
        shutil.rmtree(workdir)
        workdir = None
    return trained, clock.epoch_seconds(spe), clock.steady_seconds_per_epoch(spe), workdir


def flat(x) -> np.ndarray:
    return np.asarray(x, np.float32).reshape(len(x), -1)


def generate(m: TrainedModel, n: int, seed: int, codes: int) -> tuple[np.ndarray, str]:
    """n samples [n, D] in [0, 1] and the sampler's description."""
    if interface.prior_of(m.model) is not None:
        x = sample_prior(m.model, m.variables, jax.random.key(seed), n)
        return np.clip(flat(x), 0, 1), f"the model's prior ({interface.prior_of(m.model)})"
    sampler = GaussianMixtureSampler.fit(m.encode(m.dataset.train_x[:codes]), seed=seed)
    x = sample_decoded(sampler, m.decode, n, seed)
    k = len(sampler.weights)
    return np.clip(flat(x), 0, 1), f"GaussianMixtureSampler ({k} components, {codes} codes)"


def nll(args) -> dict:
    """The binarized run and −(its IWAE bound) on the first --nll_images test images."""
    config = build_config(args, binarized=True)
    m, seconds, _, _ = train(config, args.out, keep=False)
    density = likelihood.get_likelihood(m.exp.weights, m.exp.options)
    x = m.dataset.test_x[: args.nll_images]
    t0 = time.perf_counter()
    bounds = likelihood.evaluate_bounds(
        m.model, m.variables, x, jax.random.key(args.seed), density, k=args.nll_k
    )
    return {
        "value": -float(np.mean(bounds["iwae"])),
        "k": args.nll_k,
        "test_images": len(x),
        "epochs": config.num_epochs,
        "train_examples": m.dataset.num_train,
        "data": "binarized_mnist",
        "likelihood": config.loss,
        "seconds": time.perf_counter() - t0,
        "seconds_per_epoch": statistics.median(seconds),
        "estimator": "-aejax.likelihood.evaluate_bounds iwae (importance sampling from q(z|x))",
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, help=f"a row's name; pairs: {', '.join(PAIRS)}")
    p.add_argument("--config", default="", help="config:preset instead of the pair's")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="key=value, over the pair's or --config's settings",
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", default="runs/zoo")
    p.add_argument("--data_dir", default="", help="default: $AEJAX_DATA_DIR")
    p.add_argument("--num_samples", type=int, default=10_000)
    p.add_argument("--gmm_codes", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0, help="config.seed and the sampler's")
    p.add_argument("--nll", action="store_true", help="also the binarized run and its NLL")
    p.add_argument("--nll_epochs", type=int, default=0, help="default: --epochs")
    p.add_argument("--nll_k", type=int, default=1000)
    p.add_argument("--nll_images", type=int, default=1000)
    p.add_argument("--keep_workdir", action="store_true")
    args = p.parse_args(argv)
    if not args.config and args.model not in PAIRS:
        p.error(f"--model={args.model} is not a pair ({', '.join(PAIRS)}); give --config")
    if args.nll and (args.config or PAIRS[args.model][2] is None):
        p.error(f"--nll: no binarized recipe for {args.model} (pairs with one only)")
    os.makedirs(args.out, exist_ok=True)
    config = build_config(args)
    m, seconds, steady, workdir = train(config, args.out, args.keep_workdir)
    test = flat(m.dataset.test_x)
    sq = (flat(m.reconstruct(m.dataset.test_x)) - test) ** 2
    samples, sampler = generate(m, args.num_samples, args.seed, args.gmm_codes)
    npy = os.path.join(args.out, f"aejax_{args.model}.npy")
    np.save(npy, samples)
    schema = _schema()
    spec = args.config or PAIRS[args.model][0]
    note = "" if args.config else PAIRS[args.model][3]
    out = schema.result(
        library=f"aejax {aejax.__version__}",
        model=args.model,
        source=f"{spec} {' '.join(args.set)}".strip() if args.config else f"{spec} (PAIRS)",
        hyperparameters={"loss": config.loss, "model": config.model.to_dict()},
        epochs=config.num_epochs,
        batch_size=config.batch_size,
        learning_rate=config.optimizer.learning_rate,
        train_examples=m.dataset.num_train,
        seconds_per_epoch=statistics.median(seconds),
        steady_seconds_per_epoch=steady,
        epoch_seconds=seconds,
        timing="the loop's logged windows (steps / train/steps_per_s), evaluation taken out; "
        "epoch 1 includes compiling",
        recon_mse_per_pixel=float(sq.mean()),
        recon_sse_per_image=float(sq.sum(1).mean()),
        recon_code="encoder mean" if interface.has_posterior(m.model) else "code",
        test_images=len(test),
        samples=os.path.basename(npy),
        sampler=sampler,
        nll=nll(args) if args.nll else None,
        note="; ".join(n for n in (note, workdir and f"workdir {workdir}") if n),
        machine=schema.machine(os.cpu_count()) | {"jax": jax.__version__},
    )
    schema.write(out, os.path.join(args.out, f"aejax_{args.model}.json"))


if __name__ == "__main__":
    main()
