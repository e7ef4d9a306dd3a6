"""The anomaly protocols' results as tables: method labels and Markdown."""

from aejax.anomaly import NEGATIVE_ELBO, PCA_NAME, RECONSTRUCTION
from anomaly_protocols import CHOSEN_NAME, LP_NAME


def method_label(name: str, results: dict | None = None) -> str:
    """A method's name for tables and legends: "AE reconstruction error", "AE negative
    ELBO", "PCA-16" (with the rows' number of components when `results` share one), ..."""
    if name in (RECONSTRUCTION, NEGATIVE_ELBO, LP_NAME, CHOSEN_NAME):
        return f"AE {name}"
    if name == PCA_NAME and results is not None:
        ks = {r["pca_components"] for r in results["rows"]}
        return f"PCA-{ks.pop()}" if len(ks) == 1 else "PCA (k = code size)"
    return name


def to_markdown(results: dict) -> str:
    """The results of a protocol as Markdown: the protocol line, a table of AUROC and AP per
    row and method with the means, and a table of the threshold decisions."""
    rows = results["rows"]
    methods = list(results["mean"])
    label = {m: method_label(m, results) for m in methods}
    fmt = lambda v: f"{v:.4f}"
    head = "| " + " | ".join(
        ["class" if results["protocol"] == "one_class_mnist" else "data set"]
        + [f"{label[m]} AUROC | {label[m]} AP" for m in methods]
    )
    lines = [
        f"# Anomaly detection: {results['protocol']}",
        "",
        results["description"],
        "",
        head + " |",
        "|" + " --- |" * (1 + 2 * len(methods)),
    ]
    for r in rows:
        cells = [
            f"{fmt(r['methods'][m]['auroc'])} | {fmt(r['methods'][m]['average_precision'])}"
            for m in methods
        ]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    mean = results["mean"]
    cells = [
        f"**{fmt(mean[m]['auroc'])}** | **{fmt(mean[m]['average_precision'])}**" for m in methods
    ]
    lines.append("| mean | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Decisions at each method's threshold, set to flag {results['fpr']:.0%} of the "
        "validation normals (test FPR is the fraction of test normals flagged):",
        "",
        "| row | method | threshold | precision | recall | F1 | test FPR |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    keys = ("precision", "recall", "f1", "false_positive_rate")
    for r in rows:
        for m in methods:
            d = r["methods"][m]
            if "threshold" in d:
                values = " | ".join(fmt(d[k]) for k in keys)
                lines.append(f"| {r['name']} | {label[m]} | {d['threshold']:.4g} | {values} |")
    for m in methods:
        if all(k in mean[m] for k in keys):
            values = " | ".join(fmt(mean[m][k]) for k in keys)
            lines.append(f"| mean | {label[m]} | | {values} |")
    resumed = sum(r.get("resumed", False) for r in rows)
    note = f"; {resumed} of {len(rows)} runs resumed from earlier checkpoints" if resumed else ""
    lines += ["", f"Time: {results['seconds']:.0f} s in all (train and score{note}).", ""]
    return "\n".join(lines)
