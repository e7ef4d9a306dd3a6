"""aejax: autoencoders in JAX/Flax, every classic variant as a recipe of pure loss terms.

For notebooks, the main entry points are importable from the package (loaded on first use,
so `import aejax` stays light):

    from aejax import train_and_evaluate, TrainedModel, write_report, PCA, auroc
"""

import importlib

from aejax.errors import AejaxError, ConfigError, DataError

__version__ = "0.1.0"

_LAZY = {
    "train_and_evaluate": "aejax.train",
    "TrainedModel": "aejax.evaluate",
    "write_report": "aejax.report",
    "evaluate_bounds": "aejax.likelihood",
    "iwae_bound": "aejax.likelihood",
    "PCA": "aejax.metrics",
    "auroc": "aejax.metrics",
    "average_precision": "aejax.metrics",
    "linear_probe": "aejax.metrics",
}
__all__ = ["AejaxError", "ConfigError", "DataError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aejax' has no attribute {name!r}")
