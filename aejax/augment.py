"""Data augmentation with a generative model's samples: the labelled subsets of a
semi-supervised protocol, pseudo-labels a classifier is confident of, and the training set
that mixes the labelled images with labelled samples.

Labelled samples come from `aejax.samplers.ClassConditionalGaussianSampler` (a Gaussian per
class fitted to the labelled images' codes, decoded), or from the prior of an unsupervised
model (`aejax.sampling.sample_prior`) labelled by a classifier trained on the labelled
images alone (`confident_labels`). experiments/app_augment.py measures whether they help
the small classifier of `aejax.features` on MNIST.
"""

import numpy as np

from aejax.errors import AejaxError


def balanced_split(labels, sizes: tuple[int, ...], seed: int) -> tuple[np.ndarray, ...]:
    """Disjoint class-balanced subsets of the examples with these labels.

    Args:
      labels: [N] integer labels.
      sizes: each subset's size, a multiple of the number of classes K (size / K examples of
        each class), e.g. (100, 200) for 100 labelled and 200 validation examples.
      seed: the draw's seed (numpy's generator): each class's examples are permuted once and
        cut into the subsets in order.
    Returns:
      one sorted index array [size] per subset.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise AejaxError(f"labels must be integers shaped [N]; got {labels.dtype} {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    for size in sizes:
        if not isinstance(size, int) or size < len(classes) or size % len(classes):
            raise AejaxError(
                f"subset size {size!r} must be a positive multiple of the {len(classes)} classes"
            )
    per_class = [s // len(classes) for s in sizes]
    if sum(per_class) > counts.min():
        raise AejaxError(
            f"subsets of {', '.join(map(str, sizes))} need {sum(per_class)} examples of each "
            f"class; class {classes[counts.argmin()]} has {counts.min()}"
        )
    rng = np.random.default_rng(seed)
    chosen = [[] for _ in sizes]
    for k in classes:
        idx = rng.permutation(np.flatnonzero(labels == k))
        start = 0
        for out, m in zip(chosen, per_class, strict=True):
            out.append(idx[start : start + m])
            start += m
    return tuple(np.sort(np.concatenate(c)) for c in chosen)


def confident_labels(logits, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-labels: each example's most probable class, kept when its softmax probability
    is at least `threshold` (in [0, 1]; 0 keeps every one).

    Args:
      logits: [N, K] a classifier's logits.
    Returns:
      (keep [N] bool, labels [N] int32, the argmax of every row).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or not np.all(np.isfinite(logits)):
        raise AejaxError(f"logits must be finite and shaped [N, K]; got shape {logits.shape}")
    if isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
        raise AejaxError(f"threshold={threshold!r} must be a number in [0, 1]")
    z = logits - logits.max(1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return probs.max(1) >= threshold, np.argmax(logits, 1).astype(np.int32)


def mix(real_x, real_y, extra_x, extra_y) -> tuple[np.ndarray, np.ndarray]:
    """The labelled examples repeated r = max(1, round(len(extra) / len(real))) times,
    followed by the labelled samples, so that real and generated examples weigh about
    equally however many samples are added: ([r·N + M, ...], [r·N + M])."""
    real_x, extra_x = np.asarray(real_x), np.asarray(extra_x)
    if (
        real_x.shape[1:] != extra_x.shape[1:]
        or len(real_x) != len(real_y)
        or len(extra_x) != len(extra_y)
    ):
        raise AejaxError(
            f"cannot mix examples {real_x.shape} (labels {np.shape(real_y)}) with samples "
            f"{extra_x.shape} (labels {np.shape(extra_y)})"
        )
    r = max(1, round(len(extra_x) / max(len(real_x), 1)))
    x = np.concatenate([np.repeat(real_x[None], r, 0).reshape(-1, *real_x.shape[1:]), extra_x])
    y = np.concatenate([np.tile(np.asarray(real_y), r), np.asarray(extra_y)])
    return x.astype(np.float32), y.astype(np.int32)
