"""How the runs of a sweep or a study are told apart: by the values they were given (and
`flatten`, a config as `section.key` values, as compare, report and trackers list them).

    label:     learning_rate=0.1 hidden=[64, 32]      (tables, plot legends, HParams groups)
    name part: learning_rate-0.1_hidden-64_32         (in run directory names: letters, digits, . _ -)
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

MAX_NAME_PART = 60  # run names stay readable in a terminal; the index before it keeps them unique


def short_keys(keys: list[str]) -> dict[str, str]:
    """The last part of each key path (`optimizer.learning_rate` -> `learning_rate`), or the whole
    path where two keys would read the same."""
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(keys, leaves)}


def _text(value: Any) -> str:
    from tftrain.spec.tune import yaml_text

    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return PurePath(value).name or value  # a path: its file name tells it apart
    return value if isinstance(value, str) else yaml_text(value)


def label(values: dict[str, Any]) -> str:
    """`learning_rate=0.1 hidden=[64, 32]`."""
    short = short_keys(list(values))
    return " ".join(f"{short[key]}={_text(value)}" for key, value in values.items())


def name_part(values: dict[str, Any]) -> str:
    """`learning_rate-0.1_hidden-64_32`: the label as a run directory name may spell it."""
    short = short_keys(list(values))
    pieces = []
    for key, value in values.items():
        text = re.sub(r"[^A-Za-z0-9.]+", "_", _text(value)).strip("_") or "x"
        pieces.append(f"{short[key]}-{text}")
    return re.sub(r"[^A-Za-z0-9._-]", "_", "_".join(pieces))[:MAX_NAME_PART].rstrip("._-")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out
