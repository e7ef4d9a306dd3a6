"""The rows of docs/RESULTS.md: published numbers reproduced, each beside baselines that
the same run computes.

`run_row(name, workdir)` trains the row's runs (presets of aejax/configs/results.py and
aejax/configs/anomaly.py) under `workdir/name`, reusing finished ones, evaluates them on the test
split and saves `workdir/name/result.json`; `to_markdown` turns saved rows into the page.
Every choice is fixed in advance or made on a validation split carved from the training
data (or binarized MNIST's own); the test split is only ever scored. The rows'
computations are in `results_compute` (single runs) and here (the anomaly rows, which run
the protocols of `anomaly_protocols`); `experiments/results.py` is the script.
"""

import dataclasses
import functools
import json
import os
import re
import time

import anomaly_protocols
import anomaly_tables
from aejax.errors import AejaxError
from app_rows import APP_ROWS
from results_compute import (
    Adjust,
    Options,
    Row,
    adjusted_config,
    fashion,
    machine,
    probe,
    reconstruction,
    vae_likelihood,
)
from results_denoising import denoising

# --------------------------------------------------------------------------- anomaly


def _anomaly(protocol: str, workdir: str, adjust: Adjust, opts: Options) -> dict:
    spec = "anomaly.py:mnist" if protocol == "mnist_one_class" else "anomaly.py:tabular"
    config = adjusted_config(spec, adjust)
    if protocol == "mnist_one_class":
        res = anomaly_protocols.one_class_mnist(config, workdir, opts.classes, log=print)
    else:
        res = anomaly_protocols.adbench(config, workdir, opts.sets, log=print)
    with open(os.path.join(workdir, "anomaly.json"), "w") as f:
        json.dump(res, f, indent=2)
    mean = {anomaly_tables.method_label(k, res): v["auroc"] for k, v in res["mean"].items()}
    # Ours: the method with its settings chosen on validation: the L_p error's p (MNIST),
    # the code size and score (ADBench).
    chosen = [
        m for m in (anomaly_protocols.LP_NAME, anomaly_protocols.CHOSEN_NAME) if m in res["mean"]
    ]
    best = chosen[0] if chosen else anomaly_protocols.RECONSTRUCTION
    ae = mean.pop(anomaly_tables.method_label(best))
    header = ["class" if protocol == "mnist_one_class" else "data set"]
    header += [anomaly_tables.method_label(k, res) for k in res["mean"]]
    rows = [[r["name"], *(r["methods"][k]["auroc"] for k in res["mean"])] for r in res["rows"]]
    rows.append(["mean", *(res["mean"][k]["auroc"] for k in res["mean"])])
    return {
        "ours": ae,
        "baselines": mean,
        "runs": [
            {
                "preset": spec,
                "train_seconds": sum(
                    r["seconds"]["train"] + r["seconds"].get("choice", 0.0) for r in res["rows"]
                ),
                "steps": sum(r["step"] + r.get("choice", {}).get("steps", 0) for r in res["rows"]),
                "trained_here": not any(r["resumed"] for r in res["rows"]),
            }
        ],
        "table": {"header": header, "rows": rows},
        "notes": [res["description"]],
    }


def one_class(workdir: str, adjust: Adjust, opts: Options) -> dict:
    """Mean test AUROC over the ten MNIST digits (Ruff et al., 2018)."""
    return _anomaly("mnist_one_class", workdir, adjust, opts)


def tabular(workdir: str, adjust: Adjust, opts: Options) -> dict:
    """Mean test AUROC over the ADBench classical sets; the target is IsolationForest's."""
    res = _anomaly("adbench", workdir, adjust, opts)
    res["target_value"] = res["baselines"]["IsolationForest"]
    return res


# --------------------------------------------------------------------------- the table

