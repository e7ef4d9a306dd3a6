"""What the scripts in experiments/ share: flag parsing and one-line errors with exit code 2."""

import sys
import traceback
from collections.abc import Callable

from absl import app, flags, logging

from aejax.errors import AejaxError

__all__ = ["AejaxError", "run"]

flags.DEFINE_bool("verbose", False, "Show the full traceback of an error.")


def _fail(message: str) -> None:
    if "--verbose" in sys.argv or "--verbose=true" in sys.argv:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _fail(str(e).splitlines()[0])
    except Exception as e:  # config files run as code: name what went wrong, in one line
        cause = e.__cause__ or e
        _fail(f"bad --config: {type(cause).__name__}: {str(cause).splitlines()[0]}")


def run(main: Callable[[list[str]], None]) -> None:
    """Runs `main` under absl; user errors (AejaxError) end in one line on stderr, exit 2."""

    def guarded(argv):
        if not flags.FLAGS.verbose:  # orbax logs every save at INFO level
            logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except AejaxError as e:
            _fail(str(e))

    app.run(guarded, flags_parser=_parse_flags)
