"""Batch order as a pure function of (seed, step), and functions mapped over arrays in batches.

The training set is reshuffled every epoch with a permutation seeded by (seed, epoch);
step s reads rows [i·B, (i+1)·B) of epoch s // steps_per_epoch's permutation, with
i = s % steps_per_epoch (the last incomplete batch of an epoch is dropped). A resumed run, or
a run on many devices, therefore sees exactly the batches an uninterrupted one does.
"""

import functools
from collections.abc import Callable

import jax
import numpy as np


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the n training examples in `epoch`: int32 [n]."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n).astype(np.int32)
    perm.flags.writeable = False
    return perm


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Number of full batches in an epoch of n examples."""
    return n // batch_size


def batch_indices(seed: int, start_step: int, num_steps: int, n: int, batch_size: int):
    """Indices of the examples of steps [start_step, start_step + num_steps).

    Returns:
      int32 [num_steps, batch_size]: row k holds the batch of step start_step + k.
    """
    spe = steps_per_epoch(n, batch_size)
    rows = []
    for step in range(start_step, start_step + num_steps):
        epoch, i = divmod(step, spe)
        rows.append(epoch_permutation(seed, epoch, n)[i * batch_size : (i + 1) * batch_size])
    return np.stack(rows)


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