ROWS: dict[str, Row] = {
    "hinton": Row(
        "Deep autoencoder, MNIST",
        "Hinton & Salakhutdinov, Science 2006",
        "test squared error per image (sum over 784 pixels)",
        "3.00 (autoencoder); 13.87 (PCA-30)",
        "≤ 3.00",
        False,
        3.00,
        functools.partial(
            reconstruction,
            presets=(
                "results.py:hinton",
                "results.py:hinton_noise",
                "results.py:hinton_mse",
                "results.py:hinton_noise_long",
                "results.py:hinton_noise05_long",
                "results.py:hinton_noise20_long",
                "results.py:hinton_noise_longer",
                "results.py:hinton_noise_wd05",
                "results.py:hinton_noise_wd10",
                "results.py:hinton_noise_wd05_longer",
            ),
        ),
    ),
    "vae": Row(
        "VAE, binarized MNIST",
        "Burda et al. 2015 (one stochastic layer: VAE 86.76, IWAE k=50 84.78); pythae (89.78, "
        "k=200); Flax example "
        "(negative ELBO about 104 after 10 epochs)",
        "test negative log-likelihood, IWAE bound (nats)",
        "86.76 / 89.78",
        "≤ 88",
        False,
        88.0,
        vae_likelihood,
    ),
    "one_class": Row(
        "One-class anomaly detection, MNIST",
        "Ruff et al., ICML 2018 (protocol); PCA-32 about 0.955",
        "mean test AUROC over the 10 digits",
        "about 0.955 (PCA-32)",
        "≥ 0.97",
        True,
        0.97,
        one_class,
    ),
    "probe": Row(
        "Linear probe on frozen codes, MNIST",
        "Makhzani & Frey 2013 (k-sparse AE, 1000 units, logistic regression on its codes: 98.65%)",
        "test accuracy of logistic regression",
        "0.9865",
        "≥ 0.98",
        True,
        0.98,
        probe,
    ),
    "denoising": Row(
        "Denoising, MNIST, Gaussian σ = 0.5",
        "scikit-image non-local means and total variation, tuned on validation",
        "test PSNR (dB)",
        "the best classical denoiser",
        "≥ best classical + 3 dB",
        True,
        None,
        denoising,
    ),
    "fashion": Row(
        "Fashion-MNIST: reconstruction, PCA, linear probe",
        "Xiao et al. 2017 (logistic regression on pixels: 84.2%)",
        "linear-probe test accuracy on codes",
        "0.842 (pixels)",
        "none set",
        True,
        None,
        fashion,
    ),
    "adbench": Row(
        "Tabular anomaly detection, ADBench classical (8 sets)",
        "Han et al., NeurIPS 2022 (ADBench)",
        "mean test AUROC over the 8 sets",
        "IsolationForest, run by the same script",
        "≥ IsolationForest",
        True,
        None,
        tabular,
    ),
    **APP_ROWS,
}


_DEFAULT_OPTIONS = Options()


def run_row(
    name: str, workdir: str, adjust: Adjust | None = None, opts: Options = _DEFAULT_OPTIONS
) -> dict:
    """Computes row `name` under workdir/name and saves workdir/name/result.json.

    Args:
      name: a key of ROWS.
      workdir: the folder of all rows' runs.
      adjust: applied to every config the row loads (data_dir, or tests' tiny budgets).
      opts: evaluation settings.
    Returns:
      The saved dict: the row's fields, "ours", "baselines", "met" (None without a
      target), "table", "notes", "runs" (preset, train seconds, steps, whether this call
      trained it), "seconds" (this call's wall time), "evaluate_seconds" (less the
      training), "machine" and the load average before and after.
    """
    if name not in ROWS:
        raise AejaxError(f"unknown results row {name!r}; valid: {', '.join(ROWS)}")
    row = ROWS[name]
    out_dir = os.path.join(workdir, name)
    os.makedirs(out_dir, exist_ok=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = row.compute(out_dir, adjust or (lambda c: None), opts)
    seconds = time.perf_counter() - t0
    target = res.pop("target_value", row.target_value)
    ours = res["ours"]
    if target is None:
        met = None
    else:
        met = bool(ours >= target if row.higher_is_better else ours <= target)
    result = {
        "row": name,
        **_describe(row),
        **res,
        "target_value": target,
        "met": met,
        "notes": res.get("notes", []),
        "seconds": seconds,
        # This call's time less the training it did: the evaluation alone.
        "evaluate_seconds": seconds
        - sum(r["train_seconds"] or 0 for r in res["runs"] if r.get("trained_here")),
        "machine": machine(),
        "load_average": [load, os.getloadavg()[0]],
    }
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def load_results(workdir: str) -> list[dict]:
    """The saved result.json of every row under workdir, in ROWS order."""
    out = []
    for name in ROWS:
        path = os.path.join(workdir, name, "result.json")
        if os.path.isfile(path):
            with open(path) as f:
                out.append(json.load(f))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def _minutes(s: float | None) -> str:
    return "not timed" if s is None else f"{s / 60:.1f} min"


def _describe(row: Row) -> dict:
    return {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "compute"}


def kept_rows(page: str) -> dict[str, tuple[str, str]]:
    """The rows of an existing results page, to keep those with no saved result.

    Args:
      page: a page `to_markdown` wrote (with any header and footer).
    Returns:
      row name -> (its line of the summary table, its section: from its anchor to the
      next row's anchor or the next level-2 heading that is not its own).
    """
    lines = page.splitlines()
    out = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r'<a id="([^"]+)"></a>', line)
        if not m:
            continue
        name = m.group(1)
        summary = next((x for x in lines if x.startswith("| [") and f"](#{name})" in x), "")
        end = i + 1
        while end < len(lines) and not lines[end].startswith('<a id="'):
            if lines[end].startswith("## ") and end > i + 1:
                break
            end += 1
        out[name] = (summary, "\n".join(lines[i:end]).rstrip("\n"))
    return out


