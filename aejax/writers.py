"""Metric logs: JSON lines (`metrics.jsonl`) and TensorBoard event files, in the workdir."""

import json
import os
from collections.abc import Mapping

import numpy as np


class MetricWriter:
    """Appends scalars to `workdir/metrics.jsonl` and to TensorBoard events in `workdir/tb`.

    On a run resumed from the checkpoint of step `resumed_from`, the steps between that
    checkpoint and the stop appear twice in the JSON lines (the later line is the one that
    counts); TensorBoard drops its earlier points past the checkpoint (a purge marker at
    `resumed_from + 1`), so its curves do not double back.
    """

    def __init__(self, workdir: str, enabled: bool = True, resumed_from: int = 0):
        self.enabled = enabled
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        purge = resumed_from + 1 if resumed_from else None
        self._tb = SummaryWriter(os.path.join(workdir, "tb"), purge_step=purge)

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        """Writes one JSON line {"step": step, name: value, ...} and one TB scalar per name."""
        if not self.enabled:
            return
        values = {k: float(np.asarray(v)) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
        self._jsonl.flush()
        for k, v in values.items():
            self._tb.add_scalar(k, v, int(step))
        self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tb.close()
