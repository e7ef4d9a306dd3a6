"""Reconstruction metrics, batched evaluation, and a saved run's model for applications.

`TrainedModel.load(workdir)` gives a trained run's encoder, decoder and per-example
metrics as jitted functions over whole splits (fixed-size batches, compiled once), for the
report (`aejax.report`) and for notebooks.
"""

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import AejaxError


def reconstruction_metrics(x: jax.Array, x_hat: jax.Array) -> dict[str, jax.Array]:
    """Per-example reconstruction metrics for data in [0, 1].

    Args:
      x: targets, [B, ...].
      x_hat: reconstructions, same shape.
    Returns:
      dict of [B] arrays: `sq_err_per_image` (Σ_i (x̂_i − x_i)²), `mse_per_pixel`
      (its mean over the D features), `bce_per_pixel` (mean binary cross-entropy of x̂
      clipped to [1e-7, 1 − 1e-7], in nats) and `psnr` (10·log10(1 / mse_per_pixel), in dB,
      for a peak value of 1).
    """
    b = x.shape[0]
    x = x.reshape(b, -1)
    x_hat = x_hat.reshape(b, -1)
    sq = jnp.sum(jnp.square(x_hat - x), axis=1)
    mse = sq / x.shape[1]
    p = jnp.clip(x_hat, 1e-7, 1.0 - 1e-7)
    bce = -jnp.mean(x * jnp.log(p) + (1.0 - x) * jnp.log1p(-p), axis=1)
    psnr = 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-12))
    return {"sq_err_per_image": sq, "mse_per_pixel": mse, "bce_per_pixel": bce, "psnr": psnr}


def map_batches(
    fn: Callable[[jax.Array], dict[str, jax.Array]],
    x: np.ndarray,
    batch_size: int,
    pad: bool = True,
) -> dict[str, np.ndarray]:
    """Applies a jitted per-example function to x in batches of `batch_size`.

    Args:
      fn: maps [b, ...] to a dict of [b, ...] arrays.
      x: [N, ...] inputs.
      pad: pad the last batch with copies of its last example, and drop their outputs, so
        that `fn` compiles once. Loss terms computed over the whole batch (`kl_sparsity`'s
        mean activation) need pad=False: the last batch then runs at its own size.
    Returns:
      dict of [N, ...] numpy arrays.
    """
    n = len(x)
    out: dict[str, list] = {}
    for start in range(0, n, batch_size):
        chunk = x[start : start + batch_size]
        fill = batch_size - len(chunk) if pad else 0
        if fill:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fill, axis=0)])
        for k, v in fn(chunk).items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate([np.asarray(a) for a in v])[:n] for k, v in out.items()}


@dataclasses.dataclass
class TrainedModel:
    """A trained run: its experiment (config, data, model) and the variables of one step.

    Every method takes a whole split [N, ...] as numpy and returns numpy, computed in
    batches of `config.eval_batch_size` by jitted functions; the model is deterministic
    (a VAE's code is its posterior mean μ).
    """

    exp: Any  # aejax.train.Experiment
    variables: dict
    step: int

    @classmethod
    def load(cls, workdir: str, step: int | None = None) -> "TrainedModel":
        """The run in `workdir` at checkpoint `step` (default: the newest)."""
        from aejax import train

        if not os.path.isfile(os.path.join(workdir, "config.json")):
            raise AejaxError(f"workdir {workdir} holds no config.json: is it a training run?")
        return cls._restore(train.Experiment.from_workdir(workdir), step)

    def at_step(self, step: int | None = None) -> "TrainedModel":
        """The same run at checkpoint `step` (default: the newest), reusing this one's
        experiment and data (no second load of the dataset)."""
        return self._restore(self.exp, step)

    @classmethod
    def _restore(cls, exp, step: int | None) -> "TrainedModel":
        state = exp.restore_or_init(step=step, require_checkpoint=True)
        variables = {"params": state.params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        return cls(exp, variables, int(state.step))

    @property
    def model(self):
        return self.exp.model

    @property
    def dataset(self):
        return self.exp.dataset

    def _map(self, fn, x: np.ndarray) -> np.ndarray:
        out = map_batches(
            lambda b: {"out": fn(self.variables, b)},
            np.asarray(x, np.float32),
            self.exp.config.eval_batch_size,
        )
        return out["out"]

    @functools.cached_property
    def _encode(self):
        return jax.jit(lambda v, x: self.model.apply(v, x, method="encode"))

    @functools.cached_property
    def _decode(self):
        return jax.jit(lambda v, z: self.model.apply(v, z, method="decode")[0])

    @functools.cached_property
    def _per_example(self):
        from aejax import train

        return train.make_eval_step(self.model, self.exp.all_weights, self.exp.options)

    @functools.cached_property
    def code_shape(self) -> tuple[int, ...]:
        """The shape of one example's code."""
        x = jax.ShapeDtypeStruct((1, *self.dataset.example_shape), jnp.float32)
        return tuple(jax.eval_shape(self._encode, self.variables, x).shape[1:])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """x [N, *example_shape] -> codes [N, *code_shape]."""
        return self._map(self._encode, x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """codes [N, *code_shape] -> reconstructions x̂ [N, *example_shape]."""
        return self._map(self._decode, z)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """x -> decode(encode(x)), [N, *example_shape]."""
        return self.decode(self.encode(x))

    def per_example(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The eval step's metrics of each example: every loss term of the recipe, `loss`
        (for a VAE, a one-sample negative ELBO with a fixed key) and the
        `reconstruction_metrics`; each [N]."""
        out = map_batches(
            lambda b: {
                k: v for k, v in self._per_example(self.variables, b).items() if k != "x_hat"
            },
            np.asarray(x, np.float32),
            self.exp.config.eval_batch_size,
            pad=False,  # terms over the whole batch (kl_sparsity) would see the padding
        )
        return out


def evaluate_run(workdir: str, step: int | None = None) -> dict[str, float]:
    """Loads a run's config and checkpoint and returns its test metrics (means).

    Args:
      workdir: the folder a `train_and_evaluate` run wrote.
      step: which checkpoint (default: the latest).
    Returns:
      `eval/<loss term>`, `eval/loss` and the `reconstruction_metrics`, averaged over the
      test split, plus `step`.
    """
    trained = TrainedModel.load(workdir, step)
    per_example = trained.per_example(trained.dataset.test_x)
    return {
        "step": trained.step,
        **{f"eval/{k}": float(np.mean(v)) for k, v in per_example.items()},
    }
