"""Names to objects: plain dicts, a getter with a clear error, and `module:function` names.

Every extension point (loss terms, corruptions, model families, data sources) is a plain
dict from names to functions, filled by a `register_*` function beside it. A config may
also name an object that lives in the user's own code as `module:function` (a module on
the Python path); `resolve` imports it and registers it under that name.
"""

import difflib
import importlib
from collections.abc import Callable, MutableMapping
from typing import Any

from aejax.errors import ConfigError


def lookup(registry: MutableMapping[str, Any], name: str, *, what: str, where: str) -> Any:
    """`registry[name]`, or ConfigError naming `where`, a close match and the valid names.

    Args:
      registry: a plain dict from names to objects.
      name: the name asked for.
      what: what the registry holds, for the message (e.g. "model").
      where: the config field that named it (e.g. "config.model.name").
    """
    if name not in registry:
        valid = ", ".join(sorted(registry))
        hint = did_you_mean(name, list(registry))
        raise ConfigError(f"{where}={name!r} is not a known {what}; valid: {valid}{hint}")
    return registry[name]


def did_you_mean(name: str, names: list[str]) -> str:
    """The hint " (did you mean 'x'?)" naming the closest of `names` to `name`, or ""."""
    close = difflib.get_close_matches(str(name), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_object(name: str, where: str, what: str) -> Any:
    """Imports `module:attribute` (the module on the Python path); ConfigError if it cannot."""
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"{where}: cannot import module {module_name!r} for {what} {name!r} ({e}); is "
            "it on the Python path (PYTHONPATH)?"
        ) from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"{where}: module {module_name!r} has no function {attr!r}")
    return obj


def resolve(
    registry: MutableMapping[str, Any],
    name: str,
    *,
    what: str,
    where: str,
    register: Callable[[str, Any], Any] | None = None,
) -> Any:
    """`registry[name]`; a `module:function` name not registered yet is imported, checked
    to be callable and registered (through `register(name, fn)`, or stored as is)."""
    if isinstance(name, str) and name not in registry and ":" in name:
        fn = import_object(name, where, what)
        if not callable(fn):
            raise ConfigError(f"{where}: {name!r} is not a function but a {type(fn).__name__}")
        if register is None:
            registry[name] = fn
        else:
            register(name, fn)
    return lookup(registry, name, what=what, where=where)


def add(registry: MutableMapping[str, Any], name: str, fn: Any, what: str) -> Any:
    """Registers `fn` under `name`; ConfigError if it is not callable or the name is taken
    by another function."""
    if not callable(fn):
        raise ConfigError(f"{what} {name!r} must be a function, not {type(fn).__name__}")
    if name in registry and registry[name] is not fn:
        raise ConfigError(f"a {what} named {name!r} is registered already")
    registry[name] = fn
    return fn
