"""Evaluates a trained run: its test metrics, then the applications report.

    python experiments/evaluate.py --workdir runs/vae_mnist
    python experiments/evaluate.py --workdir runs/dae_mnist --sections=reconstruction,denoising

Writes {workdir}/report/ (or --out_dir): report.md, report.json and one PNG per figure
(see aejax/report.py for what each section measures). --sections=none prints the test
metrics only.
"""

import time

from absl import flags

from aejax import cli
from aejax.evaluate import evaluate_run
from aejax.report import SECTIONS, check_request, write_report

flags.DEFINE_string("workdir", None, "The run's workdir.", required=True)
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.DEFINE_string("out_dir", None, "Where the report goes (default: WORKDIR/report).")
flags.DEFINE_list("sections", list(SECTIONS), "Report sections, or 'none'.")
flags.DEFINE_integer("seed", 0, "Seeds the report's random draws.")
flags.DEFINE_integer("iwae_k", 1000, "Importance samples of the IWAE bound (VAEs).")
flags.DEFINE_integer("probe_train", 0, "Training examples for the linear probes (0: all).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    options = dict(seed=FLAGS.seed, iwae_k=FLAGS.iwae_k, probe_train=FLAGS.probe_train)
    if FLAGS.sections != ["none"]:
        check_request(tuple(FLAGS.sections), **options)  # before the slow evaluation
    metrics = evaluate_run(FLAGS.workdir, FLAGS.step)
    for k, v in metrics.items():
        print(f"{k:28s} {v:.6g}")
    if FLAGS.sections == ["none"]:
        return
    t0 = time.perf_counter()
    out = write_report(
        FLAGS.workdir,
        FLAGS.out_dir,
        tuple(FLAGS.sections),
        FLAGS.step,
        **options,
    )
    for name, seconds in out["seconds"].items():
        print(f"report/{name:21s} {seconds:.1f} s")
    where = FLAGS.out_dir or f"{FLAGS.workdir}/report"
    print(f"wrote {where}/report.md in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    cli.run(main)
