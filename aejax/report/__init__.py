"""What a trained autoencoder is for, measured and drawn: the applications report of a run.

`write_report(workdir)` loads a run (`aejax.evaluate.TrainedModel`), computes each section
below on its splits, and writes `report.md`, `report.json` and one PNG per figure into
`{workdir}/report/`. Every section is also a function of a `TrainedModel` (plus options)
that returns a `Section`, for notebooks.

Sections (those that do not apply to a run say why and are skipped):

- reconstruction: test MSE per pixel, squared error per image, BCE and PSNR, beside PCA with
  as many components as the code has, fitted on the same training data.
- latent_map: test codes in 2-D coloured by label (the codes themselves when 2-D, else PCA
  and t-SNE of them).
- probe: linear probes (multinomial logistic regression) on frozen codes, on PCA codes of the
  same size and on raw inputs, fitted on train and scored on test.
- anomaly: for runs trained on some classes (`config.data.train_classes`): AUROC and average
  precision of the model's scores and of PCA / IsolationForest; a threshold set on the
  validation split for yes/no decisions.
- denoising: PSNR of corrupted test images and of their reconstructions, per corruption and
  level, with a figure of clean, corrupted and denoised rows.
- generation: samples from the prior (VAE, AAE), or for a model without one (AE, WAE, RAE)
  from a Gaussian mixture fitted to its training codes; for a 2-D standard normal latent the
  grid of decoded prior quantiles; for VAEs the ELBO and the importance-weighted bound in
  nats.
- interpolation: decoded images along straight lines between the codes of test pairs, and
  along great circles for Gaussian priors.
- inpainting: masked entries filled by iterating reconstruct-and-replace, error on the masked
  entries beside mean imputation.
- compression: bits per example of the code (float32 and 8-bit; a model that declares a
  codebook, its indices: log2 K bits each, or entropy-coded), against the raw input and
  gzip, with the reconstruction error at each.
"""

import glob
import json
import os
import shutil
import time
from collections.abc import Callable

import jax

from aejax.errors import AejaxError
from aejax.evaluate import TrainedModel
from aejax.report.base import Options, Section
from aejax.report.encoding import anomaly, denoising, latent_map, probe, reconstruction
from aejax.report.generative import (
    compression,
    generation,
    inpaint,
    inpainting,
    interpolation,
    lerp,
    quantize,
    slerp,
)

__all__ = [
    "SECTIONS",
    "Options",
    "Section",
    "inpaint",
    "lerp",
    "quantize",
    "slerp",
    "write_report",
]

SECTIONS: dict[str, Callable[[TrainedModel, Options], Section]] = {
    "reconstruction": reconstruction,
    "latent_map": latent_map,
    "probe": probe,
    "anomaly": anomaly,
    "denoising": denoising,
    "generation": generation,
    "interpolation": interpolation,
    "inpainting": inpainting,
    "compression": compression,
}


def write_report(
    workdir: str,
    out_dir: str | None = None,
    sections: tuple[str, ...] | None = None,
    step: int | None = None,
    log: Callable[[str], None] | None = None,
    **options,
) -> dict:
    """Computes the report's sections for the run in `workdir` and writes it.

    Args:
      workdir: a training run's folder.
      out_dir: where report.md, report.json and the PNGs go (default: `{workdir}/report`).
        The report is written beside it first and then replaces it whole, so a reader (or
        a report killed half-way) never leaves a mix of two reports; a folder that holds
        other files is refused.
      sections: names from SECTIONS (default: all). When `out_dir` holds a report of the
        same checkpoint, only these sections are recomputed: the others' numbers, text and
        figures are kept, and report.md lists every section in the usual order.
      step: the checkpoint (default: the newest).
      log: called with a line as each section starts and ends (e.g. `print`), or None.
      **options: fields of `Options` (seed, iwae_k, ...).
    Returns:
      The JSON content: run information, each section's results, its Markdown and its time
      in seconds (every section in the report, kept ones included).
    """
    sections = check_request(sections, **options)
    trained = TrainedModel.load(workdir, step)
    if trained.dataset.train_x is None:
        raise AejaxError(
            f"{workdir} trained on a streamed train split (config.data.stream): the report's "
            "baselines fit on the training examples in memory; evaluate.py without the "
            "report (--sections=none) still gives the test metrics"
        )
    out_dir = os.path.normpath(out_dir or os.path.join(workdir, "report"))
    _check_out_dir(out_dir)
    kept = _updatable(out_dir, trained.step, sections, log)
    staging = f"{out_dir}.partial-{os.getpid()}"
    for old in glob.glob(glob.escape(out_dir) + ".partial-*"):  # left by a killed report
        shutil.rmtree(old, ignore_errors=True)
    if kept is not None:  # start from a copy of the old report, then replace its sections
        shutil.copytree(out_dir, staging)
    else:
        os.makedirs(staging)
    try:
        opts = Options(out_dir=staging, **options)
        out = _write(trained, workdir, staging, sections, opts, kept or {}, log)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_into_place(staging, out_dir)
    return out