def to_markdown(
    results: list[dict], commands: dict[str, str], kept: dict[str, tuple[str, str]] | None = None
) -> str:
    """The results page: a summary table (ours beside the published figure and the target,
    met or not, wall time, machine), then each row's details.

    Args:
      results: `run_row` dicts.
      commands: row name -> the command that reproduces it.
      kept: rows of an earlier page (`kept_rows`), written as they were where `results`
        has no row of that name; in ROWS order with the others.
    """
    met_text = {True: "met", False: "**missed**", None: "–"}
    # A target the row computes (a baseline's figure) is printed beside its text.
    computed = lambda r: r["target_value"] is not None and ROWS[r["row"]].target_value is None
    # The rows' descriptions come from ROWS (the code), their numbers from the results.
    results = [
        {**r, **_describe(ROWS[r["row"]]), "target_value": r["target_value"]} for r in results
    ]
    summary, sections = {}, {}
    for r in results:
        train = sum(x["train_seconds"] or 0 for x in r["runs"])
        summary[r["row"]] = (
            f"| [{r['title']}](#{r['row']}) | {r['metric']} | {r['published']} | "
            f"**{_fmt(r['ours'])}** | {r['target']}"
            + (f": {_fmt(r['target_value'])}" if computed(r) else "")
            + f" | {met_text[r['met']]} | {_minutes(train)} + "
            f"{_minutes(r['evaluate_seconds'])} |"
        )
    for r in results:
        lines = [f'<a id="{r["row"]}"></a>', f"## {r['title']}", ""]
        lines += [f"- Reference: {r['reference']}."]
        lines += [f"- Command: `{commands.get(r['row'], '')}`"]
        for run in r["runs"]:
            trained = (
                "its training not timed"
                if run["train_seconds"] is None
                else f"trained in {_minutes(run['train_seconds'])}"
            )
            lines.append(
                f"- Run `{run['preset'].replace('.py:', ':')}`: {run['steps']} steps, {trained}."
            )
        lines.append(
            f"- Evaluated in {_minutes(r['evaluate_seconds'])} on {r['machine']} (load average "
            f"{r['load_average'][0]:.1f} before, {r['load_average'][1]:.1f} after)."
        )
        if r["met"] is None:
            lines.append("- No target set.")
        else:
            target = f"{r['target']}" + (f" ({_fmt(r['target_value'])})" if computed(r) else "")
            lines.append(f"- Target {target}: {met_text[r['met']]}.")
        t = r["table"]
        lines += ["", "| " + " | ".join(t["header"]) + " |"]
        lines.append("|" + " --- |" * len(t["header"]))
        lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in t["rows"]]
        lines += [""] + [f"{n}" for n in r["notes"]]
        sections[r["row"]] = "\n".join(lines).rstrip("\n")
    for name, (line, section) in (kept or {}).items():
        if name in ROWS and name not in summary and line:
            summary[name], sections[name] = line, section
    order = [name for name in ROWS if name in summary]
    head = [
        "| result | metric | published | ours | target | met | train + evaluate |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    body = "\n".join(head + [summary[n] for n in order])
    return body + "".join(f"\n\n{sections[n]}" for n in order) + "\n"
