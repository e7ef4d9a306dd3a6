"""Trains bundled presets and writes the variants table: each preset's command, the numbers
its config's docstring expects, the numbers measured now and the wall time.

    python experiments/variants_table.py --data digits --write docs/VARIANTS.md
    python experiments/variants_table.py --only ae:mnist,vae:mnist --epochs 3

`--data digits` runs the presets on scikit-learn's embedded digits (no files needed);
`--data mnist` those that read MNIST's IDX files from $AEJAX_DATA_DIR/mnist. Each run is
an ordinary workdir under --root (a finished one is reused, not retrained, and its time is
then not measured again). The time is the run's wall time: start-up and compilation,
training and the final evaluation. A docstring's expected number is the first
`test/<metric> <number>` after "Expected:" in its preset's paragraph.
"""

import argparse
import os
import re
import time

from absl import logging

from aejax import config as config_lib
from aejax import configs, train

# Protocols over many runs, not one preset's run: experiments/anomaly.py, results.py,
# app_augment.py.
SKIP = ("anomaly", "results", "augment")
_EXPECTED = re.compile(r"(test/\w+)(?: \([^)]*\))?:? (?:about |~ ?)?(-?[0-9]+\.?[0-9]*(?:e-?\d+)?)")


def expected(name: str, preset: str) -> dict[str, float]:
    """The number the docstring of bundled config `name` gives for `preset`, {metric: value}:
    from its "Expected (`preset`, ...):" line, else from the first "Expected:" of the
    preset's paragraph ("- `preset`..."); {} without one."""
    doc = configs.docstring(name)
    tagged = re.search(
        rf"Expected \(`{re.escape(preset)}`[^)]*\):(.*?)(?:\n\n|Expected|$)", doc, re.S
    )
    if tagged:  # "Expected (`sigmoid_mnist`, 3 epochs): ..." beside the other preset's line
        text = " ".join(tagged.group(1).split())
        return {m: float(v) for m, v in _EXPECTED.findall(text)[:1]}
    paragraphs = re.split(r"\n(?=- `)", doc)
    for p in paragraphs:
        if re.match(rf"- `{re.escape(preset)}`", p) and "Expected:" in p:
            text = " ".join(p.split("Expected:", 1)[1].split())
            return {m: float(v) for m, v in _EXPECTED.findall(text)[:1]}
    return {}


def presets(data: str) -> list[tuple[str, str]]:
    """Every bundled (config, preset) whose data source is `data` ("digits" or "mnist")."""
    out = []
    for name in configs.names():
        if name in SKIP:
            continue
        for preset in configs.presets(name):
            config = config_lib.load_config(f"{name}:{preset}")
            source = "digits" if config.data.source == "digits" else config.data.name
            if source == data:
                out.append((name, preset))
    return out


def run(name: str, preset: str, root: str, epochs: int | None) -> tuple[dict, float]:
    """Trains (or reuses) the preset's run; returns its final metrics and wall seconds."""
    config = config_lib.load_config(f"{name}:{preset}")
    config.progress_bar = False
    if epochs:
        config.num_epochs, config.num_steps = epochs, 0
    workdir = os.path.join(root, f"{name}_{preset}" + (f"_{epochs}ep" if epochs else ""))
    t0 = time.perf_counter()
    _, metrics = train.train_and_evaluate(config, workdir)
    return metrics, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--only", default="", help="comma-separated config:preset to run")
    parser.add_argument("--epochs", type=int, default=0, help="override (0: the preset's)")
    parser.add_argument("--root", default="runs/variants")
    parser.add_argument("--write", default="", help="also write the table to this file")
    args = parser.parse_args()
    logging.set_verbosity(logging.ERROR)
    todo = [tuple(s.split(":")) for s in args.only.split(",") if s] or presets(args.data)
    rows = [
        "| command | expected (docstring) | measured | wall time |",
        "| --- | --- | --- | --- |",
    ]
    print("\n".join(rows), flush=True)
    for name, preset in todo:
        metrics, seconds = run(name, preset, args.root, args.epochs or None)
        want = expected(name, preset)
        shown = want or {"test/loss": None}
        command = f"`aejax train {name}:{preset}`" + (
            f" `--config.num_epochs={args.epochs}`" if args.epochs else ""
        )
        row = (
            f"| {command} | "
            + ", ".join(f"{k} {v:g}" for k, v in want.items())
            + " | "
            + ", ".join(f"{k} {metrics[k]:.4g}" for k in shown)
            + f" | {seconds:.0f} s |"
        )
        rows.append(row)
        print(row, flush=True)
    if args.write:
        with open(args.write, "w") as f:
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
