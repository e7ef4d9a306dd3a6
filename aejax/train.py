"""Training: the train state, the step body, the compiled steps and the loop.

`train_and_evaluate(config, workdir)` is the one entry point. Everything random derives from
`config.seed`: parameters from one key, the batch order from (seed, step) (see
`aejax.data.pipeline`) and each example's noise, dropout and sampling keys from (seed, step,
its position in the global batch) (see `example_keys`); so a resumed run continues exactly
as if it had never stopped, and a run on many devices matches a run on one.
"""

import ctypes
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.extend.core as jax_core
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from aejax import config as config_lib
from aejax import corruption, data, losses, models, optim, parallel, plots
from aejax.checkpoint import Checkpointer
from aejax.data.tfds_source import TfdsStream
from aejax.errors import AejaxError, ConfigError, TrainingDiverged
from aejax.evaluate import map_batches, reconstruction_metrics
from aejax.writers import MetricWriter

# Per-step keys are split by purpose with fixed constants, so adding a new purpose never
# changes the draws of the existing ones.
KEY_PURPOSES = {"noise": 0, "dropout": 1, "latent": 2}


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; a pytree that orbax saves and restores.

    Attributes:
      step: int32 scalar, the number of steps taken (steps skipped under
        `on_nonfinite='skip'` count too: the data order is a function of it).
      params: the model's parameters.
      batch_stats: batch-norm running statistics ({} without batch norm).
      opt_state: the optax optimizer state of the main update (config.loss), over the
        parameters under config.loss_params (all of them by default).
      phase_opt_states: one optimizer state per extra phase (config.extra_phases), each
        over its part of the parameters; () without extra phases.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    phase_opt_states: tuple = ()


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


def example_keys(train_key: jax.Array, step: jax.Array, positions: jax.Array) -> dict:
    """Per-example keys of one step, one set per purpose ("noise", "dropout", "latent").

    Args:
      train_key: the run's training key.
      step: the step number (int32 scalar).
      positions: [B] positions of the examples in the global batch.
    Returns:
      purpose -> [B] keys. They depend on the global position, not on which device holds
      the example, so any number of devices draws the same numbers.
    """
    step_key = jax.random.fold_in(train_key, step)
    per_example = jax.vmap(jax.random.fold_in, (None, 0))(step_key, positions)
    return {
        name: jax.vmap(jax.random.fold_in, (0, None))(per_example, i)
        for name, i in KEY_PURPOSES.items()
    }


def _variables(params, batch_stats) -> dict:
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


