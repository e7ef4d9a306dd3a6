"""A saved run as functions: `TrainedModel.load(workdir)` gives a trained run's encoder,
decoder and per-example metrics as jitted functions over whole splits (fixed-size batches,
compiled once), for the report (`aejax.report`) and for notebooks.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from aejax.data import map_batches
from aejax.errors import AejaxError
from aejax.metrics import reconstruction_metrics
from aejax.train import Experiment
from aejax.train.state import variables as state_variables
from aejax.train.workdir import holds_run

__all__ = ["TrainedModel", "evaluate_run", "map_batches", "reconstruction_metrics"]


@dataclasses.dataclass
class TrainedModel:
    """A trained run: its experiment (config, data, model) and the variables of one step.

    Every method takes a whole split [N, ...] as numpy and returns numpy, computed in
    batches of `config.eval_batch_size` by jitted functions; the model is deterministic
    (a VAE's code is its posterior mean μ).
    """

    exp: Experiment
    variables: dict
    step: int

    @classmethod
    def load(cls, workdir: str, step: int | None = None) -> "TrainedModel":
        """The run in `workdir` at checkpoint `step` (default: the newest)."""
        if not holds_run(workdir):
            raise AejaxError(
                f"workdir {workdir} holds no config.json or checkpoints/: is it a training run?"
            )
        return cls._restore(Experiment.from_workdir(workdir), step)

    def at_step(self, step: int | None = None) -> "TrainedModel":
        """The same run at checkpoint `step` (default: the newest), reusing this one's
        experiment and data (no second load of the dataset)."""
        return self._restore(self.exp, step)

    @classmethod
    def _restore(cls, exp, step: int | None) -> "TrainedModel":
        state = exp.restore_or_init(step=step, require_checkpoint=True)
        return cls(exp, state_variables(state.params, state.model_state), int(state.step))

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

    def _jit(self, fn):
        return jax.jit(fn, compiler_options=self.exp.compiler_options(jax.default_backend()))

    @functools.cached_property
    def _encode(self):
        return self._jit(lambda v, x: self.model.apply(v, x, method="encode"))

    @functools.cached_property
    def _decode(self):
        return self._jit(lambda v, z: self.model.apply(v, z, method="decode")[0])

    @functools.cached_property
    def _per_example(self):
        return self.exp.eval_step()

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
                k: v
                for k, v in self._per_example(self.variables, b, self.step).items()
                if k != "x_hat"
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
      `test/<loss term>`, `test/loss` and the `reconstruction_metrics`, averaged over the
      test split, plus `step`.
    """
    trained = TrainedModel.load(workdir, step)
    per_example = trained.per_example(trained.dataset.test_x)
    return {
        "step": trained.step,
        **{f"test/{k}": float(np.mean(v)) for k, v in per_example.items()},
    }
