"""The bundled experiment configs: one `get_config(preset)` file per experiment.

They ship inside the package, so the installed `aejax` command finds them by name from any
directory: `aejax train vae:mnist` is this folder's `vae.py` with the preset `mnist`. Each
file names its presets in a `PRESETS` tuple (the default first); its docstring's first line
says what it trains;  the rest gives the command, the expected numbers and the time.
"""

import ast
import os

from aejax.errors import ConfigError
from aejax.registry import did_you_mean

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """The bundled configs' names, sorted (`vae` for vae.py)."""
    return sorted(
        f[: -len(".py")]
        for f in os.listdir(CONFIG_DIR)
        if f.endswith(".py") and not f.startswith("_")
    )


def path(name: str) -> str | None:
    """The file of the bundled config `name` ("vae" or "vae.py"), or None if there is none."""
    stem = name[: -len(".py")] if name.endswith(".py") else name
    if os.path.basename(stem) != stem or stem not in names():
        return None
    return os.path.join(CONFIG_DIR, stem + ".py")


def _module(name: str) -> ast.Module:
    with open(path(name), encoding="utf-8") as f:
        return ast.parse(f.read())


def docstring(name: str) -> str:
    """The bundled config's docstring (read without running the file)."""
    return ast.get_docstring(_module(name)) or ""


def presets(name: str) -> tuple[str, ...]:
    """The bundled config's presets, the default first (its module's `PRESETS`)."""
    import importlib

    # PRESETS may be computed (cae.py builds it from its architectures), so import the file.
    return tuple(importlib.import_module(f"{__name__}.{name}").PRESETS)


def unknown_preset(config: str, preset: str, valid) -> ConfigError:
    """The error of a config file's `get_config` asked for a preset it does not have."""
    return ConfigError(
        f"config {config}: unknown preset {preset!r}; valid: {', '.join(valid)}"
        f"{did_you_mean(preset, list(valid))}"
    )
