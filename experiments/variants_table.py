"""Trains every variant's MNIST preset for a few epochs and prints one Markdown table row per
variant: test metrics and the wall time per epoch on this machine.

    python experiments/variants_table.py --epochs 3 --root runs/variants > variants.md

Needs MNIST's IDX files in $AEJAX_DATA_DIR/mnist. Each run is an ordinary workdir under
--root (a finished one is reused, not retrained); the time per epoch is the training wall
time of the run divided by its epochs, start-up and compilation included.
"""

import argparse
import os
import time

from absl import logging

from aejax import config as config_lib
from aejax import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (config file, preset, what it is)
VARIANTS = [
    ("mlp_ae.py", "shallow_mnist", "undercomplete 784-32"),
    ("ae.py", "mnist", "deep 784-512-256-128-32"),
    ("mlp_ae.py", "hinton_mnist", "deep 784-1000-500-250-30"),
    ("mlp_ae.py", "overcomplete_mnist", "overcomplete 784-1024 + L1"),
    ("sparse_ae.py", "kl_mnist", "sparse, KL to rho"),
    ("sparse_ae.py", "topk_mnist", "sparse, top-k"),
    ("dae.py", "mnist", "denoising"),
    ("cae.py", "sigmoid_mnist", "contractive, 1 sigmoid layer"),
    ("cae.py", "deep_mnist", "contractive, 784-256-32"),
    ("vae.py", "mnist", "VAE"),
    ("vae.py", "beta", "beta-VAE (beta=4)"),
    ("conv_ae.py", "mnist", "conv AE"),
    ("conv_vae.py", "mnist", "conv VAE"),
    ("aae.py", "mnist", "adversarial AE"),
]


def load_config(name: str, preset: str):
    return config_lib.load_config(f"{name}:{preset}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", default="runs/variants")
    parser.add_argument("--only", default="", help="comma-separated config:preset to run")
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    only = set(filter(None, args.only.split(",")))
    print("| config | variant | loss recipe | test/loss | sq. error per image | s per epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for file, preset, what in VARIANTS:
        name = f"{file}:{preset}"
        if only and name not in only:
            continue
        config = load_config(file, preset)
        config.num_epochs = args.epochs
        config.progress_bar = False
        workdir = os.path.join(args.root, f"{file[:-3]}_{preset}")
        t0 = time.perf_counter()
        _, m = train.train_and_evaluate(config, workdir)
        per_epoch = (time.perf_counter() - t0) / args.epochs
        recipe = " + ".join([config.loss, *(p.split("@")[0].strip() for p in config.extra_phases)])
        print(
            f"| `{name}` | {what} | `{recipe}` | {m['test/loss']:.4g} | "
            f"{m['test/sq_err_per_image']:.3f} | {per_epoch:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
