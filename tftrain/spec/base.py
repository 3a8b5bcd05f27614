"""Building blocks of the config schema, shared by the config classes (tftrain.spec) and the model types in
tftrain.models: the strict base model and the wording of validation messages.

No TensorFlow or NumPy here: `tftrain validate` reads every schema.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Callable, Collection, Iterator
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Upper bounds for counts, so a value too large for what consumes it is refused by validate
# instead of overflowing (or allocating) halfway through a run.
MAX_STEPS = 2**31 - 1  # tf.data and Keras count steps in 32-bit integers in places
MAX_EPOCHS = 1_000_000  # a million epochs is already years of training
MAX_BATCH = 2**20  # a batch of a million examples fits no accelerator
MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds are 32-bit
MAX_THREADS = 1024  # TensorFlow's thread pools, on any machine that exists



def whole_number(value: Any) -> Any:
    """A float with no fractional part (`epochs: 1e3`, which YAML reads as 1000.0) as the integer
    it is: JSON Schema's `integer` (what an editor checks against) accepts it, so validate does
    too; anything else is left for the strict check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_Whole = BeforeValidator(whole_number)
# The bounds first: pydantic then writes them into the JSON Schema as its keywords.
Steps = Annotated[int, Field(gt=0, le=MAX_STEPS), _Whole]
Epochs = Annotated[int, Field(gt=0, le=MAX_EPOCHS), _Whole]
BatchSize = Annotated[int, Field(gt=0, le=MAX_BATCH), _Whole]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), _Whole]
Threads = Annotated[int, Field(gt=0, le=MAX_THREADS), _Whole]


class Strict(BaseModel):
    """Unknown keys are errors, types are not coerced, numbers are finite (no .nan, .inf), and a
    validated config cannot change.

    Validators are built on first use (`defer_build`), inside `building_validators`: a class
    no config uses (another dataset's options) is never built.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True)


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



def unknown(kind: str, value: Any, options) -> str:
    """`unknown <kind> "x" — did you mean 'y'?; expected one of: ...`."""
    options = sorted(options)
    return (f"unknown {kind} {show(value)}" + suggest(str(value), options)
            + f"; expected one of: {', '.join(options)}")


def suggest(value: str, options) -> str:
    """` — did you mean 'x'?` for the closest option, or ''."""
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


SHOWN_LENGTH = 80  # characters of a given value an error message echoes: one line, not a flood
# What a terminal or log would act on rather than show: C0/C1 controls (escape sequences, a newline
# that forges a line), bidi overrides and isolates that reorder a line, zero-width characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def show(value: Any) -> str:
    """A given value as an error message shows it: strings quoted, containers by kind; at most
    SHOWN_LENGTH characters, control characters escaped (no terminal escape sequences)."""
    if isinstance(value, str):
        return f'"{printable(value)}"'
    if isinstance(value, (dict, list)) or value is None:
        return kind_of(value)
    return printable(repr(value).lower() if isinstance(value, bool) else repr(value))


def printable(text: str, limit: int | None = SHOWN_LENGTH) -> str:
    """`text` shortened to `limit` characters (with `...`; None: whole), control, bidi and
    zero-width characters made visible as \\x1b, \\n, \\u202e etc. The one escaping of every
    value from a file or config that tftrain echoes (tftrain.console uses it for tables too)."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
    """`a mapping`, `a list`, `a string`, `null`, `an int`..."""
    name = type(value).__name__
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), f"a{'n' if name[:1] in 'aeiou' else ''} {name}")
