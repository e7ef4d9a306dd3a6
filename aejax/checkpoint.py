"""Orbax checkpoints of the train state: save every N steps, keep the last K, resume.

Every saved state's arrays are summed (SHA-256, `state_digest`) into
`checkpoints/digests.json` when the save starts; a restored state whose digest differs (a
flipped bit in a file that still parses) is damaged, and handled as unreadable ones are:
passed over for the one before it. Each checkpoint also keeps the run's config (orbax's
custom metadata of the step), so a checkpoint can be checked against the config that
would use it.
"""

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from aejax.errors import AejaxError, SaveFailed, root_cause


class Checkpointer:
    """A thin wrapper around `ocp.CheckpointManager` for one pytree (the train state).

    Saves are asynchronous (training goes on while the files are written); orbax writes each
    step to a temporary folder and renames it when complete, so a save cut short never
    replaces the previous checkpoint.
    """

    def __init__(self, directory: str, max_to_keep: int, config: dict | None = None):
        """Args:
        directory: the checkpoints' folder (made when the first checkpoint is saved).
        max_to_keep: how many of the newest checkpoints to keep.
        config: the run's config as a JSON-compatible dict, saved with every checkpoint.
        """
        self.directory = os.path.abspath(directory)
        self.config = config
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            item_handlers=ocp.StandardCheckpointHandler(),
        )
        # On one process, even orbax's blocking part of a save (tens of ms: folders,
        # metadata, handing the arrays over) runs on this thread, off the training loop.
        # Several processes save from their main threads, in the same order everywhere,
        # as orbax's barriers between them expect.
        self._thread = None
        if jax.process_count() == 1:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, "aejax-checkpoint")
        self._pending: concurrent.futures.Future | None = None
        self._in_flight: int | None = None  # the step of the save orbax may still be writing

    def _wait(self) -> None:
        """Waits until a started save has been handed to orbax; raises SaveFailed if it
        failed."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            with _save_failures(self, pending.step):
                pending.result()

    def saved_config(self, step: int) -> dict | None:
        """The config saved with checkpoint `step` (a JSON dict), or None (a checkpoint
        saved without one, or unreadable metadata)."""
        try:
            metadata = self._manager.metadata(step)
        except Exception:  # noqa: BLE001 - damaged metadata: the restore judges the damage
            return None
        custom = getattr(metadata, "custom_metadata", None) or {}
        return custom.get("config")

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        self._wait()
        return self._manager.latest_step()

    @property
    def _digests_path(self) -> str:
        return os.path.join(self.directory, DIGESTS)

    def digests(self) -> dict[str, str]:
        """step (as text) -> the digest of the state saved at that step."""
        try:
            with open(self._digests_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _record_digest(self, step: int, digest: str) -> None:
        """Adds the digest of checkpoint `step` (process 0; steps orbax no longer keeps are
        dropped), atomically."""
        if jax.process_index() != 0:
            return
        kept = {str(s) for s in self._manager.all_steps()}
        digests = {k: v for k, v in self.digests().items() if k in kept}
        digests[str(step)] = digest
        tmp = self._digests_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(digests, f, indent=1, sort_keys=True)
        os.replace(tmp, self._digests_path)

    def save(self, step: int, state: Any) -> None:
        """Starts saving `state`, host (numpy) values, as checkpoint `step`; returns at once.

        The caller must not change `state`'s arrays afterwards.
        """
        self._wait()
        self._check_space(step, state)

        def save():
            with _save_failures(self, self._in_flight):  # the previous save's error surfaces here
                self._manager.wait_until_finished()
            self._record_digest(step, state_digest(state))
            metadata = {"config": self.config} if self.config is not None else None
            self._manager.save(
                step, args=ocp.args.StandardSave(state), force=True, custom_metadata=metadata
            )
            self._in_flight = step

        if self._thread is None:
            with _save_failures(self, step):
                save()
        else:
            self._pending = self._thread.submit(save)
            self._pending.step = step

    def _check_space(self, step: int, state: Any) -> None:
        """Raises SaveFailed, before anything is written, when the checkpoints' disk has
        less free space than the state's arrays take (a full disk would otherwise fail
        inside orbax's background threads)."""
        need = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state)) + _SLACK_BYTES
        where = self.directory
        while not os.path.exists(where):
            where = os.path.dirname(where)
        free = shutil.disk_usage(where).free
        if free < need:
            raise SaveFailed(
                f"checkpoint {step} not saved: {free / 2**20:.2f} MiB free on the disk of "
                f"{self.directory}, and it needs about {need / 2**20:.2f} MiB; "
                f"{self._kept()}"
            )

    def _kept(self) -> str:
        steps = sorted(self._manager.all_steps())
        if not steps:
            return "no checkpoint was saved before it"
        return f"the checkpoints saved before it ({', '.join(map(str, steps))}) are intact"

    def restore(self, target: Any, step: int | None = None) -> Any:
        """Restores checkpoint `step` (default: latest) into the structure of `target`.

        Args:
          target: a pytree of arrays or `jax.ShapeDtypeStruct`s with the expected structure.
        """
        self._wait()
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def restore_newest(self, target: Any, step: int | None = None) -> Any | None:
        """Restores checkpoint `step`, or else the newest one that reads; None if none exist.

        A checkpoint that fails to read (a save cut short, a damaged file) is passed over
        with a warning in favour of the one before it (`set_aside_after` moves it out of a
        resumed run's way). A checkpoint whose arrays do not fit
        `target` raises AejaxError: that is a config mismatch, not damage.
        """
        self._wait()
        steps = sorted(self._manager.all_steps(), reverse=True)
        if step is not None:
            if step not in steps:
                raise AejaxError(
                    f"no checkpoint of step {step} in {self.directory}; there are {sorted(steps)}"
                )
            steps = [step]
        for s in steps:
            try:
                stored = self._manager.item_metadata(s)
                mismatch = _mismatch(target, stored.tree if stored is not None else None)
            except Exception:  # unreadable metadata: let the restore below judge the damage
                mismatch = None
            if mismatch:
                # Checked on the metadata, before orbax starts any read: a restore that fails
                # half-way leaves orbax coroutines that print tracebacks at exit.
                raise AejaxError(
                    f"checkpoint {s} in {self.directory} does not fit the config's model: "
                    f"{mismatch}"
                )
            try:
                restored = self.restore(target, s)
                expected = self.digests().get(str(s))
                if expected is not None and state_digest(restored) != expected:
                    raise ValueError("its arrays do not match the checksum taken when saved")
                return restored
            except Exception as e:  # damaged files: orbax and tensorstore raise many kinds
                error = e
            logging.warning(
                "checkpoint %d in %s cannot be read (%s: %s); trying an older one",
                s,
                self.directory,
                type(error).__name__,
                str(error)[:200],
            )
        if steps and step is not None:
            raise AejaxError(f"checkpoint {step} in {self.directory} cannot be read")
        if steps:
            raise AejaxError(f"no checkpoint in {self.directory} can be read")
        return None

    def set_aside_after(self, step: int) -> None:
        """Renames each checkpoint newer than `step`, the one a run resumes from (so one
        that `restore_newest` passed over as unreadable), to `<its step>.damaged-<n>`: the
        run will reach that step again, and orbax refuses to save a step whose folder
        exists. Nothing is deleted."""
        self._wait()
        newer = [s for s in self._manager.all_steps() if s > step]
        if not newer:
            return
        if jax.process_index() == 0:
            for s in newer:
                moved = move_aside(os.path.join(self.directory, str(s)), "damaged")
                logging.warning("unreadable checkpoint %d set aside as %s", s, moved)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("aejax: damaged checkpoints set aside")
        self._manager.reload()  # forget the steps it listed

    def close(self) -> None:
        """Waits for pending saves, then releases the manager; SaveFailed if one failed."""
        try:
            self._wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown()
            try:
                with _save_failures(self, self._in_flight):
                    self._manager.wait_until_finished()
            finally:
                self._manager.close()


