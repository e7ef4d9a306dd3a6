"""User-facing errors: one clear line that says what is wrong and where."""


class AejaxError(ValueError):
    """A bad input from the user (config, data, workdir). Scripts print it as one line, exit 2."""


class ConfigError(AejaxError):
    """A config value that is unknown, of the wrong type or out of range."""


class DataError(AejaxError):
    """A data source that is missing, malformed or holds bad values."""


class TrainingDiverged(RuntimeError):
    """A loss term or the gradient became NaN or Inf, and config.on_nonfinite is 'stop'."""