def _shapes(tree):
    """Arrays (or tracers) -> `jax.ShapeDtypeStruct`s, for tracing without values."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), a.dtype), tree)


def _live_inputs(jaxpr) -> list[bool]:
    """Which inputs of a jaxpr its outputs (or effects) depend on: a backward liveness pass
    over the top-level equations (an input passed into a nested call counts as read)."""
    live = {v for v in jaxpr.outvars if isinstance(v, jax_core.Var)}
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in live for v in eqn.outvars):
            live.update(v for v in eqn.invars if isinstance(v, jax_core.Var))
    return [v in live for v in jaxpr.invars]


def _one_example(model) -> Callable:
    """The model in training mode on one example: `one(variables, x_i [1, ...], dropout_key,
    latent_key) -> ((x̂, arrays), shared)`. `arrays` are the aux arrays; `shared` the rest
    of aux (an `encoder_chain` of weights), which belongs to the model and is the same for
    every example (it leaves `vmap` unbatched)."""

    def one(variables, x_i, dropout_key, latent_key):
        rngs = {"dropout": dropout_key, "latent": latent_key}
        x_hat, aux = model.apply(variables, x_i, train=True, rngs=rngs)
        arrays = {k: v for k, v in aux.items() if isinstance(v, jax.Array)}
        shared = {k: v for k, v in aux.items() if k not in arrays}
        return (x_hat, arrays), shared

    return one


def trace_one_example(model, variables, x: jax.Array) -> Callable | None:
    """Traces the model in training mode on one example of `x` [B, ...] (shapes only,
    nothing runs).

    Returns None when the traced computation reads neither the "dropout" nor the "latent"
    key (a deterministic model). Otherwise (dropout, a VAE's sampling, an AAE's prior
    samples) returns the traced computation as a function with the signature of
    `_one_example`, the same computation equation for equation: calling it replays the
    trace instead of running the model's Python again, so a step that applies the model
    several times (an AAE's three updates) traces it once.
    """
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    x_i = jax.ShapeDtypeStruct((1, *jnp.shape(x)[1:]), jnp.result_type(x))
    args = (_shapes(variables), x_i, key, key)
    closed, out_shapes = jax.make_jaxpr(_one_example(model), return_shape=True)(*args)
    if not any(_live_inputs(closed.jaxpr)[-2:]):
        return None
    replay, in_tree = jax_core.jaxpr_as_fun(closed), jax.tree.structure(args)

    def one(*args):
        leaves, tree = jax.tree.flatten(args)
        if tree != in_tree:  # the trace's inputs are positional: a mismatch would misread
            raise ValueError(f"traced for inputs {in_tree}, called with {tree}")
        return jax.tree.unflatten(jax.tree.structure(out_shapes), replay(*leaves))

    return one


def draws_in_training(model, variables, x: jax.Array) -> bool:
    """Whether the model in training mode reads its "dropout" or "latent" keys (dropout, a
    VAE's sampling, an AAE's prior samples); False for deterministic models.

    Decided from the traced computation (`trace_one_example`), so a new model needs no
    flag.
    """
    return trace_one_example(model, variables, x) is not None


def apply_for_training(model, variables, x: jax.Array, keys: dict, per_example=None):
    """The model in training mode, each example with its own dropout and latent keys.

    A model that draws random numbers is mapped over single examples (`vmap`, which XLA
    batches back into one computation), so that every draw is a function of the example's
    keys. A deterministic model (`draws_in_training` False) is applied to the whole batch:
    the same function without the per-example mapping, which costs layout copies on CPU
    (tests hold the two paths to the same values). Batch norm couples the examples of a
    batch: such models are applied to the whole batch with the first example's keys, and
    their statistics are the global batch's (the trainer refuses batch norm under `pmap` on
    several devices, where they would be each device's).

    Args:
      per_example: None chooses as above (tracing the model with `trace_one_example`);
        the function `trace_one_example` returned maps it over the examples (a caller that
        applies one model several times traces it once); True forces the per-example
        mapping of the model itself, False the whole-batch call (for tests).
    Returns:
      ((x̂, aux), batch_stats): aux arrays have a leading batch axis; batch_stats is the
      updated running statistics ({} without batch norm).
    """
    first = {"dropout": keys["dropout"][0], "latent": keys["latent"][0]}
    if "batch_stats" in variables:
        out, updates = model.apply(variables, x, train=True, rngs=first, mutable=["batch_stats"])
        return out, updates["batch_stats"]
    if per_example is None:
        per_example = trace_one_example(model, variables, x) or False
    if not per_example:  # the keys are not read: any keys give the same values
        return model.apply(variables, x, train=True, rngs=first), {}
    one = per_example if callable(per_example) else _one_example(model)
    (x_hat, arrays), shared = jax.vmap(
        lambda x_i, dropout_key, latent_key: one(variables, x_i[None], dropout_key, latent_key),
        out_axes=(0, None),
    )(x, keys["dropout"], keys["latent"])
    x_hat, arrays = jax.tree.map(lambda v: v[:, 0], (x_hat, arrays))
    return (x_hat, {**arrays, **shared}), {}


def model_tensors(model, variables, x_in, aux) -> dict:
    """What loss terms may ask for besides x: the model's aux outputs, the input it saw,
    and `encode`, the deterministic encoder as a function of its input (for Jacobians)."""
    encode = lambda x: model.apply(variables, x, train=False, method="encode")
    return dict(x_in=x_in, encode=encode, **aux)


def make_train_step(
    model,
    tx,
    weights,
    corrupt,
    options=None,
    axis_name: str | None = None,
    phases: tuple[Phase, ...] = (),
    path: tuple[str, ...] = (),
):
    """Builds `train_step(state, batch, key) -> (state, metrics)`, the one step body.

    Args:
      model: an Autoencoder; `model.apply(variables, x, train=True)` gives (x̂, aux).
      tx: the optax optimizer.
      weights: loss recipe, term name -> weight.
      options: term name -> keyword options (`losses.term_options`).
      corrupt: `corrupt(key, x)`, the input corruption.
      axis_name: when the body runs under `pmap`, the device axis to average gradients,
        batch statistics and metrics over; None under `jit`.
      phases: extra updates after the main one, in order, each of its recipe on its part of
        the parameters (an adversarial autoencoder's discriminator and generator updates);
        each sees the parameters as the updates before it left them, and draws the same
        per-example keys.
      path: the parameters the main update changes (config.loss_params); () for all.
        `state.opt_state` covers only these.
    Returns:
      A pure function; `batch` is the clean [B, ...] input, `key` the step's base key.
      metrics holds "loss" (the sum of every update's total), every loss term, "grad_norm"
      (of the main update), and "nonfinite" (1.0 when a loss or a gradient was NaN or Inf).
      An update whose loss or gradient is not finite is not made: its parameters, optimizer
      state and batch statistics stay as they were, so a diverging run keeps its last good
      parameters. With extra phases each update is judged on its own (the updates after a
      skipped one see the parameters it left alone).
    """

    # The model traced on one example (`trace_one_example`), once per set of shapes: an
    # AAE's three updates replay one trace.
    traced = {}

    def per_example(variables, x):
        if "batch_stats" in variables:
            return None  # `apply_for_training` maps no batch-norm model over examples
        leaves, treedef = jax.tree.flatten((variables, x))
        shapes = (treedef, tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves))
        if shapes not in traced:
            traced[shapes] = trace_one_example(model, variables, x) or False
        return traced[shapes]

    def gradients(params, batch_stats, weights, path, batch, x_in, keys):
        """The gradient of the recipe `weights` for the parameters under `path`, with the
        new batch statistics, the metrics and the gradient's norm."""

        def loss_fn(sub):
            variables = _variables(set_subtree(params, path, sub), batch_stats)
            (_, aux), new_stats = apply_for_training(
                model, variables, x_in, keys, per_example(variables, x_in)
            )
            tensors = model_tensors(model, variables, x_in, aux)
            loss, metrics = losses.total_loss(weights, options, x=batch, **tensors)
            return loss, (metrics, new_stats)

        sub = get_subtree(params, path)
        (_, (metrics, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(sub)
        if axis_name is not None:
            grads, new_stats, metrics = jax.lax.pmean((grads, new_stats, metrics), axis_name)
        return grads, new_stats, metrics, optax.tree.norm(grads)

    def apply(params, opt_state, path, grads):
        """The optimizer's update of the parameters under `path`."""
        sub = get_subtree(params, path)
        updates, opt_state = tx.update(grads, opt_state, sub)
        return set_subtree(params, path, optax.apply_updates(sub, updates)), opt_state

    def all_finite(norm, metrics):
        finite = jnp.isfinite(norm)
        for value in metrics.values():
            finite &= jnp.isfinite(value)
        return finite

    def train_step(state: TrainState, batch: jax.Array, key: jax.Array):
        positions = parallel.example_positions(batch.shape[0], axis_name)
        keys = example_keys(key, state.step, positions)
        x_in = jax.vmap(lambda k, x: corrupt(k, x[None])[0])(keys["noise"], batch)
        inputs = (batch, x_in, keys)
        grads, batch_stats, metrics, grad_norm = gradients(
            state.params, state.batch_stats, weights, path, *inputs
        )

        # An update is made only when its loss and gradient are finite, and the optimizer runs
        # inside the conditional's taken branch, so it writes the state in place. (Choosing
        # between precomputed new and old states, by `cond` or by an elementwise `where`,
        # makes XLA copy every parameter and optimizer buffer each step.)
        def guarded(finite, params, opt_state, path, grads, new_stats, old_stats):
            return jax.lax.cond(
                finite,
                lambda: (*apply(params, opt_state, path, grads), new_stats),
                lambda: (params, opt_state, old_stats),
            )

        finite = all_finite(grad_norm, metrics)
        params, opt_state, batch_stats = guarded(
            finite, state.params, state.opt_state, path, grads, batch_stats, state.batch_stats
        )
        # Each extra phase differentiates at the parameters the updates before it left.
        phase_opt_states = []
        for phase, phase_opt in zip(phases, state.phase_opt_states, strict=True):
            phase_grads, new_stats, phase_metrics, phase_norm = gradients(
                params, batch_stats, phase.weights, phase.path, *inputs
            )
            phase_finite = all_finite(phase_norm, phase_metrics)
            params, phase_opt, batch_stats = guarded(
                phase_finite, params, phase_opt, phase.path, phase_grads, new_stats, batch_stats
            )
            finite &= phase_finite
            total = metrics["loss"] + phase_metrics.pop("loss")
            metrics = {**metrics, **phase_metrics, "loss": total}
            phase_opt_states.append(phase_opt)
        new_state = TrainState(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            phase_opt_states=tuple(phase_opt_states),
        )
        nonfinite = 1.0 - finite.astype(jnp.float32)
        return new_state, {**metrics, "grad_norm": grad_norm, "nonfinite": nonfinite}

    return train_step


def make_train_chunk(make_step: Callable[[str | None], Callable], unroll: bool = False):
    """Several steps in one compiled call: the data stays on the device, each step gathers
    its batch by index, and `lax.scan` runs the steps.

    Args:
      make_step: axis_name -> train_step (the one step body, see `make_train_step`).
      unroll: write the steps out one after the other instead of looping over them: a
        chunk of one step is then the bare step, with no loop around it (for convolutions
        on CPU, see `steps_per_dispatch`).
    Returns:
      axis_name -> `chunk(state, train_x, inputs, train_key) -> (state, metrics of [K]
      arrays)`, for `DataParallel.compile_chunk`. `inputs` are the indices [K, B] of each
      step's examples in the device-resident `train_x`, or, when train_x is None (a
      streamed dataset), the batches [K, B, ...] themselves.
    """

    def for_axis(axis_name):
        train_step = make_step(axis_name)

        def chunk(state, train_x, inputs, train_key):
            def body(state, rows):
                batch = rows if train_x is None else train_x[rows]
                return train_step(state, batch, train_key)

            if not unroll:
                return jax.lax.scan(body, state, inputs)
            # A Python loop, not `scan(unroll=True)`, which keeps a one-trip loop around.
            per_step = []
            for rows in inputs:
                state, metrics = body(state, rows)
                per_step.append(metrics)
            return state, jax.tree.map(lambda *m: jnp.stack(m), *per_step)

        return chunk

    return for_axis


def keep_freed_host_memory() -> bool:
    """Lets the C allocator reuse large freed host buffers instead of returning them to the
    operating system (Linux with glibc; elsewhere nothing happens). Returns whether it did.

    XLA:CPU allocates each call's temporary buffers with malloc; glibc serves blocks over
    32 MB by mmap and unmaps them when freed, so every call touches fresh pages: for a
    step with 60 MB of temporaries (the adversarial AE, the conv VAE) about 15,000 page
    faults, 20 ms, which is as long as the step itself on 2 cores. Raising glibc's mmap
    and trim thresholds (to 1 GiB) keeps such blocks in the heap for the next call; the
    cost is that the process keeps its peak memory. Set AEJAX_KEEP_FREED_MEMORY=0 to leave
    the allocator alone.
    """
    if os.environ.get("AEJAX_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith(
        "linux"
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameters
        return bool(
            libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
        )
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False


def _primitives(jaxpr) -> set[str]:
    """Names of every primitive in a jaxpr, nested ones included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jax_core.jaxprs_in_params(eqn.params):
            names |= _primitives(sub)
    return names


def steps_per_dispatch(exp: "Experiment", requested: int, platform: str) -> tuple[int, bool]:
    """How many steps one compiled call runs, and whether they are unrolled.

    Normally `requested` (config.steps_per_dispatch) scanned steps. XLA:CPU runs a
    convolution inside a loop through a generic path about 20x slower than the Eigen
    kernels it uses at the top level (its pass that puts convolutions into the fast form
    visits top-level computations only: jax-ml/jax#12868, measured here on the conv AE's
    gradients). So on CPU a model with convolutions runs one unrolled step per call: the
    per-call overhead is tiny beside a conv step, and the data still stay on the device.

    Returns:
      (steps per call, unroll).
    """
    if platform != "cpu":
        return requested, False
    x = jax.ShapeDtypeStruct((2, *exp.dataset.example_shape), jnp.float32)
    variables = jax.eval_shape(exp._init_variables)
    apply = lambda v, x: exp.model.apply(v, x, train=False)
    if "conv_general_dilated" in _primitives(jax.make_jaxpr(apply)(variables, x).jaxpr):
        return 1, True
    return requested, False


def make_eval_step(model, weights, options=None):
    """Builds a jitted `eval_step(variables, x) -> dict of [B] metrics`: every loss term of
    the recipe on the clean input (deterministic model) and the reconstruction metrics."""
    options = options or {}

    def eval_step(variables, x):
        x_hat, aux = model.apply(variables, x, train=False, rngs={"latent": jax.random.key(0)})
        tensors = dict(x=x, **model_tensors(model, variables, x, aux))
        out = {name: losses.get_loss(name)(**tensors, **options.get(name, {})) for name in weights}
        out["loss"] = sum(w * out[name] for name, w in weights.items())
        return {**out, **reconstruction_metrics(x, x_hat), "x_hat": x_hat}

    return jax.jit(eval_step)


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
        return exp

    @classmethod
    def from_workdir(cls, workdir: str) -> "Experiment":
        """Rebuilds the experiment a run saved in `workdir/config.json`."""
        with open(os.path.join(workdir, "config.json")) as f:
            config = config_lib.from_json(f.read())
        return cls.from_config(config, workdir)

    def _check_loss_inputs(self) -> None:
        """Traces the model (no compute) to check that it provides what the terms need and
        has the parameters the updates change."""
        x = jax.ShapeDtypeStruct((2, *self.dataset.example_shape), jnp.float32)
        variables = jax.eval_shape(self._init_variables)
        paths = {"config.loss_params": self.loss_params}
        paths.update({f"config.extra_phases[{i}]": p.path for i, p in enumerate(self.phases)})
        for where, path in paths.items():
            try:
                get_subtree(variables["params"], path)
            except (KeyError, TypeError):
                raise ConfigError(
                    f"{where}: the model has no parameters under {'/'.join(path)!r}; its top "
                    f"level holds {', '.join(variables['params'])}"
                ) from None
        _, aux = jax.eval_shape(lambda v, x: self.model.apply(v, x, train=False), variables, x)
        losses.check_inputs(self.all_weights, {"x", "x_in", "encode", *aux})

    @property
    def keys(self) -> tuple[jax.Array, jax.Array]:
        """(init_key, train_key), both derived from config.seed."""
        init_key, train_key = jax.random.split(jax.random.key(self.config.seed))
        return init_key, train_key

    def _init_variables(self) -> dict:
        init_key, _ = self.keys
        x = jnp.zeros((1, *self.dataset.example_shape), jnp.float32)
        rngs = {"params": init_key, "dropout": init_key, "latent": init_key}
        return self.model.init(rngs, x, train=False)

    def init_state(self) -> TrainState:
        """Fresh parameters and optimizer state at step 0."""
        variables = self._init_variables()
        params = variables["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
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
        )

    def checkpointer(self) -> Checkpointer:
        return Checkpointer(os.path.join(self.workdir, "checkpoints"), self.config.keep_checkpoints)

    def restore_or_init(self, step: int | None = None, require_checkpoint: bool = False):
        """The state of checkpoint `step` (default: the newest readable one), else fresh.

        Writes nothing. Raises AejaxError when the checkpoint's arrays do not fit the
        config's model, or when a checkpoint is required and there is none.
        """
        state = self.init_state()
        ckpt_dir = os.path.join(self.workdir, "checkpoints")
        if not os.path.isdir(ckpt_dir) or not os.listdir(ckpt_dir):
            if require_checkpoint:
                raise AejaxError(f"workdir {self.workdir} holds no checkpoints")
            return state
        ckpt = self.checkpointer()
        try:
            restored = ckpt.restore_newest(state, step)
        finally:
            ckpt.close()
        if restored is None:
            if require_checkpoint:
                raise AejaxError(f"workdir {self.workdir} holds no checkpoints")
            return state
        return restored

    def evaluate(self, state: TrainState, eval_step=None) -> dict[str, float]:
        """Means of every loss term, the total and the reconstruction metrics over the test
        split ("eval/...") and, where the dataset has a validation split, over it
        ("valid/..."): choices such as the number of epochs belong on the latter."""
        eval_step = eval_step or make_eval_step(self.model, self.all_weights, self.options)
        variables = _variables(state.params, state.batch_stats)
        out = {}
        for prefix, x in (("eval", self.dataset.test_x), ("valid", self.dataset.valid_x)):
            if x is None:
                continue
            per_example = map_batches(
                lambda b: {k: v for k, v in eval_step(variables, b).items() if k != "x_hat"},
                x,
                self.config.eval_batch_size,
                pad=False,  # terms over the whole batch (kl_sparsity) would see the padding
            )
            out |= {f"{prefix}/{k}": float(np.mean(v)) for k, v in per_example.items()}
        return out


def _check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
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
        differing = _config_diff(old.to_dict(), new.to_dict())
        if differing:
            raise AejaxError(
                f"workdir {workdir} holds a different experiment (differs in "
                f"{'; '.join(differing)}); use another workdir, or --start_over to move the "
                "old run aside"
            )


def _save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Saves the resolved config as `workdir/config.json` (atomically; process 0 only)."""
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() != 0:
        return
    path = os.path.join(workdir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_lib.to_json(config))
    os.replace(tmp, path)


# Fields about the machine, not the experiment: they may change when a run resumes (on
# another machine, or with more devices: results do not depend on the device count). Also
# `on_nonfinite`: while every step is finite it changes nothing, and a run stopped by a
# non-finite step is told to resume with 'skip'.
_RESUMABLE_FIELDS = {
    "on_nonfinite",
    "data.data_dir",
    "progress_bar",
    "eval_batch_size",
    "log_every_steps",
    "parallelism",
    "num_devices",
    "distributed.enabled",
    "distributed.coordinator_address",
    "distributed.num_processes",
    "distributed.process_id",
    "distributed.cpu_collectives",
}


def _config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        name = prefix + k
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, name + ".")
        elif name not in _RESUMABLE_FIELDS and a != b:
            out.append(f"config.{name}: {a!r} then, {b!r} now")
    return out


def _next_event(step: int, total: int, *intervals: int) -> int:
    """The first step after `step` that is a multiple of an interval, or `total`."""
    return min([total] + [(step // i + 1) * i for i in intervals])


def _window_metrics(chunks: list[tuple[int, dict]], on_nonfinite: str) -> dict[str, float]:
    """Averages the per-step metrics of several chunks on the host.

    Args:
      chunks: (first step, metrics of [K] arrays) per chunk, in order.
      on_nonfinite: "stop" raises TrainingDiverged naming the first bad step and its terms;
        "skip" averages over the good steps only and counts the skipped ones.
    Returns:
      "train/<metric>" means and "train/skipped_steps", the number of non-finite steps.
    """
    fetched = jax.device_get([m for _, m in chunks])
    per_step = {k: np.concatenate([m[k] for m in fetched]) for k in fetched[0]}
    bad = per_step.pop("nonfinite") > 0
    if bad.any() and on_nonfinite == "stop":
        i = int(np.argmax(bad))
        step = chunks[0][0] + i + 1  # metrics of step s are those of the update s -> s + 1
        culprits = [k for k, v in per_step.items() if not np.isfinite(v[i])]
        raise TrainingDiverged(
            f"step {step}: {', '.join(culprits)} became non-finite "
            f"({', '.join(f'{k}={per_step[k][i]}' for k in culprits)}); the update was not "
            "applied and no checkpoint after it was saved (set config.on_nonfinite='skip' to "
            "skip such steps)"
        )
    good = ~bad
    out = {f"train/{k}": float(np.mean(v[good])) for k, v in per_step.items() if good.any()}
    out["train/skipped_steps"] = float(bad.sum())
    return out


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    stop_after: int | None = None,
    on_write: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Trains the config's model, evaluating and checkpointing on the way; resumes from
    the latest checkpoint in `workdir` if there is one.

    Args:
      config: an experiment config (see `aejax.config.base_config`).
      workdir: where the config, checkpoints, metrics and figures go.
      stop_after: stop (with a checkpoint) once this step is reached, as if the job had been
        cut off there; a later call continues. For tests and time-limited jobs.
      on_write: called with (step, scalars) right after each row of metrics is written,
        the train logs and the evaluations (for the benchmark's clock, or a notebook).
    Returns:
      The last evaluation's metrics ("eval/...") and the step reached.
    """
    parallel.initialize_distributed(config.distributed)  # before JAX touches a device
    exp = Experiment.from_config(config, workdir)  # every config error surfaces here
    dp = parallel.DataParallel.create(config.parallelism, config.num_devices, config.batch_size)
    coupled = ["config.model.batch_norm"] if config.model.get("batch_norm") else []
    coupled += [f"loss term {t!r}" for t in exp.all_weights if t in losses.BATCH_TERMS]
    if dp.mode == "pmap" and dp.num_devices > 1 and coupled:
        # Under pmap each device would see only its own share of the batch, so results would
        # depend on the device count; jit computes over the global batch.
        raise ConfigError(
            f"{' and '.join(coupled)} with config.parallelism='pmap' on {dp.num_devices} "
            "devices: computed over each device's share of the batch, not the whole batch; "
            "use config.parallelism='jit' (the default)"
        )
    if dp.platform == "cpu":
        keep_freed_host_memory()
    _check_workdir(config, workdir)
    host_state = exp.restore_or_init()  # a checkpoint that does not fit fails here
    _save_config(config, workdir)  # the first write
    total = exp.total_steps
    end = total if stop_after is None else min(stop_after, total)
    eval_every = config.eval_every_steps or exp.steps_per_epoch
    ckpt_every = config.checkpoint_every_steps or exp.steps_per_epoch

    ckpt = exp.checkpointer()
    step = int(host_state.step)
    ckpt.set_aside_after(step)  # unreadable newer checkpoints, which this run will redo
    _, train_key = exp.keys
    dispatch, unroll = steps_per_dispatch(exp, config.steps_per_dispatch, dp.platform)
    train_chunk = dp.compile_chunk(make_train_chunk(exp.train_step, unroll))
    eval_step = make_eval_step(exp.model, exp.all_weights, exp.options)
    state = dp.replicate(host_state)
    n_train = exp.dataset.num_train
    stream = None
    if exp.dataset.train_x is None:  # streamed through grain; its state is the step
        stream = TfdsStream(
            exp.dataset.train_source,
            config.seed,
            config.batch_size,
            jax.process_index(),
            jax.process_count(),
            start_step=step,
        )
        train_x = None
    else:
        train_x = dp.replicate(exp.dataset.train_x)
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0, resumed_from=step)

    bar = tqdm(
        total=total,
        initial=step,
        disable=not config.progress_bar or jax.process_index() != 0,
        unit="step",
        dynamic_ncols=True,
    )
    log_window, eval_window = [], []
    eval_metrics: dict[str, float] = {}
    last_fetch = [time.perf_counter()]

    def log_row(at: int, window: list) -> None:
        """Fetches a window's metrics (checking for non-finite steps) and writes its row."""
        try:
            train_metrics = _window_metrics(window, config.on_nonfinite)
        except TrainingDiverged:
            bar.close()
            if stream is not None:
                stream.close()
            ckpt.close()  # pending saves are all of good states: finish them
            writer.close()
            raise
        now = time.perf_counter()  # the window's steps are done: the fetch waited for them
        steps = sum(len(m["loss"]) for _, m in window)
        train_metrics["train/steps_per_s"] = steps / max(now - last_fetch[0], 1e-9)
        last_fetch[0] = now
        writer.write_scalars(at, train_metrics)
        if on_write is not None:
            on_write(at, train_metrics)
        bar.set_postfix(loss=f"{train_metrics.get('train/loss', np.nan):.4g}")

    # A log row and a checkpoint to write once the next chunk is on its way, so that the
    # device does not wait for the host writing them.
    pending, pending_save = None, None
    while step < end:
        k = min(
            dispatch,
            _next_event(step, end, config.log_every_steps, eval_every, ckpt_every) - step,
        )
        if stream is None:
            idx = data.batch_indices(config.seed, step, k, n_train, config.batch_size)
            inputs = dp.shard_batches(idx)
        else:
            inputs = dp.shard_local(np.stack([next(stream) for _ in range(k)]))
        state, metrics = train_chunk(state, train_x, inputs, train_key)
        if pending_save is not None:  # a checked state, copied to the host before dispatch
            ckpt.save(*pending_save)
            pending_save = None
        if pending is not None:  # fetched while the device runs the chunk just dispatched
            log_row(*pending)
            pending = None
        log_window.append((step, metrics))
        eval_window.append((step, metrics))
        step += k
        bar.update(k)

        # Log (and check for non-finite steps) before every checkpoint and evaluation; a
        # plain log row waits for the next dispatch.
        saving = step % ckpt_every == 0 or step == end
        if step % config.log_every_steps == 0 or saving:
            if saving or step % eval_every == 0:
                log_row(step, log_window)
            else:
                pending = (step, log_window)
            log_window = []
        if step % ckpt_every == 0 or step == end or step % eval_every == 0:
            host_state = dp.unreplicate(state)
        if step == end:
            ckpt.save(step, host_state)
        elif step % ckpt_every == 0:
            pending_save = (step, host_state)
        if step % eval_every == 0 or step == total:
            eval_metrics = exp.evaluate(host_state, eval_step)
            summary = _window_metrics(eval_window, "skip")
            writer.write_scalars(step, eval_metrics)
            if on_write is not None:
                on_write(step, eval_metrics)
            eval_window = []
            if jax.process_index() == 0:  # the other processes train silently
                bar.write(
                    f"epoch {step / exp.steps_per_epoch:.4g} step {step}: "
                    f"train/loss={summary.get('train/loss', np.nan):.5g} "
                    + (
                        f"valid/loss={eval_metrics['valid/loss']:.5g} "
                        if "valid/loss" in eval_metrics
                        else ""
                    )
                    + f"eval/loss={eval_metrics['eval/loss']:.5g}"
                    f" eval/mse_per_pixel={eval_metrics['eval/mse_per_pixel']:.5g}"
                )
    bar.close()
    if stream is not None:
        stream.close()

    if step >= total:
        if not eval_metrics:
            eval_metrics = exp.evaluate(host_state, eval_step)
        _save_reconstructions(exp, host_state, eval_step, workdir)
    ckpt.close()
    writer.close()
    return {"step": step, **eval_metrics}


def _save_reconstructions(exp: Experiment, state: TrainState, eval_step, workdir: str) -> None:
    """Saves `reconstructions.png`: the first test images above their reconstructions."""
    if jax.process_index() != 0 or not plots.is_image_shape(exp.dataset.example_shape):
        return
    x = exp.dataset.test_x[:10]
    x_hat = np.asarray(eval_step(_variables(state.params, state.batch_stats), x)["x_hat"])
    plots.save_image_rows(
        os.path.join(workdir, "reconstructions.png"),
        {"test input": x, "reconstruction": x_hat},
        f"{exp.dataset.name}: test images and their reconstructions (step {int(state.step)})",
    )
