"""The `aejax` command (installed by pip; also `python -m aejax`): train, evaluate, list.

    aejax train vae:mnist --workdir runs/vae_mnist --config.num_epochs=5
    aejax evaluate runs/vae_mnist
    aejax list

Each subcommand defines its absl flags when it runs, never at import. experiments/train.py
and experiments/evaluate.py run the same functions.
"""

import inspect
import sys
import time
from collections.abc import Sequence

from absl import flags

from aejax import cli, configs
from aejax.errors import AejaxError, DataError
from aejax.registry import did_you_mean

_HELP = ("-h", "--help", "--helpshort", "--helpfull")
FLAGS = flags.FLAGS


def _define(kind, name, default, help_text, **kwargs) -> None:
    if name not in FLAGS:  # a second command in one process (tests) keeps the first's
        getattr(flags, f"DEFINE_{kind}")(name, default, help_text, **kwargs)


# ---------------------------------------------------------------------------- train


def _train_flags() -> None:
    _define("string", "workdir", None, "Where checkpoints, logs and figures go.")
    _define(
        "bool",
        "start_over",
        False,
        "Move the run in WORKDIR aside (to WORKDIR.old-N) and start a new run there; nothing "
        "is deleted. The config is checked first, and only a run's workdir is moved.",
    )


def _train_main(argv) -> None:
    from aejax.train import Experiment, train_and_evaluate
    from aejax.train.workdir import move_run_aside

    del argv
    config, workdir = FLAGS.config, FLAGS.workdir
    if workdir is None:
        raise AejaxError("--workdir is required: the folder the run writes to")
    if FLAGS.start_over:
        Experiment.from_config(config, workdir)  # every config error before anything moves
        if moved := move_run_aside(workdir):
            print(f"moved the old run to {moved}")
    _, metrics = train_and_evaluate(config, workdir)
    print(" ".join(f"{k}={v:.6g}" for k, v in metrics.items()))


def configs_table() -> str:
    """One line per bundled config: its name, its presets (the default first), its summary."""
    rows = [
        (n, ", ".join(configs.presets(n)), summary(configs.docstring(n))) for n in configs.names()
    ]
    width = max(len(n) for n, _, _ in rows)
    return "\n".join(f"  {n:{width}}  {s}  [presets: {p}]" for n, p, s in rows)


def train(args: Sequence[str], prog: str = "aejax train") -> None:
    """Trains a config into a workdir (resuming a run there); see `aejax train --help`."""
    args = list(args)
    if args and not args[0].startswith("-"):  # the config, given first without --config
        args = [f"--config={args[0]}", *args[1:]]
    if any(a in _HELP for a in args):
        _train_flags()
        cli.print_help(
            f"usage: {prog} [CONFIG[:PRESET]] --workdir WORKDIR [--config.a.b=VALUE ...]\n\n"
            "Trains CONFIG (default: ae, an MLP autoencoder on scikit-learn's embedded "
            "digits) into WORKDIR; a WORKDIR that holds a run of the same config resumes it.",
            ["config", "workdir", "start_over", "verbose"],
            "bundled configs (CONFIG:PRESET, e.g. vae:mnist; the first preset is the "
            f"default):\n{configs_table()}",
        )
        sys.exit(0)
    spec = cli.config_spec(args)[0] or "ae"
    sys.argv = [prog, *args]
    cli.define_config("ae")
    _train_flags()
    # Data a config needs but cannot find is named with the config that needs it.
    cli.run(_train_main, lambda e: f"config {spec}: {e}" if isinstance(e, DataError) else str(e))


# ---------------------------------------------------------------------------- evaluate


def _evaluate_flags() -> None:
    from aejax.report import SECTIONS

    _define("string", "workdir", None, "The run's workdir.")
    _define("integer", "step", None, "Checkpoint step to evaluate (default: the latest).")
    _define("string", "out_dir", None, "Where the report goes (default: WORKDIR/report).")
    _define("list", "sections", list(SECTIONS), "Report sections, or 'none'.")
    _define("integer", "seed", 0, "Seeds the report's random draws.")
    _define("integer", "iwae_k", 1000, "Importance samples of the IWAE bound (VAEs).")
    _define("integer", "probe_train", 0, "Training examples for the linear probes (0: all).")


