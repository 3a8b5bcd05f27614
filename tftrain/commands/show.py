"""`tftrain show --sources`: the resolved config with, beside each value, where it came from."""

from __future__ import annotations

from typing import Any

import yaml

from tftrain.spec.base import printable
from tftrain.spec.compose import Composed, KeyPath, escape
from tftrain.spec.schema import Config

DEFAULT = "default"
MAX_COLUMN = 56  # values longer than this push their comment right instead of widening every line


def annotated_yaml(config: Config, composed: Composed) -> str:
    """`config` as YAML (every default included, loadable as is) with `# <source>` beside every
    value: the file it came from (and the environment variables read), `--set`, or default."""
    rows: list[tuple[str, str | None]] = []
    _rows(escape(config.model_dump(mode="json")), (), composed, rows)
    width = min(max(len(text) for text, source in rows if source is not None), MAX_COLUMN)
    body = "".join(f"{text:<{width}}  # {source}\n" if source else f"{text}\n" for text, source in rows)
    return f"# {printable(composed.top, limit=None)} resolved; beside each value: the file, --set or default it came from\n" + body


def _rows(node: dict, path: KeyPath, composed: Composed, rows: list, indent: int = 0) -> None:
    for key, value in node.items():
        here = (*path, key)
        if isinstance(value, dict) and value:
            rows.append((f"{' ' * indent}{key}:", None))
            _rows(value, here, composed, rows, indent + 2)
        else:
            rows.append((f"{' ' * indent}{key}: {_flow(value)}", _label(composed, here)))


def _label(composed: Composed, path: KeyPath) -> str:
    """Who set the value at `path`; a key no file or --set wrote is a default."""
    source = composed.source(path) if _written(composed.raw, path) else None
    return printable(str(source), limit=None) if source else DEFAULT  # a file name is shown, never acted on


def _written(raw: Any, path: KeyPath) -> bool:
    """True when the composed raw config holds `path` (`loss: mse` holds loss.name)."""
    node = raw
    for i, key in enumerate(path):
        if isinstance(node, str) and path[i:] == ("name",):
            return True
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _flow(value: Any) -> str:
    """One value as YAML on one line (flow style for lists and mappings)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("\n...")
