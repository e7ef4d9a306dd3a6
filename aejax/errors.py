"""User-facing errors: one clear line that says what is wrong and where."""


class AejaxError(ValueError):
    """A bad input from the user (config, data, workdir). Scripts print it as one line, exit 2."""


class ConfigError(AejaxError):
    """A config value that is unknown, of the wrong type or out of range."""


class DataError(AejaxError):
    """A data source that is missing, malformed or holds bad values."""


class TrainingDiverged(RuntimeError):
    """A loss term or the gradient became NaN or Inf, and config.on_nonfinite is 'stop'."""


class Interrupted(Exception):
    """Training was stopped by SIGINT or SIGTERM; a checkpoint of the step reached was saved.

    Attributes:
      signum: the signal's number (exit code 128 + signum, as shells report it).
      step: the step of the saved checkpoint.
      workdir: the run's workdir.
    """

    def __init__(self, signum: int, step: int, workdir: str):
        import signal

        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} at step {step}; a checkpoint of that step is saved in "
            f"{workdir}: run the same command again to resume"
        )
        self.signum, self.step, self.workdir = signum, step, workdir


class SaveFailed(RuntimeError):
    """A checkpoint could not be written (a full disk, a lost mount). The run stops at the
    first failed save; the checkpoints saved before it are intact. Scripts exit 1."""


def root_cause(e: BaseException) -> BaseException:
    """The first exception of `e`'s chain of causes (a chain can loop back on itself)."""
    seen = {id(e)}
    while (nxt := e.__cause__ or e.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        e = nxt
    return e


class MissingExtra(AejaxError):
    """A feature whose packages are an optional extra of aejax that is not installed."""


def import_extra(module: str, extra: str, purpose: str):
    """`import module`, or MissingExtra naming the extra that installs it, for the parts of
    aejax whose dependencies only some users need (TFDS sources, grain streaming)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        if (e.name or module).split(".")[0] != module.split(".")[0]:
            raise  # the package is there but broken: its own error says more
        raise MissingExtra(
            f"{purpose} needs the package {module}, which is not installed: "
            f"pip install 'aejax[{extra}]'"
        ) from None
