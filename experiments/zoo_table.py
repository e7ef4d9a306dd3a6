"""The zoo's rows: aejax beside pythae 0.1.2 on MNIST, one markdown row per model, from the
JSON pairs that experiments/zoo.py (aejax) and benchmarks/zoo_peer.py (pythae) write.

    python experiments/zoo_table.py --dir runs/zoo --classifier_dir runs/mnist_classifier
    python experiments/zoo_table.py --dir runs/zoo --no_score --write runs/zoo/rows.md

Each cell is "aejax / pythae": the test reconstruction MSE (per pixel), FD, precision and
recall of the 10,000 samples, the NLL on binarized MNIST (nats; k and images in a note),
seconds per training epoch (`seconds`: steady, so aejax's compiling is left out; the first
epoch's time is in a note) and the speed ratio, pythae's seconds per epoch over aejax's
(above 1: aejax is faster).

FD, precision and recall come from a scorer run once over every sample file: by default
experiments/zoo_score.py (`--scorer` replaces the command; `{classifier_dir}`, `{samples}`
(comma-separated .npy paths) and `{json}` are filled in). It writes a JSON with "FD",
"precision" and "recall" for each file, keyed by the file's path or name (`per_file` reads
a few layouts). `--no_score` leaves those cells empty.
"""

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile

LIBRARIES = ("aejax", "pythae")
METRICS = ("FD", "precision", "recall")
DEFAULT_SCORER = (
    f"{shlex.quote(sys.executable)} experiments/zoo_score.py --classifier_dir={{classifier_dir}} "
    "--samples={samples} --json={json}"
)
HEADER = (
    "| model | recon MSE / pixel | FD | precision | recall | NLL (nats) | s / epoch | speed ratio |"
)


def load_runs(folder: str) -> dict[str, dict[str, dict]]:
    """{model: {library: its JSON}} from `<library>_<model>.json` files in `folder`."""
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        library, _, model = os.path.basename(path)[: -len(".json")].partition("_")
        if library in LIBRARIES and model:
            with open(path) as f:
                runs.setdefault(model, {})[library] = json.load(f) | {"_dir": folder}
    return runs


def samples_path(run: dict | None) -> str | None:
    """The run's samples file, beside its JSON."""
    if not run or not run.get("samples"):
        return None
    return os.path.join(run["_dir"], run["samples"])


def per_file(scores, files: list[str]) -> dict[str, dict[str, float]]:
    """{file: {FD, precision, recall}} from a scorer's JSON: a dict keyed by each file's
    path or name ({"a.npy": {...}}), or a list of dicts naming their file ("samples",
    "file" or "path"), either possibly under "rows" or "results" (zoo_score.py writes
    {"rows": [{"samples": path, "fd": ..., "precision": ..., "recall": ...}, ...]}).
    Metric names are matched ignoring case."""
    for key in ("rows", "results"):  # experiments/zoo_score.py: {"rows": [{"samples": ...}]}
        if isinstance(scores, dict) and isinstance(scores.get(key), dict | list):
            scores = scores[key]
    if isinstance(scores, list):
        named = {}
        for entry in scores:
            name = next((entry[k] for k in ("samples", "file", "path") if k in entry), None)
            if name is not None:
                named[str(name)] = entry
        scores = named
    out = {}
    for path in files:
        candidates = (path, os.path.abspath(path), os.path.basename(path))
        entry = next((scores[c] for c in candidates if c in scores), None)
        if isinstance(entry, dict):
            lower = {k.lower(): v for k, v in entry.items()}
            out[path] = {m: lower.get(m.lower()) for m in METRICS}
    return out


def score(files: list[str], classifier_dir: str, command: str) -> dict[str, dict[str, float]]:
    """Runs the scorer once over `files`; {file: {FD, precision, recall}}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "scores.json")
        cmd = command.format(classifier_dir=classifier_dir, samples=",".join(files), json=out)
        subprocess.run(shlex.split(cmd), check=True)
        with open(out) as f:
            return per_file(json.load(f), files)


def number(value, digits: int = 3) -> str:
    """A value for a cell: "—" when missing, else `digits` significant figures."""
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


def pair(a, b, digits: int = 3) -> str:
    """The "aejax / pythae" cell."""
    return f"{number(a, digits)} / {number(b, digits)}"


def seconds(run: dict | None):
    """Seconds per epoch: the steady one (for aejax, without the first window's compiling)
    where the run gives it, else the median over epochs."""
    run = run or {}
    return run.get("steady_seconds_per_epoch") or run.get("seconds_per_epoch")


def nll(run: dict | None):
    return (run or {}).get("nll") and run["nll"]["value"]


def row(model: str, runs: dict[str, dict], scores: dict[str, dict]) -> str:
    """One markdown row for `model` from its runs ({library: JSON}) and the samples' scores."""
    a, p = runs.get("aejax"), runs.get("pythae")
    get = lambda run, key: (run or {}).get(key)
    metric = lambda run, m: scores.get(samples_path(run), {}).get(m)
    ta, tp = seconds(a), seconds(p)
    cells = [
        model,
        pair(get(a, "recon_mse_per_pixel"), get(p, "recon_mse_per_pixel")),
        *(pair(metric(a, m), metric(p, m)) for m in METRICS),
        pair(nll(a), nll(p), 4),
        pair(ta, tp),
        number(tp / ta) if ta and tp else "—",
    ]
    return "| " + " | ".join(cells) + " |"


def notes(runs: dict[str, dict[str, dict]]) -> list[str]:
    """What a reader needs beside the rows: epochs, NLL settings, each run's own note."""
    lines = []
    for model, by_lib in sorted(runs.items()):
        for library in LIBRARIES:
            run = by_lib.get(library)
            if not run:
                continue
            parts = [f"{run['epochs']} epoch(s), {run['train_examples']} training images"]
            if run.get("epoch_seconds"):
                parts.append(f"first epoch {run['epoch_seconds'][0]:.3g} s")
            if run.get("test_images") not in (None, 10_000):
                parts.append(f"reconstructions of the first {run['test_images']} test images")
            if run.get("nll"):
                n = run["nll"]
                parts.append(f"NLL k = {n['k']} on {n['test_images']} test images")
            if run.get("note"):
                parts.append(run["note"])
            lines.append(f"- {model}, {library}: {'; '.join(parts)}.")
    return lines


def table(runs: dict[str, dict[str, dict]], scores: dict[str, dict]) -> str:
    """The header, a row per model and the notes."""
    lines = [HEADER, "|" + " --- |" * 8]
    lines += [row(model, runs[model], scores) for model in sorted(runs)]
    return "\n".join(lines + [""] + notes(runs)) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dir", default="runs/zoo", help="where the JSON pairs are")
    p.add_argument("--classifier_dir", default="", help="the scorer's MNIST classifier")
    p.add_argument("--scorer", default=DEFAULT_SCORER, help="the scorer's command")
    p.add_argument("--no_score", action="store_true", help="no FD, precision and recall")
    p.add_argument("--write", default="", help="write the rows here (default: print)")
    args = p.parse_args(argv)
    runs = load_runs(args.dir)
    if not runs:
        p.error(f"no aejax_<model>.json or pythae_<model>.json in {args.dir}")
    files = [f for r in runs.values() for run in r.values() if (f := samples_path(run))]
    scores = {}
    if not args.no_score:
        if not args.classifier_dir:
            p.error("--classifier_dir is needed for FD, precision and recall (or --no_score)")
        scores = score(files, args.classifier_dir, args.scorer)
    text = table(runs, scores)
    if args.write:
        with open(args.write, "w") as f:
            f.write(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