@contextlib.contextmanager
def _save_failures(ckpt: Checkpointer, step: int | None):
    """Turns any error of orbax's save into SaveFailed, one line naming the step and the
    checkpoints that are intact (orbax writes each step to a temporary folder, so a failed
    save leaves the older checkpoints whole)."""
    try:
        yield
    except SaveFailed:
        raise
    except Exception as error:  # noqa: BLE001 - orbax and tensorstore raise many kinds
        cause = root_cause(error)
        text = str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__
        full = isinstance(cause, OSError) and cause.errno == errno.ENOSPC
        why = "no space left on the disk" if full or "No space left" in str(error) else text
        raise SaveFailed(
            f"saving checkpoint {step} in {ckpt.directory} failed ({why}); {ckpt._kept()}"
        ) from error


# Beyond the arrays' bytes: orbax's metadata files and folders (about 20 KiB for small
# states; measured).
_SLACK_BYTES = 256 * 1024


DIGESTS = "digests.json"


def state_digest(state: Any) -> str:
    """SHA-256 of a pytree's arrays: their paths, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)} {a.dtype} {a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def move_aside(path: str, tag: str = "old") -> str | None:
    """Renames an existing file or folder to `<path>.<tag>-<n>` (the first free n), so that
    something new can take its place. Nothing is deleted. Returns the new name, or None if
    there was nothing to move."""
    if not os.path.exists(path):
        return None
    n = 1
    while os.path.exists(f"{path}.{tag}-{n}"):
        n += 1
    os.rename(path, f"{path}.{tag}-{n}")
    return f"{path}.{tag}-{n}"


def _mismatch(target: Any, stored: Any) -> str | None:
    """What differs between `target`'s arrays and a checkpoint's metadata tree, or None.

    Compares the arrays by path: a missing or extra array, or another shape or dtype.
    """
    if stored is None:
        return None
    # Dotted names ("params.encoder.dense_0.kernel"), the same for a dataclass field of the
    # train state and the dict key orbax stores it under.
    names = lambda tree: {
        jax.tree_util.keystr(p, simple=True, separator="."): v
        for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }
    want, have = names(target), names(stored)
    for name in sorted(set(want) | set(have), key=lambda n: (not n.startswith("params"), n)):
        if name not in have:
            return f"it has no array {name}"
        if name not in want:
            return f"it holds an array {name} that the model does not have"
        a, b = want[name], have[name]
        if tuple(a.shape) != tuple(b.shape) or np.dtype(a.dtype) != np.dtype(b.dtype):
            return f"{name} is {b.dtype}{list(b.shape)} there and {a.dtype}{list(a.shape)} here"
    return None
