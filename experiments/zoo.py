"""aejax beside pythae 0.1.2 on MNIST: trains one aejax config through the library and
writes the zoo's JSON and 10,000 samples (benchmarks/zoo_peer.py is pythae's side, in a
PyTorch venv of its own; experiments/zoo_table.py turns the pairs into the table's rows).

    python experiments/zoo.py --model=vae --epochs=1 --out=runs/zoo
    python experiments/zoo.py --model=vae --epochs=1 --out=runs/zoo --nll
    python experiments/zoo.py --model=my_vae --config=vae:mnist \
        --set="loss=0.5*mse + kl_normal" --set=batch_size=100 --epochs=1 --out=runs/zoo

`--model` names a row: a pythae model of `PAIRS`, which gives the aejax config:preset and the
overrides that make it pythae's setting. Every pair gets pythae's default MLP and trainer
(`aejax.configs.wae.pythae_mnist`: 784-512-16 and its mirror with a sigmoid output, Adam at a
constant 1e-3, batch 100, 600 steps an epoch). `--config` runs any config:preset instead,
with `--set key=value` overrides (a Python literal, else a string), under --model's name.

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


def _capacity(steps_per_epoch: int) -> dict:
    """pythae's DisentangledBetaVAE capacity (C 30, warmup_epoch 25) as `kl_capacity_example`
    options: C = 30·min(1, epoch / 26), raised at each epoch's first step."""
    return {
        "capacity_max": 30.0,
        "anneal_steps": 26 * steps_per_epoch,
        "stair_steps": steps_per_epoch,
    }


# pythae model: (aejax config:preset, overrides beyond pythae's MLP and trainer, the recipe of
# the binarized run or None (no likelihood), a note). pythae's reconstruction term "mse" is
# ½‖x − x̂‖² in its VAEs (a unit-variance Gaussian up to a constant), ‖x − x̂‖² in its AEs;
# its "bce" is aejax's bce. The binarized recipe is a recipe, or a dict of overrides.
_REPRO = "pythae's reproducibility run (no MNIST config file)"
_HAMILTONIAN_BCE = {"loss": "bce + kl_sample", "model.likelihood": "bce"}

