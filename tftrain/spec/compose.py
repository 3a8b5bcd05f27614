"""Compose a config from several files: `extends`, `${env:NAME,default}`, and where each key came from.

A file may name others in `extends: base.yaml` or `extends: [a.yaml, b.yaml]` (paths relative to
the file that names them). They are composed first, in order, and the file itself is merged on
top: mappings merge key by key, lists and scalars replace. A mapping that changes the `type` of
a model or the `name` of a Keras component (loss, optimizer) replaces the inherited one instead
of merging into it, since the old keys belong to the old choice. `${env:NAME}` and
`${env:NAME,default}` in string values are replaced by environment variables (`$${` is a
literal `${`). Every file is read by the caller's safe reader; nothing here imports more than
the standard library, so `tftrain validate` stays instant.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tftrain.errors import ConfigError
from tftrain.spec.base import kind_of, show

EXTENDS = "extends"
MAX_EXTENDS_DEPTH = 32  # files in one extends chain
EXTENDS_HELP = ("Files to compose first, in order (paths relative to this file); this file is merged on "
                "top: mappings merge, lists and scalars replace.")
ENV_SYNTAX = "${env:NAME} or ${env:NAME,default}"
_REFERENCE = re.compile(r"\$\$\{|\$\{")  # `$${` is an escaped, literal `${`
_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)(?:,(.*))?", re.DOTALL)

KeyPath = tuple[Any, ...]
# (path, chain as shown, extended?) -> the file's content; raises ConfigError naming the chain.
Reader = Callable[[Path, str, bool], Any]


@dataclass(frozen=True)
class Source:
    """Where a value came from: a file as the user would write its path, `--set`, or a default."""

    origin: str
    env: tuple[str, ...] = ()  # the environment variables its string was built from
    in_file: bool = True  # False: --set, or a default tftrain filled in

    def __str__(self) -> str:
        return self.origin + "".join(f" (${{env:{name}}})" for name in self.env)


@dataclass
class Composed:
    """A composed raw config (before validation) and the source of every key path in it."""

    raw: dict
    top: str  # the file given on the command line, as given
    sources: dict[KeyPath, Source] = field(default_factory=dict)

    def source(self, path: KeyPath) -> Source | None:
        """The source of the value at `path`: the deepest recorded one at or above it."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.sources:
                return self.sources[path[:end]]
        return None

    def sources_within(self, path: KeyPath) -> list[Source]:
        """Every distinct source of `path` and of the keys below it, in order of first record."""
        found = [self.source(path)] if self.source(path) else []
        found += [s for p, s in self.sources.items() if p[:len(path)] == path and len(p) > len(path)]
        return list(dict.fromkeys(found))

    def set(self, path: KeyPath, source: Source) -> None:
        """Record that `source` wrote the value at `path` (and everything below it)."""
        for key in [p for p in self.sources if p[:len(path)] == path]:
            del self.sources[key]
        self.sources[path] = source


def compose(path: Path, read: Reader, switches: dict[KeyPath, tuple[str, Any]]) -> Composed:
    """Compose `path` and every file it extends into one raw mapping.

    `switches` maps a key path to its selector key and default (`("model",): ("type", "dense")`):
    a mapping there whose selector differs from the inherited one replaces it instead of merging.
    A file reached twice (two files extending one base) is merged once, where it first appears.
    """
    composer = _Composer(read, switches, Composed({}, str(path)))
    composer.add(Path(path), str(path), ())
    return composer.out


@dataclass
class _Composer:
    read: Reader
    switches: dict[KeyPath, tuple[str, Any]]
    out: Composed
    merged: set[Path] = field(default_factory=set)

    def add(self, path: Path, shown: str, chain: tuple[tuple[Path, str], ...]) -> None:
        """Merge the files `path` extends, then `path` itself, into `out`."""
        where = " -> ".join([*(s for _, s in chain), shown])
        try:
            identity = path.resolve()
        except (OSError, RuntimeError):  # Python reports a loop of symbolic links as RuntimeError
            raise ConfigError(f"{where}: cannot read the config (a loop of symbolic links)") from None
        if identity in (p for p, _ in chain):
            raise ConfigError(f"{where}: extends cycle; a file cannot extend itself, directly or through others")
        if identity in self.merged:
            return
        if len(chain) >= MAX_EXTENDS_DEPTH:  # each level is a Python frame: a deep chain would be a RecursionError
            raise ConfigError(f"{chain[0][1]}: extends chain of more than {MAX_EXTENDS_DEPTH} files (through "
                              f"{chain[-1][1]}); flatten it")
        content = self.read(path, where, bool(chain))
        if not isinstance(content, dict):
            raise ConfigError(f"{where}: expected a mapping of config keys to extend, got {kind_of(content)}")
        used_env: dict[KeyPath, tuple[str, ...]] = {}
        content = resolve_env(content, shown, (), used_env)
        for parent in _parents(content.pop(EXTENDS, None), shown):
            parent_shown = os.path.normpath(os.path.join(os.path.dirname(shown), parent))
            self.add(path.parent / parent, parent_shown, (*chain, (identity, shown)))
        layer = Composed(content, shown, {(): Source(shown)})
        for key_path, names in used_env.items():
            layer.sources[key_path] = Source(shown, names)
        merge(self.out, layer, self.switches)
        self.merged.add(identity)


