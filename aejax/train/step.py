"""The one step body, its chunk of scanned steps, and the eval step.

`make_train_step` builds `train_step(state, batch, key) -> (state, metrics)`: corrupt the
batch, apply the model, sum the recipe's terms, differentiate, update. `jax.jit` and
`jax.pmap` both compile this same body (`aejax.parallel`); `make_train_chunk` runs several
steps of it in one compiled call.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from aejax import losses, metrics
from aejax.train import keys as keys_lib
from aejax.train.state import Phase, TrainState, get_subtree, set_subtree, variables


def model_tensors(model, variables, x_in, aux) -> dict:
    """What loss terms may ask for besides x, key, step and num_train: the model's aux
    outputs, the input it saw, and `encode`, the deterministic encoder as a function of its
    input (for Jacobians)."""
    encode = lambda x: model.apply(variables, x, train=False, method="encode")
    return dict(x_in=x_in, encode=encode, **aux)


def apply_for_training(model, variables, x, keys):
    """The model in training mode on the whole batch, drawing with the step's keys.

    Returns:
      ((x̂, aux), model_state): model_state is the collections beyond "params" as the
      model left them ({} for a model without state).
    """
    rngs = {"dropout": keys["dropout"], "latent": keys["latent"]}
    mutable = [name for name in variables if name != "params"]
    if not mutable:
        return model.apply(variables, x, train=True, rngs=rngs), {}
    out, model_state = model.apply(variables, x, train=True, rngs=rngs, mutable=mutable)
    return out, dict(model_state)


def make_train_step(
    model,
    tx,
    weights,
    corrupt,
    options=None,
    axis_name: str | None = None,
    phases: tuple[Phase, ...] = (),
    path: tuple[str, ...] = (),
    num_train: int = 0,
):
    """Builds `train_step(state, batch, key) -> (state, metrics)`, the one step body.

    Args:
      model: an autoencoder; `model.apply(variables, x, train=True)` gives (x̂, aux).
      tx: the optax optimizer.
      weights: loss recipe, term name -> weight.
      corrupt: `corrupt(key, x)`, the input corruption.
      options: term name -> keyword options (`losses.term_options`).
      axis_name: when the body runs under `pmap`, the device axis to average gradients,
        model state and metrics over; None under `jit`.
      phases: extra updates after the main one, in order, each of its recipe on its part of
        the parameters (an adversarial autoencoder's discriminator and generator updates);
        each sees the parameters as the updates before it left them, and draws with the
        same keys.
      path: the parameters the main update changes (config.loss_params); () for all.
        `state.opt_state` covers only these.
      num_train: the number of training examples, which loss terms may read as
        `num_train` (an estimator over the dataset, such as β-TC-VAE's); terms also get
        `step`, the state's step number (a schedule, such as an annealed capacity).
    Returns:
      A pure function; `batch` is the clean [B, ...] input, `key` the run's training key.
      metrics holds "loss" (the sum of every update's total), every loss term, "grad_norm"
      (of the main update), and "nonfinite" (1.0 when a loss or a gradient was NaN or Inf).
      An update whose loss or gradient is not finite is not made: its parameters, optimizer
      state and model state stay as they were, so a diverging run keeps its last good
      parameters. With extra phases each update is judged on its own.
    """

    def gradients(params, model_state, weights, path, batch, x_in, keys, step):
        """The gradient of the recipe `weights` for the parameters under `path`, with the
        new model state, the metrics and the gradient's norm."""

        def loss_fn(sub):
            v = variables(set_subtree(params, path, sub), model_state)
            (_, aux), new_state = apply_for_training(model, v, x_in, keys)
            tensors = model_tensors(model, v, x_in, aux)
            loss, metrics = losses.total_loss(
                weights,
                options,
                x=batch,
                key=keys["loss"],
                step=step,
                num_train=num_train,
                **tensors,
            )
            return loss, (metrics, new_state)

        sub = get_subtree(params, path)
        (_, (metrics, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(sub)
        if axis_name is not None:
            grads, new_state, metrics = jax.lax.pmean((grads, new_state, metrics), axis_name)
        return grads, new_state, metrics, optax.tree.norm(grads)

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

    # An update is made only when its loss and gradient are finite, and the optimizer runs
    # inside the conditional's taken branch, so it writes the state in place. (Choosing
    # between precomputed new and old states, by `cond` or by an elementwise `where`,
    # makes XLA copy every parameter and optimizer buffer each step.)
    def guarded(finite, params, opt_state, path, grads, new_state, old_state):
        return jax.lax.cond(
            finite,
            lambda: (*apply(params, opt_state, path, grads), new_state),
            lambda: (params, opt_state, old_state),
        )

    def train_step(state: TrainState, batch: jax.Array, key: jax.Array):
        keys = keys_lib.step_keys(key, state.step)
        if axis_name is not None:  # each device draws its rows of the global batch's draws
            keys = keys_lib.device_rows_keys(keys, axis_name, batch.shape[0])
        x_in = corrupt(keys["noise"], batch)
        inputs = (batch, x_in, keys, state.step)
        grads, model_state, metrics, grad_norm = gradients(
            state.params, state.model_state, weights, path, *inputs
        )
        finite = all_finite(grad_norm, metrics)
        params, opt_state, model_state = guarded(
            finite, state.params, state.opt_state, path, grads, model_state, state.model_state
        )
        # Each extra phase differentiates at the parameters the updates before it left.
        phase_opt_states = []
        for phase, phase_opt in zip(phases, state.phase_opt_states, strict=True):
            phase_grads, new_state, phase_metrics, phase_norm = gradients(
                params, model_state, phase.weights, phase.path, *inputs
            )
            phase_finite = all_finite(phase_norm, phase_metrics)
            params, phase_opt, model_state = guarded(
                phase_finite, params, phase_opt, phase.path, phase_grads, new_state, model_state
            )
            finite &= phase_finite
            total = metrics["loss"] + phase_metrics.pop("loss")
            metrics = {**metrics, **phase_metrics, "loss": total}
            phase_opt_states.append(phase_opt)
        new_state = TrainState(
            step=state.step + 1,
            params=params,
            model_state=model_state,
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
        on CPU, see `aejax.train.dispatch`).
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


def make_eval_step(model, weights, options=None, compiler_options=None, num_train: int = 0):
    """Builds a jitted `eval_step(variables, x, step=0) -> dict of [B] metrics`: every loss
    term of the recipe on the clean input (deterministic model, fixed keys) and the
    reconstruction metrics (`aejax.metrics.reconstruction_metrics`), plus "x_hat". `step`
    (the trained state's step) and `num_train` reach the terms as in training."""
    options = options or {}

    def eval_step(variables, x, step=0):
        fixed = jax.random.key(0)
        x_hat, aux = model.apply(variables, x, train=False, rngs={"latent": fixed})
        tensors = dict(x=x, key=fixed, step=jnp.asarray(step, jnp.int32), num_train=num_train)
        tensors |= model_tensors(model, variables, x, aux)
        out = losses.per_example_terms(weights, options, tensors)
        out["loss"] = sum(w * out[name] for name, w in weights.items())
        return {**out, **metrics.reconstruction_metrics(x, x_hat), "x_hat": x_hat}

    return jax.jit(eval_step, compiler_options=compiler_options)