PAIRS = {
    "ae": ("ae:mnist", {"loss": "mse"}, None, ""),
    "vae": ("vae:mnist", {"loss": "0.5*mse + kl_normal"}, "bce + kl_normal", ""),
    "beta_vae": ("vae:mnist", {"loss": "0.5*mse + 2*kl_normal"}, "bce + 2*kl_normal", ""),
    # The importance-weighted bounds are Bernoulli in aejax: pythae's side trains "bce" too.
    "iwae": ("vae:iwae", {}, "iwae_bce", "k = 5, Bernoulli on both sides (pythae's file: mse)"),
    "miwae": ("miwae:mnist", {}, "miwae_bce", _REPRO + ": M = K = 8, bce"),
    "ciwae": ("ciwae:mnist", {}, "ciwae_bce", _REPRO + ": K = 64, β = 0.5, bce"),
    "piwae": ("piwae:mnist", {}, "iwae_bce", _REPRO + ": M = K = 8, bce; two optimizers"),
    "wae": ("wae:mnist", {}, None, ""),
    "info_vae": ("info_vae:mnist", {}, "bce + 1*kl_normal + 999*mmd_imq", ""),
    "rae_l2": ("rae:l2_mnist", {}, None, ""),
    "rae_gp": ("rae:gp_mnist", {}, None, ""),
    # pythae's VQ-VAE reshapes the MLP's 16-d code to 16 positions of one channel: each
    # coordinate is quantized alone, to one of 256 scalars (its embedding_dim is 1).
    "vqvae": (
        "vq_vae:mnist_ema",
        {"model.num_embeddings": 256, "model.code_groups": 16},
        None,
        "16 code vectors of 1 dimension, K = 256 each (pythae's embedding_dim 1)",
    ),
    "vamp": ("vamp:mnist", {}, "bce + kl_sample", "50 pseudo-inputs, hardtanh"),
    "vae_lin_nf": ("vae_nf:mnist", {}, "bce + kl_sample", "5 planar flows"),
    "vae_iaf": (
        "vae_iaf:mnist",
        {},
        "bce + kl_sample",
        "2 MADE blocks of 32-32; aejax's IAF step is gated, pythae's z·exp(s) + m",
    ),
    "msssim_vae": ("msssim_vae:mnist", {}, None, ""),
    "svae": ("svae:mnist", {}, "bce + kl_vmf", ""),
    # pythae ships no MNIST PoincareVAE config: its class defaults on the default MLP.
    "pvae": (
        "pvae:mnist",
        {
            "model.curvature": 1.0,
            "model.pvae_isotropic": False,
            "model.pvae_decoder": "mlp",
            "loss": "gaussian_nll + kl_sample",
        },
        "bce + kl_sample",
        "pythae's class defaults: curvature 1, wrapped normals, diagonal σ, MLP decoder",
    ),
    # The Hamiltonian flows' likelihood is a model field too (their leapfrog steps use it).
    "hvae": ("hvae:mnist", {}, _HAMILTONIAN_BCE, ""),
    "rhvae": ("rhvae:mnist", {}, _HAMILTONIAN_BCE, ""),
    # The disentangling VAEs on pythae's MNIST files. pythae's β-TC-VAE estimates log q(z) by
    # its minibatch-stratified matrix, which as released (the stride of Chen et al.'s code)
    # weights the batch's first example 1/N (in all rows but one) and the others 1/M or
    # about: minibatch-weighted sampling, aejax's estimator, up to a constant (docs/ZOO.md).
    "beta_tc_vae": (
        "vae:mnist",
        {"loss": "0.5*mse + tc_mutual_information + 2*tc_total_correlation + tc_dimwise_kl"},
        "bce + tc_mutual_information + 2*tc_total_correlation + tc_dimwise_kl",
        "α = 1, β = 2, γ = 1; minibatch-weighted sampling (pythae's use_mss matrix, see "
        "docs/ZOO.md)",
    ),
    # C = 30·min(1, epoch / 26), raised once an epoch (600 steps; 500 on binarized MNIST).
    "disentangled_beta_vae": (
        "vae:mnist",
        {
            "loss": "0.5*mse + 5*kl_capacity_example",
            "loss_options": {"kl_capacity_example": _capacity(600)},
        },
        {
            "loss": "bce + 5*kl_capacity_example",
            "loss_options": {"kl_capacity_example": _capacity(500)},
        },
        "β = 5, C = 30 over 25 warm-up epochs, each example's own |KL − C|",
    ),
    # pythae's FactorVAE halves each batch: 50 images for the VAE, the other 50's codes
    # shuffled for the discriminator (16-1000x5-2, leaky relu 0.2); aejax's shuffles the
    # batch's own codes (disentanglement_lib's choice), the discriminator 16-1000x5-1.
    "factor_vae": (
        "disentangle:factor_vae",
        {"model.discriminator_widths": (1000,) * 5, "loss": "0.5*mse + kl_normal + 5*factor_tc"},
        "bce + kl_normal + 5*factor_tc",
        "γ = 5; the VAE's update on the whole batch of 100 (pythae's: 50), the batch's own "
        "codes shuffled",
    ),
    # pythae's Adversarial_AE samples its Gaussian posterior and updates the autoencoder on
    # ½·mse + 0.9·(its BCE on D(z)) and the discriminator from one forward pass; aejax makes
    # the discriminator's update after the autoencoder's, from a second forward pass.
    "aae": (
        "aae:mnist_gaussian",
        {},
        None,
        "Gaussian posterior, discriminator 16-256-1 relu; the discriminator's update follows "
        "the autoencoder's (pythae's: both from one forward pass)",
    ),
    # pythae's default MLP discriminator (784-256-1) on both sides, its hidden layer the
    # features (the file's reconstruction_layer 3 needs pythae's convolutional one).
    "vaegan": (
        "vae_gan:mnist_mlp",
        {},
        None,
        "MLP discriminator 784-256-1, features from its hidden layer (reconstruction_layer 1)",
    ),
}


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
