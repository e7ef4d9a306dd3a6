"""Reconstruction metrics, batched evaluation, and evaluation of a saved run."""

import os
from collections.abc import Callable

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
    fn: Callable[[jax.Array], dict[str, jax.Array]], x: np.ndarray, batch_size: int
) -> dict[str, np.ndarray]:
    """Applies a jitted per-example function to x in fixed-size batches.

    The last batch is padded (so `fn` compiles once) and the padding is dropped.

    Args:
      fn: maps [batch_size, ...] to a dict of [batch_size, ...] arrays.
      x: [N, ...] inputs.
    Returns:
      dict of [N, ...] numpy arrays.
    """
    n = len(x)
    out: dict[str, list] = {}
    for start in range(0, n, batch_size):
        chunk = x[start : start + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        for k, v in fn(chunk).items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate([np.asarray(a) for a in v])[:n] for k, v in out.items()}


def evaluate_run(workdir: str, step: int | None = None) -> dict[str, float]:
    """Loads a run's config and checkpoint and returns its test metrics (batch means).

    Args:
      workdir: the folder a `train_and_evaluate` run wrote.
      step: which checkpoint (default: the latest).
    Returns:
      `eval/<loss term>`, `eval/loss` and the `reconstruction_metrics`, averaged over the
      test split, plus `step`.
    """
    from aejax import train

    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
        raise AejaxError(f"workdir {workdir} holds no config.json: is it a training run?")
    exp = train.Experiment.from_workdir(workdir)
    state = exp.restore_or_init(step=step, require_checkpoint=True)
    metrics = exp.evaluate(state)
    return {"step": int(state.step), **metrics}
