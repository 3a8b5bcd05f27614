"""Building blocks of the config schema, shared by tftrain.config and the model types in
tftrain.models: the strict base model and the wording of validation messages.

No TensorFlow or NumPy here: `tftrain validate` reads every schema.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict

from tftrain import catalog


class Strict(BaseModel):
    """Unknown keys are errors, types are not coerced, and a validated config cannot change."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_activation(value: str | None) -> str | None:
    """A Keras activation name (or null for none); a field validator of the model types."""
    if value is not None and value not in catalog.ACTIVATIONS:
        raise ValueError(unknown("activation", value, catalog.ACTIVATIONS))
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
