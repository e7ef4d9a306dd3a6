"""The benchmark's targets (`TARGETS`, `check_targets`) and its Markdown tables: the JAX
measurements (`variant_table`), JAX against its PyTorch peers (`peer_table`) and the
sweeps (`sweep_table`); docs/BENCHMARKS.md holds them.
"""

import json

# --------------------------------------------------------------------------- the run

TARGETS = """Targets, on the reference 784-256-32 MLP AE at batch 128 with Adam:
end to end >= 95% of the bare step; end to end >= 2x PyTorch eager and >= 1.3x
torch.compile; the exact contractive AE >= 40% of the plain AE's steps/s, and its `auto`
mode no slower than the better of jacfwd and jacrev; compilation <= 2 s for every config."""


def check_targets(variants: dict[str, dict], peers: dict[tuple[str, str], dict]) -> list[dict]:
    """Each target with its measured ratio and whether it is met (None: not measured)."""
    out = []

    def add(target, value, threshold):
        met = None if value is None else bool(value >= threshold)
        out.append({"target": target, "value": value, "threshold": threshold, "met": met})

    rate = lambda name, key="steps_per_s": variants.get(name, {}).get(key)
    ratio = lambda a, b: a / b if a is not None and b else None
    for name, r in variants.items():
        if "e2e_over_bare" in r:
            add(f"{name}: training loop end to end / bare step", r["e2e_over_bare"], 0.95)
    for mode, threshold in (("eager", 2.0), ("compile", 1.3)):
        torch_rate = peers.get(("ae", mode), {}).get("steps_per_s")
        add(
            f"ae: end to end / PyTorch {mode}",
            ratio(rate("ae", "e2e_steps_per_s"), torch_rate),
            threshold,
        )
    for mode in ("auto", "closed_form"):
        add(f"cae_{mode} / ae (bare steps/s)", ratio(rate(f"cae_{mode}"), rate("ae")), 0.4)
    best = max(filter(None, (rate("cae_jacfwd"), rate("cae_jacrev"))), default=None)
    add("cae_auto / max(cae_jacfwd, cae_jacrev)", ratio(rate("cae_auto"), best), 1.0)
    for name, r in variants.items():
        if "compile_s" in r:
            add(
                f"{name}: 2 s / step compile (lower + compile)",
                2.0 / (r["lower_s"] + r["compile_s"]),
                1.0,
            )
            add(f"{name}: 2 s / chunk compile", 2.0 / r["chunk_compile_s"], 1.0)
        if "cache_warm_chunk_s" in r:
            add(f"{name}: 2 s / chunk compile, cache filled", 2.0 / r["cache_warm_chunk_s"], 1.0)
    return out


def fmt(value, spec=".1f", missing="-"):
    """`value` formatted by `spec`, or `missing` for None."""
    return missing if value is None else format(value, spec)


def _spread(spread, before: str = "", after: str = "") -> str:
    """A (min, max) of compile seconds as "1.90-2.31", between `before` and `after`; ""
    without one."""
    return f"{before}{spread[0]:.2f}-{spread[1]:.2f}{after}" if spread else ""


