"""Orbax checkpoints of the train state: save every N steps, keep the last K, resume."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """A thin wrapper around `ocp.CheckpointManager` for one pytree (the train state).

    Saves are asynchronous (training goes on while the files are written); orbax writes each
    step to a temporary folder and renames it when complete, so a save cut short never
    replaces the previous checkpoint.
    """

    def __init__(self, directory: str, max_to_keep: int):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        """Starts saving `state` as checkpoint `step` (returns before the write ends)."""
        self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

    def restore(self, target: Any, step: int | None = None) -> Any:
        """Restores checkpoint `step` (default: latest) into the structure of `target`.

        Args:
          target: a pytree of arrays or `jax.ShapeDtypeStruct`s with the expected structure.
        """
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        """Waits for pending saves, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
