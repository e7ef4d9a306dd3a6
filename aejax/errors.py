"""User-facing errors: one clear line that says what is wrong and where."""

from collections.abc import Mapping
from typing import Any


class AejaxError(ValueError):
    """A bad input from the user (config, data, workdir). Scripts print it as one line, exit 2."""


class ConfigError(AejaxError):
    """A config value that is unknown, of the wrong type or out of range."""


class DataError(AejaxError):
    """A data source that is missing, malformed or holds bad values."""


class TrainingDiverged(RuntimeError):
    """A loss term or the gradient became NaN or Inf, and config.on_nonfinite is 'stop'."""


def lookup(registry: Mapping[str, Any], name: str, *, what: str, where: str) -> Any:
    """Returns `registry[name]`, or raises ConfigError naming `where` and the valid choices.

    Args:
      registry: a plain dict from names to objects.
      name: the name asked for.
      what: what the registry holds, for the message (e.g. "model").
      where: the config field that named it (e.g. "config.model.name").
    """
    if name not in registry:
        valid = ", ".join(sorted(registry))
        raise ConfigError(f"{where}={name!r} is not a known {what}; valid: {valid}")
    return registry[name]