def variant_table(variants: list[dict], peak_flops: float = 0.0) -> str:
    """A Markdown table of the JAX measurements."""
    head = (
        "| variant | step compile s (trace + XLA, kernels; min-max) "
        "| chunk compile s (min-max; cached) "
        "| bare steps/s (min-max) "
        "| bare ex/s "
        "| e2e steps/s | e2e / bare | e2e+eval / bare | GFLOP/step | GFLOP/s | peak RSS MB "
        "| load |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in variants:
        if "error" in r:
            lines.append(f"| {r.get('name', r.get('variant'))} | error: {r['error'][:200]} |")
            continue
        flops = r.get("flops_per_step")
        gflops_s = flops * r["steps_per_s"] / 1e9 if flops else None
        util = f" ({gflops_s * 1e9 / peak_flops:.1%})" if gflops_s and peak_flops else ""
        lines.append(
            f"| {r['variant']} | {r['lower_s'] + r['compile_s']:.2f} "
            f"({r['lower_s']:.2f} + {r['compile_s']:.2f}, {fmt(r.get('kernels'), 'd')}"
            f"{_spread(r.get('step_compile_spread_s'), before='; ')}) "
            f"| {fmt(r.get('chunk_compile_s'), '.2f')} "
            f"({_spread(r.get('chunk_compile_spread_s'), after='; ')}"
            f"{fmt(r.get('cache_warm_chunk_s'), '.2f')}) "
            f"| {r['steps_per_s']:.1f} ({r['steps_per_s_min']:.0f}-{r['steps_per_s_max']:.0f}) "
            f"| {r['examples_per_s']:.0f} | {fmt(r.get('e2e_steps_per_s'))} "
            f"| {fmt(r.get('e2e_over_bare'), '.2f')} | {fmt(r.get('e2e_eval_over_bare'), '.2f')} "
            f"| {fmt(flops and flops / 1e9, '.3f')} "
            f"| {fmt(gflops_s)}{util} | {r['peak_rss_mb']:.0f} "
            f"| {r['load_before']:.1f}/{r['load_after']:.1f} |"
        )
    return "\n".join(lines)


def peer_table(
    variants: dict[str, dict], peers: dict[tuple[str, str], dict], peak_flops: float = 0.0
) -> str:
    """A Markdown table of JAX against its PyTorch peers. With `peak_flops`, also each one's
    model FLOP utilization: the JAX step's FLOPs (XLA's count, the same model and batch for
    the peer) times its steps/s, over the peak."""
    head = (
        "| variant | params JAX/torch | JAX bare | JAX e2e | torch eager (threads) "
        "| torch.compile (threads, compile s) | e2e / eager | e2e / compile | bare / eager "
        "| bare / compile |"
    )
    if peak_flops:
        head += " MFU bare / e2e / eager / compile |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in sorted({n for n, _ in peers}):
        jx = variants.get(name, {})
        eager = peers.get((name, "eager"), {})
        comp = peers.get((name, "compile"), {})
        if "steps_per_s" not in eager and "steps_per_s" not in comp:
            continue
        r = lambda a, b: fmt(a / b if a and b else None, ".2f")
        bare, e2e = jx.get("steps_per_s"), jx.get("e2e_steps_per_s")
        te, tc = eager.get("steps_per_s"), comp.get("steps_per_s")
        params = f"{jx.get('params', '-')}/{eager.get('params', comp.get('params', '-'))}"
        lines.append(
            f"| {name} | {params} | {fmt(bare)} | {fmt(e2e)} "
            f"| {fmt(te)} ({eager.get('threads', '-')}) "
            f"| {fmt(tc)} ({comp.get('threads', '-')}, {fmt(comp.get('compile_s'))}) "
            f"| {r(e2e, te)} | {r(e2e, tc)} "
            f"| {r(bare, te)} | {r(bare, tc)} |"
        )
        if peak_flops:
            flops = jx.get("flops_per_step")
            mfu = [
                fmt(flops * rate / peak_flops if flops and rate else None, ".1%")
                for rate in (bare, e2e, te, tc)
            ]
            lines[-1] += f" {' / '.join(mfu)} |"
    return "\n".join(lines)


def sweep_table(points: list[dict], peak_flops: float = 0.0) -> str:
    """A Markdown table of sweep points: one row per (what, value), one column per variant."""
    names = sorted({p["variant"] for p in points})
    head = (
        "| sweep | value | "
        + " | ".join(f"{n} steps/s | {n} ex/s | {n} GFLOP/s" for n in names)
        + " |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keys = []
    for p in points:
        key = (p["what"], json.dumps(p["value"]))
        if key not in keys:
            keys.append(key)
    for what, value in keys:
        cells = []
        for n in names:
            hit = [
                p
                for p in points
                if (p["what"], json.dumps(p["value"])) == (what, value) and p["variant"] == n
            ]
            p = hit[0] if hit else {}
            if "steps_per_s" not in p:
                cells += ["-", "-", "-"]
                continue
            flops = p.get("flops_per_step")
            cells += [
                f"{p['steps_per_s']:.1f}",
                f"{p['examples_per_s']:.0f}",
                fmt(flops and flops * p["steps_per_s"] / 1e9),
            ]
        lines.append(f"| {what} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
