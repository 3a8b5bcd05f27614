"""From a file to a validated Config: read it (regular files only, bounded size, safe YAML),
compose it (`extends`, `${env:...}`, tftrain.spec.compose), apply `--set` overrides, validate the
schema, then the cross-key checks (tftrain.spec.checks). `load_config(path, overrides)` is what
every command calls.
"""

from __future__ import annotations

import copy
import functools
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

import tftrain.plugins as plugins
from tftrain.errors import ConfigError
from tftrain.plugins import check_module_name
from tftrain.spec import checks, distill
from tftrain.spec.base import building_validators, kind_of
from tftrain.spec.compose import Composed, Source, compose, key_path, set_at
from tftrain.spec.messages import _model_in, format_validation_error
from tftrain.spec.safe_yaml import MAX_CONFIG_BYTES, parse_yaml
from tftrain.spec.schema import Config, _Named


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), import_plugins: bool = True,
                plugins: Sequence[str] = (), recorded: bool = False) -> Config:
    """Read, compose (`extends`, `${env:...}`), override and validate a config file; raises
    ConfigError with a one-line message. `import_plugins`: import the modules its `plugins`
    names (a config the user runs); False for a run directory's (tftrain.plugins.require).
    `plugins`: modules given beside the file (`--plugin`), added to its `plugins`. `recorded`: the
    file is a run directory's config (tftrain.spec.checks.RunFacts.recorded)."""
    composed = compose_config(path, overrides, plugins)
    return validate(composed.raw, composed, import_plugins=import_plugins, recorded=recorded)


def compose_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), plugins: Sequence[str] = ()) -> Composed:
    """The raw config of `path` (its `extends` chain merged, environment variables resolved,
    `--set` applied, `name` defaulted) with the source of every key, before validation."""
    path = Path(path)
    with building_validators():  # selector_keys builds the default model
        switches = selector_keys()
    composed = compose(path, _read_config_file, switches)
    raw = composed.raw
    for override in overrides:
        composed.set(apply_override(raw, override), Source("--set", in_file=False))
    if plugins:  # `--plugin MODULE`: imported as if the file listed it
        listed = raw.get("plugins") if isinstance(raw.get("plugins"), list) else []
        raw["plugins"] = [*listed, *(name for name in plugins if name not in listed)]
        composed.set(("plugins",), Source("--plugin", in_file=False))
    if raw.get("name") is None:
        raw["name"] = _default_name(path)
        composed.set(("name",), Source("default: the config file's name", in_file=False))
    return composed


def _read_config_file(path: Path, where: str, extended: bool) -> Any:
    """One file's YAML, through the same safe loader and alias-bomb check as every config."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (reading one would wait forever), a device
            raise ConfigError(f"{where}: cannot read the config (not a regular file)")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{where}: {size} bytes; a config is at most {MAX_CONFIG_BYTES} (is this the right file?)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file" if extended else f"{where}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: cannot read the config (not UTF-8 text)") from None
    except OSError as exc:  # a folder, no permission, a loop of symbolic links, an I/O error
        raise ConfigError(f"{where}: cannot read the config ({exc.strerror or exc.__class__.__name__})") from None
    raw = parse_yaml(text, source=where)
    if not isinstance(raw, dict) and not extended:
        raise ConfigError(f"{where}: expected a mapping of keys (name, data, model, ...), got {kind_of(raw)}")
    return raw


@functools.cache
def selector_keys(model: type[BaseModel] | None = None, prefix: tuple = ()) -> dict[tuple, tuple[str, Any]]:
    """Key paths whose mapping is chosen by one key, with that key's default: a model by its
    `type` (a discriminated union), a Keras component by its `name`. A merge that changes it
    starts the mapping afresh (tftrain.spec.compose). Derived from the schema, so new ones count."""
    found: dict[tuple, tuple[str, Any]] = {}
    for name, info in (model or Config).model_fields.items():
        path, nested = (*prefix, name), _model_in(info.annotation)
        if _is_list(info.annotation):
            continue  # lists replace whole in a merge: nothing to choose
        if isinstance(info.discriminator, str):
            default = info.get_default(call_default_factory=True)
            found[path] = (info.discriminator, getattr(default, info.discriminator, None))
        elif nested is not None and issubclass(nested, _Named):
            default = nested.model_fields["name"].default
            found[path] = ("name", default if isinstance(default, str) else None)
        if nested is not None and not isinstance(info.discriminator, str):
            found.update(selector_keys(nested, path))
    return found


def _is_list(annotation: Any) -> bool:
    """`list[...]`, or an optional one."""
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def apply_override(raw: dict, override: str) -> tuple:
    """Apply one `--set a.b.c=value` (value read as a YAML scalar; list items as
    `model.nodes[1].layer.conv2d.filters`) to the raw config dict; returns the key path it set."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. training.epochs=3")
    value = parse_yaml(text, source=f"--set {key}")
    path = key_path(key.strip())

    def mapping_for(part, current):
        if isinstance(current, str) and part in ("loss", "optimizer"):
            return {"name": current}  # `loss: mse` + `--set loss.reduction=sum`
        return {} if current is None else None

    set_at(raw, path, value, key.strip(), mapping_for)
    return path


