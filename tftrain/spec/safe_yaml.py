"""Safe YAML for configs, space files and --set values: plain data only (no Python tags),
YAML 1.2 numbers (`1e-3` is a float), duplicate keys refused, alias bombs refused before anything
is built. Every YAML tftrain reads from a user goes through `parse_yaml`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tftrain.errors import ConfigError
from tftrain.spec.base import show

# A config (or space) file is kilobytes; reading megabytes would only be slow on the way to an error.
MAX_CONFIG_BYTES = 1_000_000
# A YAML file needs a handful of aliases at most; thousands are an alias ("billion laughs") bomb.
MAX_YAML_ALIASES = 100
# A config has tens of values; counted with aliases expanded, the classic bomb (9 levels of 9-10
# aliases, under the alias limit) has hundreds of millions. Refused before anything is built.
MAX_YAML_VALUES = 100_000
# A config's mappings nest a few levels; hundreds would only exhaust the parser's recursion.
MAX_YAML_DEPTH = 50


class DuplicateKey(yaml.YAMLError):
    """A mapping names a key twice (YAML says keys are unique; PyYAML keeps the last silently)."""

    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first, self.again = key, first, again


def _unique_keys(self, node, deep=False):
    """SafeConstructor.construct_mapping, refusing a key given twice (merge keys `<<` aside)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = self.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            continue  # an unhashable key: the constructor itself reports it
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKey(key, seen[key], line)
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


def _yaml_12_numbers(loader: type) -> type:
    """`loader` reading numbers as YAML 1.2 does: `1e-3`, `3E+4` and `.5` are floats (YAML 1.1,
    which PyYAML follows, needs a dot: `1.0e-3`; papers write `3e-4`), and refusing duplicate
    keys. A subclass: PyYAML's own loaders are left as they are."""
    subclass = type(f"{loader.__name__}12", (loader,), {"construct_mapping": _unique_keys})
    subclass.yaml_implicit_resolvers = {key: list(value) for key, value in loader.yaml_implicit_resolvers.items()}
    subclass.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"), list("-+.0123456789"))
    return subclass


# libyaml's parser when PyYAML has it: about 20x faster than the pure-Python one on a config,
# which counts once configs extend others. Its error messages say less ("found character that
# cannot start any token", not which), so a file it refuses is read again by the pure-Python
# parser, whose message (or result, should it accept the file) is the one used.
_SAFE_LOADER = _yaml_12_numbers(yaml.SafeLoader)
_FAST_LOADER = _yaml_12_numbers(yaml.CSafeLoader) if yaml.__with_libyaml__ else _SAFE_LOADER


def parse_yaml(text: str, source: str) -> Any:
    """Safe YAML (plain data only, YAML 1.2 numbers), refusing Python tags and alias bombs
    with a clear message."""
    try:
        return _safe_load(text, source, _FAST_LOADER)
    except yaml.YAMLError as exc:
        error = exc
    if _FAST_LOADER is not _SAFE_LOADER:
        try:
            return _safe_load(text, source, _SAFE_LOADER)
        except yaml.YAMLError as exc:
            error = exc
    if isinstance(error, DuplicateKey):
        raise ConfigError(f"{source}: line {error.again}: key {show(error.key)} is given twice (first on line "
                          f"{error.first}); a key may appear once in a mapping") from None
    if isinstance(error, yaml.constructor.ConstructorError):
        problem = (getattr(error, "problem", "") or "").strip()
        raise ConfigError(f"{source}: refused YAML tag ({problem}); configs hold plain data only") from None
    mark = getattr(error, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    raise ConfigError(f"{source}:{where} invalid YAML: {problem}") from None


def _safe_load(text: str, source: str, loader: type) -> Any:
    """The alias-bomb check, then the document, with `loader` (a safe loader: plain data only)."""
    _check_expansion(text, source, loader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (SafeLoader or CSafeLoader: plain data only)


def _check_expansion(text: str, source: str, loader: type = _SAFE_LOADER) -> None:
    """Walk the YAML events (nothing is built) counting aliases and the values the document
    holds once aliases are expanded; refuse an alias bomb before it can eat memory or time."""
    aliases, sizes, stack, total = 0, {}, [[None, 0]], 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_YAML_DEPTH:
                raise ConfigError(f"{source}: lists and mappings nested more than {MAX_YAML_DEPTH} levels deep; refused")
            continue
        if isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            aliases, size, anchor = aliases + 1, sizes.get(event.anchor, 1), None
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        stack[-1][1] += size
        total = max(total, sum(count for _, count in stack))
        if aliases > MAX_YAML_ALIASES or total > MAX_YAML_VALUES:
            what = f"{aliases} YAML aliases" if aliases > MAX_YAML_ALIASES else \
                f"more than {MAX_YAML_VALUES} values once its aliases are expanded"
            raise ConfigError(f"{source}: {what}; refused (this looks like an alias bomb)")
