"""What the commands share: the --config flag (a bundled config by name, or a file), flag
parsing, --help, and user errors as one line on stderr with exit code 2 (the traceback only
with --verbose).

Nothing here defines a flag at import: each command defines its flags when it runs (in
`aejax.commands` or a script's `if __name__ == "__main__"`), so importing aejax leaves the
process's absl flags as they were.
"""

import difflib
import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from absl import app, flags, logging

from aejax import configs
from aejax.errors import AejaxError, Interrupted, SaveFailed, TrainingDiverged, root_cause
from aejax.registry import did_you_mean

__all__ = ["AejaxError", "config_spec", "define_config", "print_help", "run"]

_VERBOSE_HELP = "Show the full traceback of an error."
_CONFIG_HELP = (
    "The experiment: a bundled config by name with an optional preset (vae, vae:mnist; "
    "`aejax list` shows them) or a config file (path/to/file.py[:preset]). Any field can "
    "be overridden with --config.a.b=value."
)


# The default config of the command that defined --config: the fields a hint is drawn from
# when no --config was given.
_state: dict[str, str] = {}


def _verbose() -> bool:
    return any(a in ("--verbose", "--verbose=true", "--verbose=True") for a in sys.argv)


def _fail(message: str, code: int = 2) -> None:
    if _verbose():
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _not_orbax_errors(record) -> bool:
    return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def config_spec(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """(the --config value as given, how it was given) from argv, or (None, None)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1], arg
        if arg == "--config" and i + 1 < len(argv):  # the "--config PATH" form
            return argv[i + 1], f"--config {argv[i + 1]}"
    return None, None


def _resolve(spec: str) -> str:
    """A bundled config's name ("vae:mnist", "vae.py:mnist") as its file's path, the preset
    kept; any other spec (a path) as it is."""
    name, colon, preset = spec.partition(":")
    bundled = configs.path(name)
    return f"{bundled}{colon}{preset}" if bundled else spec


def _key_hint(key: str, override: str) -> str:
    """A "did you mean" hint for an unknown key of `--config.a.key=...`, from the fields of
    the config it overrides (loaded without the overrides): a field beside it, else a field
    of that name anywhere (`--config.lerning_rate` -> 'optimizer.learning_rate')."""
    from aejax import config as config_lib

    spec = config_spec(sys.argv[1:])[0] or _state.get("default")
    try:
        config = node = config_lib.load_config(_resolve(spec))
        for part in override.removeprefix("--config.").split("."):
            if part == key:
                break
            node = node[part]
        if hint := did_you_mean(key, list(node.keys())):
            return hint
        paths = {}  # field name -> its first dotted path in the whole config
        stack = [("", config)]
        while stack:
            prefix, d = stack.pop(0)
            for name in d.keys():
                if hasattr(d[name], "keys"):
                    stack.append((f"{prefix}{name}.", d[name]))
                paths.setdefault(name, f"{prefix}{name}")
        close = difflib.get_close_matches(key, list(paths), n=1)
        return f" (did you mean {paths[close[0]]!r}?)" if close else ""
    except Exception:  # no hint is better than a second error
        return ""


def _config_error(e: BaseException) -> str:
    """One line for an error raised while loading --config and its overrides."""
    spec, given = config_spec(sys.argv[1:])
    if spec is not None and not os.path.isfile(path := _resolve(spec).split(":", 1)[0]):
        hint = did_you_mean(spec.split(":", 1)[0], configs.names())
        bundled = ", ".join(configs.names())
        return f"config file {path} (from {given}) does not exist{hint}; bundled: {bundled}"
    cause = root_cause(e)
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    if isinstance(cause, AejaxError):
        return text
    if isinstance(cause, KeyError | AttributeError):
        key = text.strip("'\"")
        overrides = [a.split("=")[0] for a in sys.argv[1:] if a.startswith("--config.")]
        named = [o for o in overrides if key in o.split(".")] or overrides
        hint = _key_hint(key, named[0]) if named else ""
        return f"unknown config key {key!r} in {' '.join(named)}{hint}"
    return f"bad --config: {type(cause).__name__}: {text}"


def define_config(default: str) -> None:
    """Defines --config (a bundled config's name or a config file, ':preset' optional) with
    --config.a.b=value overrides, from sys.argv. Call it when the command runs, not at import.

    A bundled name in sys.argv's --config is replaced by its file's path, as ml_collections
    loads files. ml_collections applies the overrides while the flag is defined, so errors
    are caught here.
    """
    from ml_collections import config_flags

    for i, arg in enumerate(sys.argv):
        if arg.startswith("--config="):
            sys.argv[i] = "--config=" + _resolve(arg.split("=", 1)[1])
        elif arg == "--config" and i + 1 < len(sys.argv):
            sys.argv[i + 1] = _resolve(sys.argv[i + 1])
    _state["default"] = default
    try:
        config_flags.DEFINE_config_file("config", _resolve(default), _CONFIG_HELP, lock_config=True)
    except Exception as e:
        _fail(_config_error(e))


def print_help(usage: str, names: Sequence[str], epilog: str = "") -> None:
    """Prints `usage`, each named flag with its help and default, and `epilog` to stdout."""
    print(usage.strip() + "\n\nflags:")
    for name in names:
        if name in ("config", "verbose"):
            print(f"  --{name}: {_CONFIG_HELP if name == 'config' else _VERBOSE_HELP}")
            continue
        flag = flags.FLAGS[name]
        value = ",".join(flag.default) if isinstance(flag.default, list) else flag.default
        default = "" if flag.default is None else f" (default: {value})"
        required = " (required)" if name == "workdir" and flag.default is None else ""
        print(f"  --{name}: {flag.help}{default}{required}")
    if epilog:
        print("\n" + epilog.strip())


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        if isinstance(root_cause(e), AejaxError):  # a config file's own one-line error
            _fail(str(root_cause(e)))
        first = str(e).splitlines()[0]
        loading = first.startswith(("flag --config=", "flag --config "))  # the file, not a key
        if loading and (e.__cause__ or e.__context__) is not None:
            _fail(f"{first} {_config_error(e)}")
        _fail(first)  # the flag, its value and why, already in one line
    except Exception as e:  # config files run as code: name what went wrong, in one line
        _fail(_config_error(e))


def run(main: Callable[[list[str]], None], on_error: Callable[[AejaxError], str] = str) -> None:
    """Runs `main` under absl with sys.argv. A user error (AejaxError) ends in one line on
    stderr (`on_error` of its text) and exit code 2; a diverged run (TrainingDiverged) in
    one line and exit code 1; a run stopped by SIGINT or SIGTERM (after saving a checkpoint)
    in one line and exit code 130 or 143."""
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, _VERBOSE_HELP)

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
            _fail(on_error(e))
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
