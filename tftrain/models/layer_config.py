"""Layer entries of a config, checked against the catalog (tftrain.models.layers) without
TensorFlow, and turned into Keras's serialized form for `keras.layers.deserialize`.

A layer entry is a name (`flatten`), or a mapping of one name to its parameters
(`conv2d: {filters: 32, kernel_size: 3}`), or to a single value for its first parameter
(`dropout: 0.25`, `activation: relu`). Names are snake_case or Keras's class names (`Conv2D`).
Regularizers, initializers and constraints are written the same way: `he_normal`,
`{l2: 1.0e-4}`, `{random_normal: {stddev: 0.01}}`.

Checked entries are normalised to `{snake_name: {parameter: value}}` (components to a name, or
`{name: {parameters}}`), which is what config.yaml records and what the builders read.
"""

from __future__ import annotations

import re
from typing import Any

from tftrain.models.layers import (
    CLASS_ALIASES,
    COMMON,
    COMPONENTS,
    HUB_LAYERS,
    LAYER_ALIASES,
    LAYERS,
    REFUSED,
    UNSUPPORTED_PARAMS,
)
from tftrain.plugins import check_entry, is_registered_name
from tftrain.spec import catalog
from tftrain.spec.base import show, suggest, unknown
from tftrain.spec.layer_bounds import check_bound

MAX_LAYERS = 10_000  # expanded layers a model may have: far past any real network, short of a hang


def check_expanded_size(items: list, children: str) -> int:
    """The number of layers `items` expands to (groups of `repeat` times their `children`),
    counted without expanding; more than MAX_LAYERS is an error, before anything is built."""
    def size(entries: list) -> int:
        return sum(item["repeat"] * size(item[children]) if isinstance(item, dict) and children in item
                   and "repeat" in item else 1 for item in entries)

    count = size(items)
    if count > MAX_LAYERS:
        raise ValueError(f"expands to {count:,} layers; a model has at most {MAX_LAYERS:,} "
                         "(check the repeat counts)")
    return count

# Keras class name -> catalog name, and the snake_case names of refused classes.
_BY_CLASS = {class_name: name for name, (class_name, _) in LAYERS.items()}
_BY_CLASS.update({alias: _BY_CLASS[target] for alias, target in CLASS_ALIASES.items()})
_COMPONENT_BY_CLASS = {kind: {class_name: name for name, (class_name, _) in table.items()}
                       for kind, table in COMPONENTS.items()}
# Keras's own other names (keras.initializers.get("uniform"), IdentityInitializer, ...).
_COMPONENT_ALIASES = {"initializer": {"identity_initializer": "identity", "orthogonal_initializer": "orthogonal",
                                      "stft_initializer": "stft", "IdentityInitializer": "identity",
                                      "OrthogonalInitializer": "orthogonal", "STFTInitializer": "stft",
                                      "normal": "random_normal", "uniform": "random_uniform", "one": "ones",
                                      "zero": "zeros"},
                      "regularizer": {"l1l2": "l1_l2"}, "constraint": {}}
_KERAS_MODULE = {"regularizer": "keras.regularizers", "initializer": "keras.initializers",
                 "constraint": "keras.constraints"}
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
             "ints": "an integer or a list of integers", "floats": "a number or a list of numbers",
             "shape": "a list of integers (or nulls)", "activation": "an activation name",
             "data": "a value"}


def snake_case(name: str) -> str:
    """Keras's own snake_case of a class name (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_REFUSED_BY_SNAKE = {snake_case(class_name): class_name for class_name in REFUSED}
_ALL_NAMES = sorted({*LAYERS, *LAYER_ALIASES})


def layer_name(name: Any, where: str) -> str:
    """The catalog name of a layer written as `name`; ValueError saying why when it is none."""
    if not isinstance(name, str):
        raise ValueError(f"{where}: expected a layer name, got {show(name)}")
    if name in LAYERS:
        return name
    if name in LAYER_ALIASES:
        return LAYER_ALIASES[name]
    bare = name.removeprefix("keras.layers.")
    if bare in _BY_CLASS:
        return _BY_CLASS[bare]
    refused = REFUSED.get(bare) or REFUSED.get(_REFUSED_BY_SNAKE.get(name, ""))
    if refused:
        raise ValueError(f"{where}: layer {show(name)} is refused: {refused}")
    if "." in name:
        raise ValueError(f"{where}: layer {show(name)} is refused: it is not a built-in Keras layer; a layer of "
                         "your own is a plugin's, named as it is registered (\"my_pkg>MyLayer\", with plugins: [my_pkg])")
    close = suggest(name, _ALL_NAMES) or suggest(name, list(_BY_CLASS))
    raise ValueError(f"{where}: unknown layer {show(name)}{close} (Keras layer names in snake_case, such "
                     "as conv2d or batch_normalization, or Keras class names such as Conv2D)")


def is_layer_entry(value: Any) -> bool:
    """True for what should read as a layer entry, as opposed to a `{repeat: N, ...}` group."""
    return not (isinstance(value, dict) and "repeat" in value)


def split_entry(value: Any, where: str, what: str = "a layer") -> tuple[Any, Any]:
    """(name, parameters) of `name` or `{name: parameters}`."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.items()))
    keys = f" with keys {', '.join(map(str, value))}" if isinstance(value, dict) else ""
    raise ValueError(f"{where}: expected {what}: a name, or a mapping of one name to its parameters "
                     f"(such as {{conv2d: {{filters: 32, kernel_size: 3}}}}); got {show(value)}{keys}")


