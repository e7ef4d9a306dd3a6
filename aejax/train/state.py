"""The train state and the paths that name parts of the parameters.

The state is a pytree that orbax saves and restores whole: a model whose module keeps
state beyond its parameters (batch-norm statistics, an EMA codebook) has it checkpointed
and resumed like the parameters, with no change here.
"""

import dataclasses
from typing import Any

import flax
import jax

from aejax import losses
from aejax.errors import ConfigError


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
      step: int32 scalar, the number of steps taken (steps skipped under
        `on_nonfinite='skip'` count too: the data order is a function of it).
      params: the model's parameters.
      model_state: the model's other variable collections, name -> tree (batch norm's
        "batch_stats", an EMA codebook's collection; {} for most models). The step applies
        the model with these collections mutable and keeps what it returns.
      opt_state: the optax optimizer state of the main update (config.loss), over the
        parameters under config.loss_params (all of them by default).
      phase_opt_states: one optimizer state per extra phase (config.extra_phases), each
        over its part of the parameters; () without extra phases.
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    phase_opt_states: tuple = ()


def variables(params, model_state) -> dict:
    """The flax variables {"params": ..., **model_state} of a state's parts."""
    return {"params": params, **model_state}


@dataclasses.dataclass(frozen=True)
class Phase:
    """An extra update of each step: the recipe `weights` applied to the parameters under
    `path` (e.g. ("discriminator",)), with its own optimizer state."""

    weights: dict
    path: tuple[str, ...]


def parse_phase(text: str, where: str) -> Phase:
    """Reads "recipe @ path/to/params", e.g. "adv_generator @ autoencoder/encoder"."""
    recipe, at, path = text.rpartition("@")
    if not at or not path.strip() or not recipe.strip():
        raise ConfigError(
            f"{where}={text!r} must be 'recipe @ params/path', e.g. "
            "'adv_discriminator @ discriminator'"
        )
    return Phase(losses.parse_recipe(recipe, where), parse_path(path))


def parse_path(text: str) -> tuple[str, ...]:
    """ "autoencoder/encoder" -> ("autoencoder", "encoder"); "" -> () (every parameter)."""
    return tuple(name for name in text.strip().strip("/").split("/") if name)


def get_subtree(tree: dict, path: tuple[str, ...]):
    """The nested dict under `path` (() gives the whole tree)."""
    for name in path:
        tree = tree[name]
    return tree


def set_subtree(tree: dict, path: tuple[str, ...], sub) -> dict:
    """A copy of `tree` with the nested dict under `path` replaced by `sub` (no mutation)."""
    if not path:
        return sub
    return {**tree, path[0]: set_subtree(tree[path[0]], path[1:], sub)}
