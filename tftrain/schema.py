"""Building blocks of the config schema, shared by tftrain.config and the model types in
tftrain.models: the strict base model and the wording of validation messages.

No TensorFlow or NumPy here: `tftrain validate` reads every schema.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Collection, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from tftrain import catalog


class Strict(BaseModel):
    """Unknown keys are errors, types are not coerced, and a validated config cannot change.

    Validators are built on first use (`defer_build`), inside `building_validators`: a class
    no config uses (another dataset's options) is never built.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


@contextlib.contextmanager
def building_validators() -> Iterator[None]:
    """Build the schema classes' (deferred) validators without pydantic's plugin lookup, which
    reads the entry points of every installed distribution (117 in the dev environment, ~5% of
    `tftrain validate`) to find observability plugins that have no business with tftrain's own
    config classes. typer does the same around its TypeAdapters (typer/_adapters.py,
    disabled_pydantic_plugins); the variable is restored, so validators built elsewhere still
    get their plugins."""
    previous = os.environ.get(_NO_PLUGINS)
    os.environ[_NO_PLUGINS] = "__all__"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_NO_PLUGINS]
        else:
            os.environ[_NO_PLUGINS] = previous


_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"  # read by pydantic.plugin._loader.get_plugins


class NameCheck:
    """A field validator for a name from a table: `field_validator("x")(NameCheck("loss", LOSSES))`.

    The value must be one of `names` (or null); the message is `unknown <kind> "x" — did you mean
    'y'?; expected one of: ...`. `tftrain schema` lists `names` as the field's allowed values
    (an enum), for every field checked this way.
    """

    def __init__(self, kind: str, names: Collection[str] | Callable[[], Collection[str]]):
        self.kind = kind
        self._names = names

    @property
    def names(self) -> Collection[str]:
        """The table, read at each check (names registered later count). A function returning
        it (a table in a module of its own) is called only then: configs that never set the
        field never import the table."""
        return self._names() if callable(self._names) else self._names

    def __call__(self, value: str | None) -> str | None:
        if value is not None and value not in self.names:
            raise ValueError(unknown(self.kind, value, self.names))
        return value


# A Keras activation name (or null for none); a field validator of the model types.
check_activation = NameCheck("activation", catalog.ACTIVATIONS)


def unknown(kind: str, value: Any, options) -> str:
    """`unknown <kind> "x" — did you mean 'y'?; expected one of: ...`."""
    options = sorted(options)
    return (f"unknown {kind} {show(value)}" + suggest(str(value), options)
            + f"; expected one of: {', '.join(options)}")


def suggest(value: str, options) -> str:
    """` — did you mean 'x'?` for the closest option, or ''."""
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def show(value: Any) -> str:
    """A given value as an error message shows it: strings quoted, containers by kind."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (dict, list)) or value is None:
        return kind_of(value)
    return repr(value).lower() if isinstance(value, bool) else repr(value)


def kind_of(value: Any) -> str:
    """`a mapping`, `a list`, `a string`, `null`, `an int`..."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}")
