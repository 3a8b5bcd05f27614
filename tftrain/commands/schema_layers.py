"""The parts of the JSON Schema that the config classes declare only as `list[Any]` or `str`,
because validate checks them against tftrain's catalogs: layer entries (sequential `layers`,
graph `nodes`, an application's `head`), augmentation entries, and backbone names. Derived from
the catalogs (tftrain.models.layers, tftrain.spec.catalog, the backbones), so an editor completes the
same names and parameters validate accepts, and flags `conv2dd:` or `filter:` as validate does.
"""

from __future__ import annotations

from typing import Any

from tftrain.models.application import _ALIASES, BACKBONES
from tftrain.models.layers import CLASS_ALIASES, COMMON, COMPONENTS, LAYER_ALIASES, LAYERS
from tftrain.spec import catalog

LAYER, LAYER_ITEM, NODE, AUGMENTATION = "Layer", "LayerListItem", "GraphNode", "Augmentation"
_INT, _NUMBER = {"type": "integer"}, {"type": "number"}
# A single value instead of a mapping sets a layer's first parameter (`dropout: 0.25`), and null
# sets none: any value that is not a mapping.
_SHORT_FORM = {"type": ["null", "string", "number", "boolean", "array"]}


# Parameter types with long name lists: one definition each, referred to by every parameter.
_SHARED = ("activation", *COMPONENTS)


def _shared_definitions() -> dict[str, Any]:
    """`param.activation`, `param.initializer`, ...: the names each of these types accepts."""
    found = {"param.activation": {"type": "string", "enum": sorted(catalog.ACTIVATIONS)}}
    for name, table in COMPONENTS.items():
        found[f"param.{name}"] = {"anyOf": [{"type": "string", "enum": sorted(table)}, {"type": "object"}]}
    return found


def parameter_schema(kind: str, ref: str) -> dict[str, Any]:
    """The schema of one parameter type of the catalog (tftrain.models.layers's docstring)."""
    nullable, base = kind.endswith("?"), kind.rstrip("?!")
    schemas: dict[str, dict[str, Any]] = {
        "int": _INT, "float": _NUMBER, "bool": {"type": "boolean"}, "str": {"type": "string"},
        "ints": {"anyOf": [_INT, {"type": "array", "items": {"anyOf": [_INT, {"type": "array", "items": _INT}]}}]},
        "floats": {"anyOf": [_NUMBER, {"type": "array", "items": _NUMBER}]},
        "shape": {"type": "array", "items": {"type": ["integer", "null"]}},
        "layer": {"$ref": ref + LAYER}, "data": {},
        **{name: {"$ref": f"{ref}param.{name}"} for name in _SHARED},
    }
    schema = {"type": "string", "enum": base.split("|")} if "|" in base else schemas[base]
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


def _parameters(params: dict[str, str], ref: str, allowed=None) -> dict[str, Any]:
    """A mapping of a layer's parameters (only `allowed` ones, where given), nothing else."""
    names = {**params, **COMMON} if allowed is None else {k: v for k, v in params.items() if k in allowed}
    properties = {name: parameter_schema(kind, ref) for name, kind in names.items()}
    return {"anyOf": [{"type": "object", "properties": properties, "additionalProperties": False}, _SHORT_FORM]}


def _entry(names: dict[str, str], ref: str, description: str) -> dict[str, Any]:
    """A name, or a mapping of one name to its parameters (`names`: every accepted spelling ->
    the definition of its parameters)."""
    return {"description": description, "anyOf": [
        {"type": "string", "enum": sorted(names)},
        {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
         "properties": {name: {"$ref": ref + target} for name, target in names.items()}}]}


def definitions(ref: str) -> dict[str, Any]:
    """The definitions to add to the schema (`ref`: the prefix of a definition's $ref)."""
    found: dict[str, Any] = {**_shared_definitions(),
                             **{f"layer.{name}": _parameters(params, ref) for name, (_, params) in LAYERS.items()}}
    spellings = {name: f"layer.{name}" for name in LAYERS}
    spellings.update({alias: f"layer.{target}" for alias, target in LAYER_ALIASES.items()})
    spellings.update({class_name: f"layer.{name}" for name, (class_name, _) in LAYERS.items()})
    spellings.update({alias: spellings[target] for alias, target in CLASS_ALIASES.items() if target in spellings})
    found[LAYER] = _entry(spellings, ref, "A Keras layer by snake_case (or class) name, alone or with its "
                                          "parameters: flatten, {dropout: 0.25}, {conv2d: {filters: 32, kernel_size: 3}}")
    found[LAYER_ITEM] = {"anyOf": [{"$ref": ref + LAYER}, {
        "type": "object", "description": "A block of layers repeated `repeat` times",
        "properties": {"repeat": {"type": "integer", "minimum": 1}, "layers": {"type": "array", "items": {"$ref": ref + LAYER_ITEM}}},
        "additionalProperties": False}]}
    found[NODE] = {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "description": "The node's name, which later nodes' inputs use"},
        "layer": {"$ref": ref + LAYER},
        "inputs": {"type": "array", "items": {"type": "string"},
                   "description": "Nodes (or data columns) it reads; none: the node before it"},
        "repeat": {"type": "integer", "minimum": 1, "description": "A group: its nodes, this many times in a row"},
        "nodes": {"type": "array", "items": {"$ref": ref + NODE}}}}
    for name, (_, allowed) in catalog.AUGMENTATIONS.items():
        found[f"augmentation.{name}"] = _parameters(LAYERS[name][1], ref, allowed)
    found[AUGMENTATION] = _entry({name: f"augmentation.{name}" for name in catalog.AUGMENTATIONS}, ref,
                                 "A Keras preprocessing layer for training batches: {random_flip: {mode: "
                                 "horizontal}}, {random_translation: {height_factor: 0.1, width_factor: 0.1}}")
    return found


def backbone_names() -> list[str]:
    """Every name `model.name` of an application model accepts."""
    return sorted({*BACKBONES, *_ALIASES})