def _updatable(out_dir: str, step: int, sections, log) -> dict | None:
    """The old report in `out_dir` whose other sections a partial report keeps (its JSON),
    or None when the whole report is written anew: all sections asked for, no report
    there, or one of another checkpoint or written without each section's Markdown."""
    if set(sections) == set(SECTIONS):
        return None
    try:
        with open(os.path.join(out_dir, "report.json")) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return None
    if old.get("run", {}).get("step") != step or "markdown" not in old:
        if log is not None:
            log(
                f"{out_dir} holds a report of another checkpoint (or an older format): "
                "writing a new report with only the sections asked for"
            )
        return None
    return old


def check_request(sections: tuple[str, ...] | None = None, **options) -> tuple[str, ...]:
    """Checks the sections' names and the options (AejaxError naming the bad one) before
    any work; returns the sections (default: all)."""
    sections = tuple(SECTIONS) if sections is None else tuple(sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise AejaxError(
            f"unknown report section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    Options(out_dir="", **options)
    return sections


def _check_out_dir(out_dir: str) -> None:
    """The report's folder must be new, empty or a report's: it is replaced whole."""
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise AejaxError(f"the report's folder {out_dir} exists and is not a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.isfile(os.path.join(out_dir, "report.json")):
            raise AejaxError(
                f"the report's folder {out_dir} holds other files; the report replaces its "
                "folder whole, so choose a new or empty one"
            )


def _swap_into_place(staging: str, out_dir: str) -> None:
    """Replaces `out_dir` with the finished `staging` folder: a reader sees the old report
    or the new one, never a mix of the two."""
    previous = f"{out_dir}.previous-{os.getpid()}"
    if os.path.isdir(out_dir):
        os.rename(out_dir, previous)
    os.rename(staging, out_dir)
    shutil.rmtree(previous, ignore_errors=True)


def _write(trained, workdir: str, out_dir: str, sections, opts: Options, old: dict, log):
    """Computes `sections` and writes report.json and report.md into `out_dir`; the other
    sections of `old` (a previous report of the same checkpoint) are kept."""
    config = trained.exp.config
    run = {
        "workdir": os.path.abspath(workdir),
        "step": trained.step,
        "dataset": trained.dataset.name,
        "model": config.model.name,
        "loss": config.loss,
        "corruption": config.corruption.name,
        "backend": jax.default_backend(),
    }
    out = {"run": run, "sections": {}, "seconds": {}, "markdown": {}, "figures": {}}
    for key in ("sections", "seconds", "markdown", "figures"):
        out[key].update({k: v for k, v in old.get(key, {}).items() if k not in sections})
    for i, name in enumerate(sections):
        if log is not None:
            log(f"report/{name}: computing ({i + 1} of {len(sections)})")
        for file in old.get("figures", {}).get(name, []):  # a figure it may no longer draw
            if os.path.exists(path := os.path.join(out_dir, file)):
                os.remove(path)
        t0 = time.perf_counter()
        section = SECTIONS[name](trained, opts)
        seconds = time.perf_counter() - t0
        out["sections"][name] = section.results
        out["seconds"][name] = seconds
        md = ["", f"## {section.title}", "", *section.lines]
        md += [f"\n![{caption}]({file})" for caption, file in section.figures]
        out["markdown"][name] = md + ["", f"_{seconds:.1f} s_"]
        out["figures"][name] = [file for _, file in section.figures]
        if log is not None:
            log(f"report/{name:21s} {seconds:.1f} s")
    md = [
        f"# Applications report: {os.path.basename(os.path.abspath(workdir))}",
        "",
        f"Model `{run['model']}`, loss `{run['loss']}`, corruption `{run['corruption']}`, "
        f"data `{run['dataset']}`, step {run['step']}. Backend: {run['backend']}.",
    ]
    for name in SECTIONS:  # the usual order, whichever were recomputed
        md += out["markdown"].get(name, [])
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return out