def _parents(value: Any, shown: str) -> list[str]:
    """`extends` as a list of file names (a single name, a list, or absent)."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        bad = value if not isinstance(value, list) else next(
            n for n in names if not (isinstance(n, str) and n.strip()))
        got = show(bad) if not isinstance(value, list) else f"{show(bad)} in the list"
        raise ConfigError(f"{shown}: {EXTENDS}: expected a file name or a list of file names, got {got}")
    return names


def merge(out: Composed, layer: Composed, switches: dict[KeyPath, tuple[str, Any]],
          prefix: KeyPath = ()) -> None:
    """Deep-merge `layer.raw` (at `prefix`) into `out.raw`, recording sources."""
    base = _node(out.raw, prefix)
    for key, value in _node(layer.raw, prefix).items():
        path = (*prefix, key)
        old = base.get(key)
        selector = switches.get(path)
        if selector and selector[0] == "name" and isinstance(old, str) and isinstance(value, dict):
            old = base[key] = {"name": old}  # `loss: mse` extended by `loss: {reduction: sum}`
        if isinstance(old, dict) and isinstance(value, dict) and not _switched(old, value, selector):
            merge(out, layer, switches, path)
            continue
        base[key] = copy.deepcopy(value)
        out.set(path, layer.source(path))
        for below, source in layer.sources.items():
            if below[:len(path)] == path and len(below) > len(path):
                out.sources[below] = source


def _node(raw: dict, path: KeyPath) -> dict:
    for key in path:
        raw = raw[key]
    return raw


def _switched(old: dict, new: dict, selector: tuple[str, Any] | None) -> bool:
    """True when `new` selects another type/name than `old` (so it replaces `old` whole)."""
    if selector is None:
        return False
    key, default = selector
    return key in new and new[key] != old.get(key, default)


def resolve_env(value: Any, shown: str, path: KeyPath = (),
                used: dict[KeyPath, tuple[str, ...]] | None = None) -> Any:
    """`value` with every `${env:...}` in its strings replaced; `used` collects the variables
    read per key path. Raises ConfigError naming the file and key for a bad or unset reference."""
    if isinstance(value, dict):
        return {k: resolve_env(v, shown, (*path, k), used) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, shown, (*path, i), used) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    where = f"{shown}: {'.'.join(str(p) for p in path)}"
    text, names = substitute(value, where)
    if names and used is not None:
        used[path] = names
    return text


def substitute(text: str, where: str) -> tuple[str, tuple[str, ...]]:
    """Replace the `${env:...}` references of one string: (new text, variables read)."""
    out, names, position = [], [], 0
    for match in _REFERENCE.finditer(text):
        if match.start() < position:
            continue  # inside a reference already replaced
        out.append(text[position:match.start()])
        if match.group() == "$${":
            out.append("${")
            position = match.end()
            continue
        end = text.find("}", match.end())
        if end < 0:
            raise ConfigError(f'{where}: unclosed "${{" in "{text}"; expected {ENV_SYNTAX}')
        reference = _ENV.fullmatch(text, match.end(), end)
        if reference is None or "${" in text[match.end():end]:
            raise ConfigError(f'{where}: "{text[match.start():end + 1]}" is not a reference tftrain knows; '
                              f"expected {ENV_SYNTAX} (write $${{ for a literal ${{)")
        name, default = reference.group(1), reference.group(2)
        if name in os.environ:
            out.append(os.environ[name])
        elif default is not None:
            out.append(default)
        else:
            raise ConfigError(f"{where}: environment variable {name} is not set and has no default "
                              f"(set it, or write ${{env:{name},DEFAULT}})")
        names.append(name)
        position = end + 1
    out.append(text[position:])
    return "".join(out), tuple(dict.fromkeys(names))


def escape(value: Any) -> Any:
    """`value` with every literal `${` in its strings written `$${`, so that reading it back
    (`resolve_env`) gives the same strings: how a resolved config stays re-runnable as is."""
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value.replace("${", "$${") if isinstance(value, str) else value


# ---------------------------------------------------------------------------------------------
# `--set KEY=VALUE` keys: dotted names with list items, `model.nodes[1].layer.conv2d.filters`
# (or `model.nodes.1.layer...`, as error messages write the path).

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def key_path(key: str) -> KeyPath:
    """`a.b[1].c` (or `a.b.1.c`) as ('a', 'b', 1, 'c'); a digits-only segment is an index too
    (it is used as one where the value there is a list). ConfigError on a malformed key."""
    parts: list = []
    for segment in key.split("."):
        match = _SEGMENT.fullmatch(segment.strip())
        if not match:
            raise ConfigError(f"--set {key}: expected a key path such as model.nodes[1].layer.conv2d.filters")
        name, indices = match.groups()
        parts.append(int(name) if name.isdigit() else name)
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", indices)]
    return tuple(parts)


def set_at(raw: dict, path: KeyPath, value: Any, key: str, mapping_for: Callable[[Any, Any], Any]) -> None:
    """Set `value` at `path` in `raw`, making mappings on the way (`mapping_for(name, current)`:
    what a missing or scalar parent becomes, or None where it cannot). List items must exist."""
    node: Any = raw
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = _shown(path[:i + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                raise ConfigError(f"--set {key}: {_shown(path[:i]) or 'the config'} is a list of {len(node)} "
                                  f"item{'s' * (len(node) != 1)} (0..{len(node) - 1}); {where} is not one of them")
        elif not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{_shown(path[:i])}' is {kind_of(node)}, not a mapping")
        if last:
            node[part] = value
            return
        child = node[part] if isinstance(node, list) else node.get(part)
        if not isinstance(child, (dict, list)):
            made = mapping_for(part, child)
            if made is None:
                raise ConfigError(f"--set {key}: '{where}' is {kind_of(child)}, not a mapping")
            child = made
        node[part] = child
        node = child


def _shown(path: KeyPath) -> str:
    """('model', 'nodes', 1, 'layer') as model.nodes[1].layer."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
