"""A run's workdir: may this config use it, and its saved config."""

import fcntl
import json
import os
import socket
import time

import jax
import ml_collections

from aejax import config as config_lib
from aejax.checkpoint import move_aside
from aejax.errors import AejaxError

LOCK_FILE = ".lock"

# Fields about the machine, not the experiment: they may change when a run resumes (on
# another machine, or with more devices: results do not depend on the device count). Also
# `on_nonfinite`: while every step is finite it changes nothing, and a run stopped by a
# non-finite step is told to resume with 'skip'.
RESUMABLE_FIELDS = {
    "on_nonfinite",
    "skip_limit",
    "data.data_dir",
    "progress_bar",
    "eval_batch_size",
    "log_every_steps",
    "parallelism",
    "num_devices",
    "cpu_convolutions",
    "keep_freed_host_memory",
    "distributed.enabled",
    "distributed.coordinator_address",
    "distributed.num_processes",
    "distributed.process_id",
    "distributed.cpu_collectives",
    "distributed.timeout_s",
}

# Fields that set how long a run trains: a finished run may be continued to a larger budget
# (and a run may stop earlier), as long as no checkpoint lies past the new end.
BUDGET_FIELDS = {"num_epochs", "num_steps"}


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Checks, writing nothing, that the run may use `workdir`: a writable folder (or one that
    can be made) that holds no config or the same experiment's. Raises AejaxError.

    Fields that describe the machine rather than the experiment may differ on resume, and
    so may the training budget (`BUDGET_FIELDS`).
    """
    if not isinstance(workdir, str) or not workdir.strip():
        raise AejaxError(f"workdir {workdir!r} is empty: name a folder")
    if os.path.islink(workdir) and not os.path.exists(workdir):
        raise AejaxError(f"workdir {workdir} is a symbolic link to nothing (or a loop of them)")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise AejaxError(f"workdir {workdir} exists and is not a folder")
    existing = workdir
    while not os.path.exists(existing):  # the nearest existing ancestor gets the new folders
        existing = os.path.dirname(os.path.abspath(existing))
    if not os.path.isdir(existing):
        raise AejaxError(f"workdir {workdir} cannot be made: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AejaxError(f"workdir {workdir} is not writable ({existing} is not)")
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            try:
                old = config_lib.from_json(f.read())
            except ValueError as e:
                raise AejaxError(f"{path} is not a readable config: {e}") from None
        new = config_lib.from_json(config_lib.to_json(config))
        differing = config_diff(config_dict(old), config_dict(new), ignore=BUDGET_FIELDS)
        if differing:
            raise AejaxError(
                f"workdir {workdir} holds a different experiment (differs in "
                f"{'; '.join(differing)}); use another workdir, or --start_over to move the "
                "old run aside"
            )


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Saves the resolved config as `workdir/config.json` (atomically; process 0 only)."""
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() != 0:
        return
    path = os.path.join(workdir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_lib.to_json(config))
    os.replace(tmp, path)


def config_diff(
    old: dict, new: dict, prefix: str = "", ignore=frozenset(), defaults: dict | None = None
) -> list[str]:
    """The experiment fields (not `RESUMABLE_FIELDS`, nor `ignore`) that differ, one line
    each.

    A field `old` lacks while `new` holds its default (`defaults`, the base config's
    values; by default `config_lib.base_config()`'s) is not a difference: it is a field
    added to aejax after the old run was saved (a new model family's option), which that
    run trained without.
    """
    if defaults is None:
        defaults = config_dict(config_lib.base_config())
    out = []
    for k in sorted(set(old) | set(new)):
        name = prefix + k
        a, b = old.get(k), new.get(k)
        if k not in old and k in defaults and b == defaults[k]:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, name + ".", ignore, defaults.get(k) or {})
        elif name not in RESUMABLE_FIELDS and name not in ignore and a != b:
            out.append(f"config.{name}: {a!r} then, {b!r} now")
    return out


def config_dict(config: ml_collections.ConfigDict) -> dict:
    """The config as plain JSON values (tuples as lists), as a checkpoint keeps it."""
    return json.loads(config_lib.to_json(config))


def check_checkpoint_config(
    saved: dict | None, config: ml_collections.ConfigDict, step: int, total_steps: int, where: str
) -> None:
    """Refuses checkpoint `step` (in folder `where`) when the config saved with it is another
    experiment's, or when it lies past `total_steps`, this config's end. Raises AejaxError.

    `saved` is None for a checkpoint saved without its config: nothing to check.
    """
    if saved is None:
        return
    now = config_dict(config)
    differing = config_diff(saved, now, ignore=BUDGET_FIELDS)
    if differing:
        raise AejaxError(
            f"checkpoint {step} in {where} was trained with a different config (differs in "
            f"{'; '.join(differing)}): use the config it was trained with, or another workdir"
        )
    if step > total_steps:
        budget = lambda c: f"num_epochs={c.get('num_epochs')}, num_steps={c.get('num_steps')}"
        raise AejaxError(
            f"checkpoint {step} in {where} lies past this config's end at step {total_steps} "
            f"(config.{budget(now)}; it was saved under {budget(saved)})"
        )


class WorkdirLock:
    """One run per workdir: an exclusive `flock` on `workdir/.lock`, held while the run
    trains. The operating system releases it when the process ends, however it ends, so a
    killed run leaves nothing stuck. The file names its holder for the message a second
    run gets. Only process 0 of a multi-host run takes it.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self._fd: int | None = None

    def acquire(self) -> "WorkdirLock":
        """Takes the lock (making the workdir if needed); AejaxError naming the holder if
        another process has it."""
        if jax.process_index() != 0:
            return self
        try:
            os.makedirs(self.workdir, exist_ok=True)
            fd = os.open(os.path.join(self.workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise AejaxError(f"workdir {self.workdir} cannot be used: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise AejaxError(
                f"workdir {self.workdir} is in use by another run ({holder}); wait for it "
                "to end, or use another workdir"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()} since {stamp}".encode())
        self._fd = fd
        return self

    def close(self) -> None:
        """Releases the lock. The file stays, emptied: it names a holder only while held,
        so a run that ends (or is refused) leaves the workdir as it found it."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holds_run(workdir: str) -> bool:
    """Whether `workdir` is a folder holding a training run (its config or checkpoints)."""
    return os.path.isdir(workdir) and any(
        os.path.exists(os.path.join(workdir, name)) for name in ("config.json", "checkpoints")
    )


def move_run_aside(workdir: str) -> str | None:
    """Renames the run in `workdir` to `<workdir>.old-<n>` so a new one can start there;
    nothing is deleted. Returns the new name, or None when there is no workdir.

    Refuses (AejaxError, nothing moved) a path that is not a run's workdir and a workdir
    that another run is using.
    """
    if not os.path.lexists(workdir):
        return None
    if not holds_run(workdir):
        raise AejaxError(
            f"--start_over: {workdir} is not a training run's workdir (no config.json or "
            "checkpoints/); nothing was moved"
        )
    WorkdirLock(workdir).acquire().close()  # refuses a workdir in use
    return move_aside(workdir)