def validate(raw: dict, composed: Composed | None = None, import_plugins: bool = True,
             recorded: bool = False) -> Config:
    """Validate a raw config dict: the schema, then the cross-key checks (tftrain.spec.checks).
    Its problems become a ConfigError of one line each, naming the file a bad value came from when
    that is not the file given (`composed`). The modules its `plugins` names are imported first
    (unless not `import_plugins`), so that their registered names are checked; a config that
    names none imports nothing."""
    modules = raw.get("plugins") if isinstance(raw, dict) else None
    if import_plugins and isinstance(modules, list) and modules:
        try:
            for module in modules:
                check_module_name(module)
        except ValueError:
            pass  # reported by the schema, with its key path
        else:
            plugins.import_plugins(modules)
    try:
        with building_validators(), plugins.validating(modules):
            config = Config.model_validate(raw)
    except ValidationError as exc:
        origin = (lambda loc: _origin(composed, loc)) if composed else None
        raise ConfigError(format_validation_error(exc, raw, Config, origin=origin)) from None
    found = checks.problems(config, recorded) or _teacher_problems(config, recorded)
    if found:
        raise ConfigError("\n".join(found))
    return config


def _teacher_problems(config: Config, recorded: bool) -> list[str]:
    """distill.teacher's run files (a completed classifier run on the same data); not read for a run
    directory's own config, so evaluate works once its teacher is gone."""
    if config.distill is None or recorded:
        return []
    problem = distill.teacher_problem(Path(config.distill.teacher).expanduser(), config, read_recorded)
    return [problem] if problem else []


def read_recorded(path: Path) -> Config:
    """A run directory's config.yaml as recorded: plugins not imported, its own teacher not read again."""
    return load_config(path, import_plugins=False, recorded=True)


def config_problem(raw: dict, values: dict[str, Any]) -> str | None:
    """What is wrong with the config `raw` once `values` (key path -> YAML text of a value) are
    set, or None: how a sweep or a study checks its members before running any."""
    candidate = copy.deepcopy(raw)
    for key, text in values.items():
        try:
            apply_override(candidate, f"{key}={text}")
        except ConfigError as exc:  # a path through a value that is not a mapping
            return "not a key path of the config: " + str(exc).split(": ", 1)[-1]
    try:
        validate(candidate)
    except ConfigError as exc:
        return str(exc)
    return None


def _origin(composed: Composed, loc: tuple) -> str | None:
    """The extended file(s) that wrote the value at `loc`; None for the top file, --set, defaults
    and errors about the whole config."""
    if not loc:
        return None
    files = [s.origin for s in composed.sources_within(loc) if s.in_file and s.origin != composed.top]
    return ", ".join(dict.fromkeys(files)) or None


def _default_name(path: Path) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem)
    return cleaned or "run"
