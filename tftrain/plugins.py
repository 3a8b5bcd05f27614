"""User modules the user named (`plugins:` in a config, `--plugin MODULE` on a command), and
the Keras objects they register, usable by their registered names ("my_pkg>FocalLoss").

Importing runs code, so it happens only here and only for modules the user named: a config the
user runs is the user's program. A run directory, a model file or a data file never names a
module that gets imported (tftrain.security refuses what it cannot load without one). Modules
are imported at most once per process; `imported()` says which, so that a run directory whose
config names plugins is worked on only when the user gave the same modules again.

This module imports no TensorFlow itself: the plugin modules do, when they are imported, and a
config that names none never gets here past `check_module_name`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import re
from collections.abc import Iterator, Sequence
from typing import Any

from tftrain.errors import ConfigError, UserError
from tftrain.spec.base import show, suggest

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_imported: list[str] = []  # modules imported at the user's request, in order

# The Keras base class each kind of registered object must derive from (a loss or metric may
# also be a registered function: Keras compiles those as it does its own).
KINDS = {"layer": "layers.Layer", "loss": "losses.Loss", "metric": "metrics.Metric",
         "callback": "callbacks.Callback", "initializer": "initializers.Initializer",
         "regularizer": "regularizers.Regularizer", "constraint": "constraints.Constraint"}
_FUNCTIONS_ALLOWED = ("loss", "metric")


def is_registered_name(name: Any) -> bool:
    """Whether `name` is written as a registered name, "package>Name"."""
    return isinstance(name, str) and ">" in name


def check_module_name(value: Any) -> str:
    """A dotted module name (`my_pkg.layers`); ValueError saying what was given otherwise."""
    if not isinstance(value, str) or not _MODULE.fullmatch(value):
        raise ValueError(f"expected a Python module name such as my_pkg.layers, got {show(value)} "
                         "(a module is imported by name from the Python path, never from a file path)")
    return value


def import_plugins(modules: Sequence[str], where: str = "plugins") -> None:
    """Import the user's `modules` (once each); a module that is not found or fails to import
    is a ConfigError naming it."""
    for i, name in enumerate(modules):
        if name in _imported:
            continue
        here = f"{where}[{i}]" if where == "plugins" else where
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a parent package that is missing or not a package
            found = None
        if found is None:
            raise ConfigError(f"{here}: plugin module {show(name)} not found: it must be importable by this "
                              "Python (installed, or its folder on PYTHONPATH)")
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 (the user's module may raise anything)
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ConfigError(f"{here}: plugin module {show(name)} failed to import: "
                              f"{exc.__class__.__name__}: {first}") from None
        _imported.append(name)


def provides(name: str) -> bool:
    """Whether a plugin module the user named registers `name` (never true without one)."""
    if not _imported or not is_registered_name(name):
        return False
    import keras

    return keras.saving.get_registered_object(name) is not None


def imported() -> tuple[str, ...]:
    """The modules imported at the user's request in this process."""
    return tuple(_imported)


def require(needed: Sequence[str], given: Sequence[str], what: str, python: bool = False) -> None:
    """A command on `what` (a run directory) whose config names plugins `needed` works only
    when the user named the same modules (`given`); else one line saying how (`python`: as the
    Python API takes them)."""
    missing = [name for name in needed if name not in given]
    if missing:
        flags = f"plugins={list(needed)!r}" if python else " ".join(f"--plugin {name}" for name in missing)
        raise UserError(f"{what}: its config names plugins ({', '.join(needed)}), which tftrain imports only when "
                        f"you name them: pass {flags} (only if you trust that code)")


# -- checking names while a config is validated -------------------------------------------------

# The plugins of the config being validated, and whether they are imported (then registered
# names are looked up; otherwise, as for a run directory read without --plugin, they are only
# checked for form, and looked up when the run's model is built).
_CURRENT: contextvars.ContextVar[tuple[tuple[str, ...], bool] | None] = contextvars.ContextVar(
    "tftrain_plugins", default=None)


