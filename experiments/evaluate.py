"""Evaluates a trained run: `aejax evaluate` run from the repository.

    python experiments/evaluate.py --workdir runs/vae_mnist
    python experiments/evaluate.py --workdir runs/dae_mnist --sections=reconstruction,denoising

Prints the test metrics, then writes {workdir}/report/ (or --out_dir): report.md,
report.json and one PNG per figure (see aejax/report/ for what each section measures).
--sections=none prints the test metrics only.
"""

import sys

from aejax import commands

if __name__ == "__main__":
    commands.evaluate(sys.argv[1:], prog="experiments/evaluate.py")
