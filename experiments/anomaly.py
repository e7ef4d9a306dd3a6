"""Anomaly detection benchmarks: autoencoder scores against PCA and IsolationForest.

    python experiments/anomaly.py --protocol mnist_one_class \
        --config anomaly:mnist --workdir runs/anomaly_mnist [--classes 0,1]
    python experiments/anomaly.py --protocol adbench \
        --config anomaly:tabular --workdir runs/anomaly_adbench [--sets 6_cardio]

Trains one run per class (`W/class_<c>`) or data set (`W/<stem>`), reusing finished runs
there, then writes W/anomaly.json (every number), W/anomaly.md (tables) and
W/anomaly_auroc.png (AUROC per class or set and method). The protocols are described in
experiments/anomaly_protocols.py.
"""

import json
import os
import time

from absl import flags

import anomaly_protocols as protocols
import anomaly_tables
from aejax import cli, plots
from aejax.errors import AejaxError

cli.define_config("anomaly")
flags.DEFINE_enum(
    "protocol", None, ["mnist_one_class", "adbench"], "Which benchmark.", required=True
)
flags.DEFINE_string("workdir", None, "Where the runs and results go.", required=True)
flags.DEFINE_string("classes", "0,1,2,3,4,5,6,7,8,9", "mnist_one_class: the normal classes.")
flags.DEFINE_string("sets", "", "adbench: file stems, comma-separated (default: all).")
flags.DEFINE_float("fpr", 0.05, "Validation false-positive rate that sets the thresholds.")


def _split(text: str, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise AejaxError(f"--{what} is empty")
    return items


def main(argv):
    del argv
    f = flags.FLAGS
    if not 0.0 < f.fpr < 1.0:
        raise AejaxError(f"--fpr={f.fpr} must be in (0, 1)")
    t0 = time.perf_counter()
    if f.protocol == "mnist_one_class":
        try:
            classes = [int(c) for c in _split(f.classes, "classes")]
        except ValueError:
            raise AejaxError(f"--classes={f.classes!r} must be integers, e.g. 0,1") from None
        results = protocols.one_class_mnist(f.config, f.workdir, classes, f.fpr, log=print)
        xlabel = "normal class"
    else:
        sets = _split(f.sets, "sets") if f.sets else None
        results = protocols.adbench(f.config, f.workdir, sets, f.fpr, log=print)
        xlabel = "data set"
    os.makedirs(f.workdir, exist_ok=True)
    with open(os.path.join(f.workdir, "anomaly.json"), "w") as out:
        json.dump(results, out, indent=2)
    with open(os.path.join(f.workdir, "anomaly.md"), "w") as out:
        out.write(anomaly_tables.to_markdown(results))
    methods, rows = list(results["mean"]), results["rows"]
    lowest = min(r["methods"][m]["auroc"] for r in rows for m in methods)
    plots.save_grouped_bars(
        os.path.join(f.workdir, "anomaly_auroc.png"),
        [r["name"] for r in rows] + ["mean"],
        {
            anomaly_tables.method_label(m, results): [r["methods"][m]["auroc"] for r in rows]
            + [results["mean"][m]["auroc"]]
            for m in methods
        },
        f"Anomaly detection ({f.protocol}): test AUROC by method",
        xlabel,
        "test AUROC",
        ylim=(0.5 if lowest >= 0.5 else 0.0, 1.0),  # 0.5 is chance
    )
    means = " ".join(f"{m}={v['auroc']:.4f}" for m, v in results["mean"].items())
    print(f"mean AUROC {means}")
    print(f"total {time.perf_counter() - t0:.1f} s; results in {f.workdir}/anomaly.{{json,md}}")


if __name__ == "__main__":
    cli.run(main)
