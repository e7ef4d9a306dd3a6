"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (a scheduler's kill).

While a `StopRequests` block is active, the two signals are recorded instead of raising
wherever Python happens to be (inside a writer's queue, an orbax save, a compilation);
the training loop reads `signum` after each compiled chunk, saves a checkpoint of the step
reached and stops with `Interrupted`. A second signal while the first is being handled
raises KeyboardInterrupt at once. The previous handlers come back when the block ends.
"""

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Records SIGINT and SIGTERM during a `with` block (main thread only; elsewhere, and
    with `enabled=False`, it changes nothing)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: int | None = None
        self._previous = {}

    def _record(self, signum, frame):
        if self.signum is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if self.enabled:
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