def check_layer(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """A checked, normalised layer entry `{name: {parameters}}`; ValueError naming `where`."""
    raw_name, args = split_entry(value, where)
    if is_registered_name(raw_name):
        return _plugin_layer(raw_name, args, where)
    name = layer_name(raw_name, where)
    params = LAYERS[name][1]
    here = f"{where} ({name})"
    if name in HUB_LAYERS and not keras_hub_installed():
        raise ValueError(f"{here}: a keras-hub layer, and keras-hub is not installed: pip install 'tftrain[hub]'")
    args = _as_parameters(args, params, here)
    out: dict[str, Any] = {}
    for key, given in args.items():
        kind = params.get(key) or COMMON.get(key)
        if kind is None:
            if key in UNSUPPORTED_PARAMS:
                raise ValueError(f"{here}: parameter '{key}' is not offered: {UNSUPPORTED_PARAMS[key]}")
            valid = [*params, *COMMON]
            raise ValueError(f"{here}: unknown parameter {show(key)}{suggest(str(key), valid)}; "
                             f"valid: {', '.join(valid)}")
        out[key] = check_value(kind, given, f"{here}.{key}")
        check_bound(key, out[key], f"{here}.{key}")
    missing = [key for key, kind in params.items() if kind.endswith("!") and key not in out]
    if missing:
        raise ValueError(f"{here}: required parameter '{missing[0]}' is missing")
    return {name: out}


def keras_hub_installed() -> bool:
    """Whether keras-hub can be imported (found without importing it: validate stays TF-free)."""
    import importlib.util

    return importlib.util.find_spec("keras_hub") is not None


def _plugin_layer(name: str, args: Any, where: str, kind: str = "layer") -> dict[str, dict[str, Any]]:
    """A plugin's layer (or initializer, regularizer, constraint) by its registered name: its
    parameters are checked against the class's own signature (once the plugins are imported)."""
    if args is None:
        args = {}
    if not isinstance(args, dict) or any(not isinstance(k, str) for k in args):
        raise ValueError(f"{where} ({name}): expected a mapping of its parameters, got {show(args)}")
    try:
        check_entry(kind, name, args)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {name: dict(args)}


def _as_parameters(args: Any, params: dict[str, str], where: str) -> dict[str, Any]:
    """The parameters mapping; a single value sets the first parameter; null sets none."""
    if args is None:
        return {}
    if isinstance(args, dict):
        bad = next((k for k in args if not isinstance(k, str)), None)
        if bad is not None:
            raise ValueError(f"{where}: parameter names are strings, got {show(bad)}")
        return args
    if not params:
        raise ValueError(f"{where}: takes no parameters, got {show(args)} (write {{}} or nothing)")
    return {next(iter(params)): args}


def check_value(kind: str, value: Any, where: str) -> Any:
    """`value` checked against a catalog type (see tftrain.models.layers); returns it normalised."""
    base = kind.rstrip("!?")
    if value is None:
        if kind.endswith("?") or base == "data":
            return None
        raise ValueError(f"{where}: expected {_describe(base)}, got null")
    if base in COMPONENTS:
        return check_component(base, value, where)
    if base == "layer":
        return check_layer(value, where)
    if "|" in base:
        options = base.split("|")
        if value not in options:
            raise ValueError(f"{where}: " + unknown("value", value, options))
        return value
    if base == "activation":
        if value not in catalog.ACTIVATIONS:
            raise ValueError(f"{where}: " + unknown("activation", value, catalog.ACTIVATIONS))
        return value
    if not _fits(base, value):
        raise ValueError(f"{where}: expected {_describe(base)}, got {show(value)}")
    return value


def _describe(base: str) -> str:
    if "|" in base:
        return "one of " + ", ".join(base.split("|"))
    return _EXPECTED.get(base) or f"a {base} (a name, or {{name: {{parameters}}}})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(base: str, value: Any) -> bool:
    if base == "int":
        return _is_int(value)
    if base == "float":
        return _is_number(value)
    if base == "bool":
        return isinstance(value, bool)
    if base == "str":
        return isinstance(value, str)
    if base == "ints":
        return _is_int(value) or (isinstance(value, list) and all(_fits("ints", v) for v in value))
    if base == "floats":
        return _is_number(value) or (isinstance(value, list) and all(_is_number(v) for v in value))
    if base == "shape":
        return isinstance(value, list) and all(v is None or _is_int(v) for v in value)
    return True  # data: any plain YAML value


def check_component(kind: str, value: Any, where: str) -> str | dict[str, dict[str, Any]]:
    """A regularizer, initializer or constraint: `name` or `{name: parameters}`, normalised."""
    table = COMPONENTS[kind]
    raw_name, args = split_entry(value, where, f"a {kind}")
    if is_registered_name(raw_name):  # a plugin's: checked against its own signature
        entry = _plugin_layer(raw_name, args, where, kind)
        return raw_name if isinstance(value, str) else entry
    name = _component_name(kind, raw_name, where)
    params = table[name][1]
    here = f"{where} ({name})"
    args = _as_parameters(args, params, here)
    out = {}
    for key, given in args.items():
        if key not in params:
            raise ValueError(f"{here}: unknown parameter {show(key)}{suggest(str(key), params)}; "
                             f"valid: {', '.join(params) or 'none'}")
        out[key] = check_value(params[key], given, f"{here}.{key}")
    return name if isinstance(value, str) else {name: out}


def _component_name(kind: str, name: Any, where: str) -> str:
    table = COMPONENTS[kind]
    if not isinstance(name, str):
        raise ValueError(f"{where}: expected a {kind} name, got {show(name)}")
    found = (name if name in table else _COMPONENT_BY_CLASS[kind].get(name)
             or _COMPONENT_ALIASES[kind].get(name))
    if found is None:
        raise ValueError(f"{where}: " + unknown(kind, name, table))
    return found


def entry_parts(entry: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(name, parameters) of a normalised layer entry."""
    return next(iter(entry.items()))


def activation_of(entry: dict[str, dict[str, Any]]) -> str | None:
    """The activation a layer applies last (None: none, i.e. raw values or logits)."""
    name, args = entry_parts(entry)
    if name == "activation":
        activation = args["activation"]
    elif name == "softmax":
        activation = "softmax"
    else:
        activation = args.get("activation")
    return None if activation == "linear" else activation


# -- Keras's serialized form (still plain data: no Keras import) ------------------------------


def keras_layer(entry: dict[str, dict[str, Any]], name: str, dtype: str | None = None) -> dict[str, Any]:
    """`{"module", "class_name", "config"}` of a normalised layer entry, named `name`;
    `dtype` applies where the entry sets none (the float32 output layer under mixed precision)."""
    snake, args = entry_parts(entry)
    class_name, params = LAYERS[snake]
    config: dict[str, Any] = {}
    for key, value in args.items():
        base = (params.get(key) or COMMON[key]).rstrip("!?")
        if value is not None and base in COMPONENTS:
            value = keras_component(base, value)
        elif value is not None and base == "layer":
            value = keras_layer(value, f"{name}_{entry_parts(value)[0]}")
        config[key] = value
    config["name"] = args.get("name") or name
    if dtype is not None and args.get("dtype") is None:
        config["dtype"] = dtype
    if snake in HUB_LAYERS:  # keras-hub's own registration, found once keras_hub is imported
        return {"module": "keras_hub.layers", "class_name": class_name, "config": config,
                "registered_name": f"keras_hub>{class_name}"}
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def keras_component(kind: str, value: str | dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Keras's serialized form of a normalised regularizer, initializer or constraint."""
    name, args = (value, {}) if isinstance(value, str) else next(iter(value.items()))
    if is_registered_name(name):  # Keras's deserializer finds it in the registry by this name alone
        return {"module": None, "class_name": name, "config": dict(args), "registered_name": name}
    return {"module": _KERAS_MODULE[kind], "class_name": COMPONENTS[kind][name][0], "config": dict(args),
            "registered_name": None}
