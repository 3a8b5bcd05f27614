"""Pydantic's validation errors as tftrain's one-line messages: the key path, what was given,
what is expected, and a did-you-mean where one fits. Used for the config and for every schema
validated inside it (dataset options, tune specs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from tftrain.models import BY_TAG, TAGS
from tftrain.spec.base import show, suggest, unknown
from tftrain.spec.schedules import SCHEDULES

_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_POSITIVE_INTS = {"batch_size", "epochs", "shuffle_buffer", "steps", "limit", "log_every", "patience", "kernel_size",
                  "pool_size", "steps_per_execution", "num_examples", "every_steps", "distribute_timeout",
                  "cpu_threads"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


# Which problems a config's message names first: a misspelt key often explains a missing one.
_FIRST = {"extra_forbidden": 0, "missing": 1, "union_tag_invalid": 1, "union_tag_not_found": 1}


def format_validation_error(exc: ValidationError, raw: dict, root: type[BaseModel],
                            origin: Callable[[tuple], str | None] | None = None) -> str:
    """Every problem pydantic found, one line each (`key.path: expected X, got Y`, with a
    did-you-mean where one fits): misspelt and missing keys first, one line per key path;
    `origin(key path)` names the file a value came from, where it is not the file given."""
    lines, seen = [], set()
    for error in sorted(exc.errors(), key=lambda e: _FIRST.get(e["type"], 2)):
        where = _display_loc(error["loc"])
        if where in seen:  # a union reports each of its members' complaints about one value
            continue
        seen.add(where)
        line, source = _format_error(error, raw, root), origin(where) if origin else None
        lines.append(f"{source}: {line}" if source else line)
    return "\n".join(lines)


def _format_error(error: dict, raw: dict, root: type[BaseModel]) -> str:
    """One pydantic error as `key.path: expected X, got Y` (+ did-you-mean)."""
    loc = _display_loc(error["loc"])
    path = ".".join(str(p) for p in loc) or "config"
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        options = _keys_at(loc[:-1], raw, root)
        where = f" in '{parent}'" if parent else ""
        return f"unknown key '{loc[-1]}'{where}" + suggest(str(loc[-1]), options) + (
            f"; valid keys: {', '.join(options)}" if options else "")
    if kind == "union_tag_invalid":
        tags = error["ctx"]["expected_tags"].replace("'", "").split(", ")
        return f"{path}.type: " + unknown("model type", error["ctx"]["tag"], tags)
    if kind == "union_tag_not_found":
        return f"{path}.type: required key is missing (one of {', '.join(TAGS)})"
    if kind in _BOUNDS:
        bound = next(iter(error["ctx"].values()))
        expected = f"a value {_BOUNDS[kind]} {bound}"
        # An int field's bound (a float field's is a float: `temperature: 0` is not asked for an integer).
        if kind == "greater_than" and bound == 0 and isinstance(given, int) and not isinstance(bound, float):
            expected = "a positive integer"
        return f"{path}: expected {expected}, got {show(given)}"
    if kind == "literal_error":
        options = [o.strip(" '") for o in error["ctx"]["expected"].replace(" or ", ", ").split(",")]
        return f"{path}: " + unknown("value", given, options)
    if kind == "string_pattern_mismatch":
        return f"{path}: expected letters, digits, '.', '_' or '-' only, got {show(given)}"
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        if message.startswith((".", "[")):  # a nested schema's message that starts with its own key path
            return path + message
        return f"{path}: {message}" if path != "config" else message
    expected = _EXPECTED.get(kind) or error["msg"].removeprefix("Input should be ").lower()
    if kind == "int_type" and str(loc[-1] if loc else "") in _POSITIVE_INTS:
        expected = "a positive integer"
    return f"{path}: expected {expected}, got {show(given)}"


def _display_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-member tags ('dense', 'str', 'function-after[...]') from a location."""
    out = []
    for i, part in enumerate(loc):
        is_model_tag = i > 0 and ((part in TAGS and loc[i - 1] == "model") or (
            loc[i - 1] == "learning_rate" and part in ("number", *SCHEDULES)))
        is_output_form = i > 0 and loc[i - 1] in ("loss", "metrics") and part in ("one", "per_output")
        is_union_member = is_output_form or isinstance(part, str) and (
            part in ("str", "int", "float", "bool", "none")
            or part.startswith(("function-", "literal[", "constrained-", "list[", "dict[")))
        if not (is_model_tag or is_union_member):
            out.append(part)
    return tuple(out)


def _keys_at(loc: tuple, raw: dict, root: type[BaseModel]) -> list[str]:
    """The keys the schema accepts at `loc` (for did-you-mean on an unknown key)."""
    model: type[BaseModel] | None = root
    node: Any = raw
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        node = node.get(part) if isinstance(node, dict) else None
        chosen = node if isinstance(node, dict) else {}
        info = model.model_fields[part]
        if info.discriminator == "type":  # a model type, chosen by `type`
            model = BY_TAG.get(chosen.get("type"))
        elif part == "learning_rate":  # a number, or a schedule chosen by `schedule`
            model = SCHEDULES.get(chosen.get("schedule"), (None, None))[1]
        else:
            model = _model_in(info.annotation)
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None