@contextlib.contextmanager
def validating(raw_plugins: Any) -> Iterator[None]:
    """The context `tftrain.spec.loading.validate` checks a config in: its `plugins` list as given."""
    modules = tuple(m for m in raw_plugins if isinstance(m, str)) if isinstance(raw_plugins, list) else ()
    token = _CURRENT.set((modules, bool(modules) and all(m in _imported for m in modules)))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check_entry(kind: str, name: str, params: dict[str, Any]) -> None:
    """A registered `name` used as a `kind` with `params`: some plugin must be named, and when
    the plugins are imported, one must register a `kind` by that name taking those parameters."""
    modules, loaded = _CURRENT.get() or ((), False)
    if not modules:
        raise ValueError(f"{kind} {show(name)} is a plugin's registered name, but the config names no plugins: "
                         "add the module that registers it to plugins: [...] (or pass --plugin MODULE)")
    if loaded:
        check_parameters(lookup(kind, name), params, f"{kind} '{name}'")


def lookup(kind: str, name: str):
    """The class (or function) a plugin registered as `name`, which must be a `kind`; ValueError
    naming what is registered otherwise."""
    import keras

    found = keras.saving.get_registered_object(name)
    if found is None:
        names = [n for n, obj in keras.saving.get_custom_objects().items() if ">" in n and _is_kind(obj, kind)]
        listed = f"; registered {kind}s: {', '.join(sorted(names))}" if names else f"; no plugin registers a {kind}"
        raise ValueError(f"unknown {kind} {show(name)}: no plugin module registers it{suggest(name, names)}{listed} "
                         f"(plugins: {', '.join(_imported) or 'none'})")
    if not _is_kind(found, kind):
        raise ValueError(f"{show(name)} is registered, but it is not a {kind} (keras.{KINDS[kind]}"
                         f"{' or a function' if kind in _FUNCTIONS_ALLOWED else ''}): {_describe(found)}")
    return found


def _is_kind(obj: Any, kind: str) -> bool:
    import keras

    base = keras
    for part in KINDS[kind].split("."):
        base = getattr(base, part)
    if inspect.isclass(obj):
        return issubclass(obj, base)
    return kind in _FUNCTIONS_ALLOWED and inspect.isfunction(obj)


def _describe(obj: Any) -> str:
    if inspect.isclass(obj):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return f"{type(obj).__name__} {getattr(obj, '__qualname__', obj)!r}"


def check_parameters(target: Any, params: dict[str, Any], what: str) -> None:
    """`params` against the signature of `target` (a class's __init__, or a function's extra
    arguments): unknown parameters with a did-you-mean, and required ones that are missing."""
    if not inspect.isclass(target):
        if params:
            raise ValueError(f"{what}: a registered function takes no parameters, got {', '.join(params)}")
        return
    accepted, required, open_ended = _signature(target)
    for key in params:
        if key not in accepted and not open_ended:
            raise ValueError(f"{what}: unknown parameter {show(key)}{suggest(str(key), accepted)}; "
                             f"valid: {', '.join(accepted) or 'none'}")
    missing = [key for key in required if key not in params]
    if missing:
        raise ValueError(f"{what}: required parameter '{missing[0]}' is missing")


def _signature(cls: type) -> tuple[list[str], list[str], bool]:
    """(accepted keyword names, required ones, whether any keyword goes): the class's own
    __init__, and, where it passes **kwargs on, its bases' named parameters."""
    accepted, required = [], []
    chain = [k for k in cls.__mro__ if k is not object and "__init__" in vars(k)]
    for depth, klass in enumerate(chain):
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        for p in params:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in accepted:
                accepted.append(p.name)
                if depth == 0 and p.default is p.empty:
                    required.append(p.name)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return accepted, required, False
    return accepted, required, bool(chain)  # every __init__ passes **kwargs on: any keyword goes


def accepts(cls: type, key: str) -> bool:
    """Whether the class's constructor takes the keyword `key`."""
    accepted, _, open_ended = _signature(cls)
    return open_ended or key in accepted


def lookup_or_error(kind: str, name: str):
    """`lookup` for a builder: a name no plugin registers (any more) is a ConfigError."""
    try:
        return lookup(kind, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build(kind: str, name: str, params: dict[str, Any]):
    """An instance of what a plugin registered as `name` (a registered function as it is)."""
    target = lookup_or_error(kind, name)
    if not inspect.isclass(target):
        return target
    try:
        return target(**params)
    except Exception as exc:  # noqa: BLE001 (the plugin's constructor may raise anything)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ConfigError(f"{kind} {name}: {exc.__class__.__name__}: {first}") from None


def snake_name(name: str) -> str:
    """The name a run logs a plugin metric under when the config gives none: "my_pkg>MacroF1"
    -> "macro_f1" (Keras's snake_case of the class part)."""
    bare = re.sub(r"\W+", "", name.rsplit(">", 1)[-1])
    bare = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", bare)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", bare).lower()
