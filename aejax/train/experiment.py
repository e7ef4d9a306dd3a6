"""A config turned into objects: data, model, loss recipe, corruption, optimizer."""

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from aejax import config as config_lib
from aejax import corruption, data, losses, models, optim, perf
from aejax.checkpoint import Checkpointer
from aejax.errors import AejaxError, ConfigError
from aejax.train.state import (
    Phase,
    TrainState,
    get_subtree,
    parse_path,
    parse_phase,
    variables,
)
from aejax.train.step import make_eval_step, make_train_step
from aejax.train.workdir import check_checkpoint_config, config_dict


@dataclasses.dataclass
class Experiment:
    """A config turned into objects: data, model, loss recipe, optimizer and schedule.

    Building one checks the whole config, loads the data and traces the model once, so every
    config error surfaces here, before any file is written.
    """

    config: ml_collections.ConfigDict
    workdir: str
    dataset: data.Dataset
    model: Any
    weights: dict[str, float]
    options: dict[str, dict]
    corrupt: Any
    tx: optax.GradientTransformation
    total_steps: int
    steps_per_epoch: int
    phases: tuple[Phase, ...] = ()

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, workdir: str) -> "Experiment":
        config_lib.validate(config)
        weights = losses.parse_recipe(config.loss)
        phases = tuple(
            parse_phase(text, f"config.extra_phases[{i}]")
            for i, text in enumerate(config.extra_phases)
        )
        every = [*weights] + [name for p in phases for name in p.weights]
        if len(set(every)) != len(every):
            raise ConfigError(
                f"config.loss and config.extra_phases name a term twice ({', '.join(every)})"
            )
        options = losses.term_options(config.loss_options, {name: 1.0 for name in every})
        corrupt = corruption.get_corruption(config.corruption)
        dataset = data.load_dataset(config.data)
        n_train = dataset.num_train
        if config.batch_size > n_train:
            raise ConfigError(
                f"config.batch_size={config.batch_size} is larger than the {n_train} training "
                f"examples of {dataset.name!r}"
            )
        spe = data.steps_per_epoch(n_train, config.batch_size)
        total = config.num_steps or config.num_epochs * spe
        model = models.build_model(config.model, dataset.example_shape)
        tx = optim.make_optimizer(config.optimizer, total)
        exp = cls(
            config, workdir, dataset, model, weights, options, corrupt, tx, total, spe, phases
        )
        exp._check_loss_inputs()
        exp._check_memory()
        return exp

    @classmethod
    def from_workdir(cls, workdir: str) -> "Experiment":
        """Rebuilds the experiment a run saved in `workdir/config.json` (or, when that file is
        gone, in its newest checkpoint)."""
        path = os.path.join(workdir, "config.json")
        if not os.path.exists(path) and (saved := _newest_checkpoint_config(workdir)):
            return cls.from_config(config_lib.from_json(json.dumps(saved)), workdir)
        try:
            with open(path) as f:
                config = config_lib.from_json(f.read())
        except (OSError, ValueError) as e:
            raise AejaxError(f"{path} is not a readable config: {e}") from None
        return cls.from_config(config, workdir)

    @property
    def loss_params(self) -> tuple[str, ...]:
        """The path of the parameters the main update changes (() for all)."""
        return parse_path(self.config.loss_params)

    @property
    def all_weights(self) -> dict[str, float]:
        """Every term of the main recipe and of the extra phases (what evaluation reports)."""
        out = dict(self.weights)
        for phase in self.phases:
            out.update(phase.weights)
        return out

    def compiler_options(self, platform: str = "cpu") -> dict | None:
        """The XLA options of this run's compilations (`config.cpu_convolutions`)."""
        return perf.cpu_compiler_options(self.config.cpu_convolutions, platform)

    def _check_loss_inputs(self) -> None:
        """Traces the model (no compute) to check that it provides what the terms need and
        has the parameters the updates change."""
        x = jax.ShapeDtypeStruct((2, *self.dataset.example_shape), jnp.float32)
        v = jax.eval_shape(self.init_variables)
        paths = {"config.loss_params": self.loss_params}
        paths.update({f"config.extra_phases[{i}]": p.path for i, p in enumerate(self.phases)})
        for where, path in paths.items():
            try:
                get_subtree(v["params"], path)
            except (KeyError, TypeError):
                raise ConfigError(
                    f"{where}: the model has no parameters under {'/'.join(path)!r}; its top "
                    f"level holds {', '.join(v['params'])}"
                ) from None
        _, aux = jax.eval_shape(lambda v, x: self.model.apply(v, x, train=False), v, x)
        losses.check_inputs(
            self.all_weights, {"x", "x_in", "encode", "key", "step", "num_train", *aux}
        )

    def _check_memory(self) -> None:
        """Refuses a model whose training state cannot fit in one device's memory: the
        parameters, their gradients and the optimizer's state (four copies of the parameters
        with Adam), counted from shapes before anything is allocated."""
        shapes = jax.eval_shape(self.init_state)
        nbytes = lambda tree: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))
        need = nbytes(shapes) + nbytes(shapes.params)  # the state, and the gradients
        device = jax.devices()[0]
        have = perf.device_memory_bytes(device)
        if have is None or need <= have:
            return
        path, largest = max(
            jax.tree_util.tree_flatten_with_path(shapes.params)[0], key=lambda p: p[1].size
        )
        name = jax.tree_util.keystr(path, simple=True, separator="/")
        raise ConfigError(
            f"config.model: training this model needs at least {need / 2**30:.3g} GiB "
            f"(parameters, gradients, optimizer state; the largest array is {name} "
            f"{list(largest.shape)}), more than the {have / 2**30:.3g} GiB of "
            f"{device.platform.upper()} device 0: make the model smaller"
        )

    def batch_coupled(self) -> list[str]:
        """What computes over the whole batch rather than per example: the model's state
        (batch norm's statistics, ...) and batch-level loss terms. Under `pmap` these would
        be each device's, so the trainer refuses them there on several devices."""
        state = [name for name in jax.eval_shape(self.init_variables) if name != "params"]
        batch_norm = bool(self.config.model.get("batch_norm"))
        out = ["config.model.batch_norm"] if batch_norm else []
        # Batch norm's statistics are named by its config field above; other state by name.
        out += [
            f"the model's {n!r} state" for n in state if not (batch_norm and n == "batch_stats")
        ]
        out += [f"loss term {t!r}" for t in self.all_weights if losses.is_batch_term(t)]
        return out

    @property
    def keys(self) -> tuple[jax.Array, jax.Array]:
        """(init_key, train_key), both derived from config.seed."""
        init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
        return init_key, train_key

    def init_variables(self) -> dict:
        """The model's variables at initialization (from the init key)."""
        init_key, _ = self.keys
        x = jnp.zeros((1, *self.dataset.example_shape), jnp.float32)
        rngs = {"params": init_key, "dropout": init_key, "latent": init_key}
        return self.model.init(rngs, x, train=False)

    def init_state(self) -> TrainState:
        """Fresh parameters and optimizer state at step 0."""
        v = dict(self.init_variables())
        params = v.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            model_state=v,
            opt_state=self.tx.init(get_subtree(params, self.loss_params)),
            phase_opt_states=tuple(self.tx.init(get_subtree(params, p.path)) for p in self.phases),
        )

    def train_step(self, axis_name: str | None = None):
        """This experiment's `make_train_step` (the one step body)."""
        return make_train_step(
            self.model,
            self.tx,
            self.weights,
            self.corrupt,
            self.options,
            axis_name,
            self.phases,
            self.loss_params,
            self.dataset.num_train,
        )

    def eval_step(self):
        """This experiment's jitted `make_eval_step`."""
        return make_eval_step(
            self.model,
            self.all_weights,
            self.options,
            self.compiler_options(),
            self.dataset.num_train,
        )

    def checkpointer(self) -> Checkpointer:
        """The run's checkpoints, each saved with this config."""
        return Checkpointer(
            os.path.join(self.workdir, "checkpoints"),
            self.config.keep_checkpoints,
            config=config_dict(self.config),
        )

    def restore_or_init(self, step: int | None = None, require_checkpoint: bool = False):
        """The state of checkpoint `step` (default: the newest readable one), else fresh.

        Writes nothing. Raises AejaxError when the checkpoint's arrays do not fit the
        config's model, when it was saved with another experiment's config or lies past
        this config's end, or when a checkpoint is required and there is none.
        """
        state = self.init_state()
        ckpt_dir = os.path.join(self.workdir, "checkpoints")
        restored = None
        if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            ckpt = self.checkpointer()
            try:
                restored = ckpt.restore_newest(state, step)
                if restored is not None:
                    at = int(restored.step)
                    saved = ckpt.saved_config(at)
                    check_checkpoint_config(saved, self.config, at, self.total_steps, ckpt_dir)
            finally:
                ckpt.close()
        if restored is None and require_checkpoint:
            raise AejaxError(f"workdir {self.workdir} holds no checkpoints")
        return state if restored is None else restored

    def evaluate(self, state: TrainState, eval_step=None) -> dict[str, float]:
        """Means of every loss term, the total and the reconstruction metrics over the test
        split ("test/...") and, where the dataset has a validation split, over it
        ("valid/..."): choices such as the number of epochs belong on the latter."""
        eval_step = eval_step or self.eval_step()
        v = variables(state.params, state.model_state)
        step = lambda b: eval_step(v, b, state.step)  # noqa: E731
        out = {}
        for prefix, x in (("test", self.dataset.test_x), ("valid", self.dataset.valid_x)):
            if x is None:
                continue
            per_example = data.map_batches(
                lambda b: {k: val for k, val in step(b).items() if k != "x_hat"},
                x,
                self.config.eval_batch_size,
                pad=False,  # terms over the whole batch (kl_sparsity) would see the padding
            )
            out |= {f"{prefix}/{k}": float(np.mean(val)) for k, val in per_example.items()}
        return out


def _newest_checkpoint_config(workdir: str) -> dict | None:
    """The config saved with the newest checkpoint in `workdir`, or None."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return None
    ckpt = Checkpointer(directory, max_to_keep=1)
    try:
        step = ckpt.latest_step()
        return None if step is None else ckpt.saved_config(step)
    finally:
        ckpt.close()