def _evaluate_main(argv) -> None:
    from aejax.evaluate import evaluate_run
    from aejax.report import check_request, write_report

    del argv
    if FLAGS.workdir is None:
        raise AejaxError("--workdir is required: the run's folder")
    options = dict(seed=FLAGS.seed, iwae_k=FLAGS.iwae_k, probe_train=FLAGS.probe_train)
    if FLAGS.sections != ["none"]:
        check_request(tuple(FLAGS.sections), **options)  # before the slow evaluation
    say = lambda line: print(line, flush=True)
    say(f"evaluating {FLAGS.workdir} on its test split ...")
    metrics = evaluate_run(FLAGS.workdir, FLAGS.step)
    for k, v in metrics.items():
        say(f"{k:28s} {v:.6g}")
    if FLAGS.sections == ["none"]:
        return
    t0 = time.perf_counter()
    out = write_report(
        FLAGS.workdir, FLAGS.out_dir, tuple(FLAGS.sections), FLAGS.step, log=say, **options
    )
    where = FLAGS.out_dir or f"{FLAGS.workdir}/report"
    kept = [name for name in out["sections"] if name not in FLAGS.sections]
    say(
        f"wrote {where}/report.md in {time.perf_counter() - t0:.1f} s"
        + (f" (kept from the report before: {', '.join(kept)})" if kept else "")
    )


def evaluate(args: Sequence[str], prog: str = "aejax evaluate") -> None:
    """Prints a run's test metrics and writes its report; see `aejax evaluate --help`."""
    args = list(args)
    if args and not args[0].startswith("-"):  # the workdir, given first without --workdir
        args = [f"--workdir={args[0]}", *args[1:]]
    _evaluate_flags()
    if any(a in _HELP for a in args):
        cli.print_help(
            f"usage: {prog} WORKDIR [--sections=reconstruction,probe,...|none]\n\n"
            "Prints the test metrics of a trained run's latest checkpoint, then writes its "
            "report to WORKDIR/report (report.md, report.json, one PNG per figure).",
            ["workdir", "step", "out_dir", "sections", "seed", "iwae_k", "probe_train", "verbose"],
        )
        sys.exit(0)
    sys.argv = [prog, *args]
    cli.run(_evaluate_main)


# ---------------------------------------------------------------------------- list


def summary(obj, limit: int = 100) -> str:
    """The first sentence of a docstring (or of an object's), on one line of at most
    `limit` characters ("" without one)."""
    if not isinstance(obj, str):  # a loss Term wraps its function
        obj = inspect.getdoc(getattr(obj, "fn", obj)) or ""
    first = " ".join(obj.strip().split("\n\n")[0].split())
    end = first.find(". ")
    first = first[: end + 1] if end >= 0 else first
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + " …"


def list_all(args: Sequence[str] = (), prog: str = "aejax list") -> None:
    """Prints the bundled configs with their presets, then the registered models, loss terms,
    corruptions and data sources, one line each with what it is."""
    if args:
        code = 0 if all(a in _HELP for a in args) else 2
        print(
            f"usage: {prog}\n\nLists configs, presets, models, loss terms, corruptions and "
            "data sources.",
            file=sys.stdout if code == 0 else sys.stderr,
        )
        sys.exit(code)
    from aejax import corruption, data, losses, models

    print(
        f"configs (aejax train CONFIG:PRESET; the first preset is the default):\n{configs_table()}"
    )
    for title, registry in [
        ("models (config.model.name)", models.MODELS),
        ("loss terms (config.loss, e.g. 'bce + kl_normal')", losses.LOSSES),
        ("corruptions (config.corruption.name)", corruption.CORRUPTIONS),
        ("data sources (config.data.source)", data.SOURCES),
    ]:
        width = max(len(n) for n in registry)
        print(f"\n{title}:")
        for name in sorted(registry):
            print(f"  {name:{width}}  {summary(registry[name])}")


# ---------------------------------------------------------------------------- main

COMMANDS = {
    "train": (train, "train a config into a workdir (resumes a run there)"),
    "evaluate": (evaluate, "a trained run's test metrics and its report"),
    "list": (list_all, "the bundled configs and presets, models, loss terms, corruptions, data"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """The `aejax` command: `aejax COMMAND [args]`; bad input ends in one line, exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: aejax COMMAND [ARGS]  (aejax COMMAND --help for its flags)\n\ncommands:\n"
    usage += "\n".join(f"  {name:9s} {text}" for name, (_, text) in COMMANDS.items())
    if not args or args[0] in _HELP:
        print(usage, file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    if args[0] not in COMMANDS:
        hint = did_you_mean(args[0], list(COMMANDS))
        print(
            f"error: unknown command {args[0]!r}{hint}; valid: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        sys.exit(2)
    command, _ = COMMANDS[args[0]]
    command(args[1:])


if __name__ == "__main__":
    main()
