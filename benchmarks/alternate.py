"""Runs the benchmark of two checkouts of aejax one after the other, alternating, and prints
the medians side by side: how a change is measured against the commit before it, on a
machine whose speed drifts.

    git worktree add /tmp/before <commit>
    python benchmarks/alternate.py --before=/tmp/before --after=. --rounds=3 \
        --configs=ae,vae,conv_vae --out=runs/alternate

Each round runs every config of each side in its own process (the order of the sides
swaps every round), each writing its benchmark JSON under --out; then the table gives,
per config and side, the median and min-max over rounds of the end-to-end steps/s (and the
median of its logged windows), the bare step's steps/s and the step's compile seconds
(trace + XLA).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

FIELDS = {
    "e2e steps/s": "e2e_steps_per_s",
    # The median of the loop's logged windows: the steady rate, which the machine's
    # occasional stalls of a few hundred ms (seen on both sides, with and without
    # checkpoints) do not move as they move the whole stretch's rate above.
    "e2e window steps/s": "e2e_window_steps_per_s_median",
    "bare steps/s": "steps_per_s",
    "step compile s": None,  # lower_s + compile_s
}


def _script(tree: str) -> str:
    """The benchmark script of a checkout (benchmarks/ now, experiments/ before)."""
    for rel in ("benchmarks/benchmark.py", "experiments/benchmark.py"):
        if os.path.isfile(os.path.join(tree, rel)):
            return os.path.join(tree, rel)
    raise SystemExit(f"no benchmark script in {tree}")


def run_one(tree: str, config: str, json_path: str, extra: list[str]) -> dict:
    """One config of one checkout in a fresh process; returns its variant record."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    cmd = [sys.executable, _script(tree), f"--configs={config}", f"--json={json_path}", *extra]
    subprocess.run(cmd, check=True, env=env, cwd=os.path.abspath(tree), capture_output=True)
    with open(json_path) as f:
        return json.load(f)["variants"][0]


def value(record: dict, field: str | None) -> float | None:
    if field is None:
        if "compile_s" not in record:
            return None
        return record["lower_s"] + record["compile_s"]
    return record.get(field)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--configs", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--first_round", type=int, default=0, help="number of the first round")
    p.add_argument("--out", default="runs/alternate")
    p.add_argument(
        "--extra",
        default="--nowarm_compile --noe2e_eval --windows=3 --e2e_epochs=2",
        help="flags of each benchmark run",
    )
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sides = {"before": args.before, "after": args.after}
    records = {(c, s): [] for c in args.configs.split(",") for s in sides}
    for r in range(args.first_round, args.first_round + args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for config in args.configs.split(","):
            for side in order:
                path = os.path.abspath(os.path.join(args.out, f"{config}-{side}-{r}.json"))
                rec = run_one(sides[side], config, path, args.extra.split())
                records[(config, side)].append(rec)
                shown = ", ".join(
                    f"{name} {v:.3g}"
                    for name, f in FIELDS.items()
                    if (v := value(rec, f)) is not None
                )
                print(f"round {r} {config} {side}: {shown}", flush=True)
    # Every round in --out counts, those of earlier invocations too.
    for (config, side), recs in records.items():
        recs.clear()
        for name in sorted(os.listdir(args.out)):
            if name.startswith(f"{config}-{side}-") and name.endswith(".json"):
                with open(os.path.join(args.out, name)) as f:
                    recs.append(json.load(f)["variants"][0])
    header = "| config | " + " | ".join(f"{n} before | {n} after | after / before" for n in FIELDS)
    print(header + " |")
    print("|---" * (1 + 3 * len(FIELDS)) + "|")
    for config in args.configs.split(","):
        cells = []
        for f in FIELDS.values():
            meds = []
            for side in sides:
                vals = [v for rec in records[(config, side)] if (v := value(rec, f)) is not None]
                if not vals:
                    cells.append("-")
                    meds.append(None)
                    continue
                med = statistics.median(vals)
                meds.append(med)
                cells.append(f"{med:.3g} ({min(vals):.3g}-{max(vals):.3g})")
            ratio = meds[1] / meds[0] if None not in meds and meds[0] else None
            cells.append(f"{ratio:.2f}" if ratio else "-")
        print(f"| {config} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
