"""aejax: autoencoders in JAX/Flax, every classic variant as a recipe of pure loss terms."""

from aejax.errors import AejaxError, ConfigError, DataError

__version__ = "0.1.0"
__all__ = ["AejaxError", "ConfigError", "DataError", "__version__"]
