"""What the scripts in experiments/ share: the --config flag, flag parsing, and user errors
as one line on stderr with exit code 2 (the traceback only with --verbose)."""

import errno
import os
import sys
import traceback
from collections.abc import Callable

from absl import app, flags, logging

from aejax.errors import AejaxError, Interrupted, SaveFailed, TrainingDiverged, root_cause

__all__ = ["AejaxError", "define_config", "run"]

flags.DEFINE_bool("verbose", False, "Show the full traceback of an error.")


def _verbose() -> bool:
    return any(a in ("--verbose", "--verbose=true", "--verbose=True") for a in sys.argv)


def _fail(message: str, code: int = 2) -> None:
    if _verbose():
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _not_orbax_errors(record) -> bool:
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def _config_error(e: BaseException) -> str:
    """One line for an error raised while loading --config and its overrides."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        spec = arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if arg == "--config" and i + 1 < len(args):  # the "--config PATH" form
            spec, arg = args[i + 1], f"--config {args[i + 1]}"
        if spec is not None and not os.path.isfile(path := spec.split(":", 1)[0]):
            return f"config file {path} (from {arg}) does not exist"
    cause = root_cause(e)
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    if isinstance(cause, KeyError | AttributeError):
        key = text.strip("'\"")
        overrides = [a.split("=")[0] for a in sys.argv[1:] if a.startswith("--config.")]
        named = [o for o in overrides if key in o.split(".")] or overrides
        return f"unknown config key {key!r} in {' '.join(named)}"
    return f"bad --config: {type(cause).__name__}: {text}"


def define_config(default: str) -> None:
    """Defines --config (a config file, ':preset' optional) with --config.a.b=value overrides.

    ml_collections applies the overrides while the flag is defined, so errors are caught here.
    """
    from ml_collections import config_flags

    try:
        config_flags.DEFINE_config_file(
            "config", default, "Experiment config file[:preset].", lock_config=True
        )
    except Exception as e:
        _fail(_config_error(e))


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        first = str(e).splitlines()[0]
        loading = first.startswith(("flag --config=", "flag --config "))  # the file, not a key
        if loading and (e.__cause__ or e.__context__) is not None:
            _fail(f"{first} {_config_error(e)}")
        _fail(first)  # the flag, its value and why, already in one line
    except Exception as e:  # config files run as code: name what went wrong, in one line
        _fail(_config_error(e))


def run(main: Callable[[list[str]], None]) -> None:
    """Runs `main` under absl. A user error (AejaxError) ends in one line on stderr and exit
    code 2; a diverged run (TrainingDiverged) in one line and exit code 1; a run stopped by
    SIGINT or SIGTERM (after saving a checkpoint) in one line and exit code 130 or 143."""

    def guarded(argv):
        if not flags.FLAGS.verbose:  # orbax logs every save at INFO level
            logging.set_verbosity(logging.WARNING)
            # and a failed save from each of its threads, with tracebacks: the failure ends
            # the run in one line (SaveFailed) instead
            logging.get_absl_handler().addFilter(_not_orbax_errors)
        if len(argv) > 1:
            _fail(f"unexpected arguments: {' '.join(argv[1:])}")
        if "config" in flags.FLAGS:
            try:  # a config file that failed to load reports only when first read
                flags.FLAGS.config.keys()
            except Exception as e:
                _fail(_config_error(e))
        try:
            main(argv)
        except AejaxError as e:
            _fail(str(e))
        except TrainingDiverged as e:
            _fail(f"training diverged at {e}", code=1)
        except SaveFailed as e:
            _fail(str(e), code=1)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            _fail(f"no space left on the disk while writing {e.filename or 'a file'}", code=1)
        except Interrupted as e:
            _fail(str(e), code=128 + e.signum)
        except KeyboardInterrupt:  # before the training loop took over the signal
            _fail("interrupted (SIGINT) before training started; nothing was trained", 130)

    app.run(guarded, flags_parser=_parse_flags)
