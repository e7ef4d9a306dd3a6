"""A run's workdir: may this config use it, and its saved config."""

import os

import jax
import ml_collections

from aejax import config as config_lib
from aejax.errors import AejaxError

# Fields about the machine, not the experiment: they may change when a run resumes (on
# another machine, or with more devices: results do not depend on the device count). Also
# `on_nonfinite`: while every step is finite it changes nothing, and a run stopped by a
# non-finite step is told to resume with 'skip'.
RESUMABLE_FIELDS = {
    "on_nonfinite",
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
}


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Checks, writing nothing, that the run may use `workdir`: a writable folder (or one that
    can be made) that holds no config or the same experiment's. Raises AejaxError.

    Fields that describe the machine rather than the experiment may differ on resume.
    """
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
        differing = config_diff(old.to_dict(), new.to_dict())
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


def config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The experiment fields (not `RESUMABLE_FIELDS`) that differ, one line each."""
    out = []
    for k in sorted(set(old) | set(new)):
        name = prefix + k
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, name + ".")
        elif name not in RESUMABLE_FIELDS and a != b:
            out.append(f"config.{name}: {a!r} then, {b!r} now")
    return out
