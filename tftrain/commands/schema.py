"""`tftrain schema`: the JSON Schema of a config file, for editors (completion, hover, checks).

Derived from the pydantic schema classes, so every key a class declares is covered without an
edit here: each key's description is its `# why` comment in the class's source, the names a
field accepts (datasets, model types, losses, optimizers, metrics, activations, anything checked
by `tftrain.spec.base.NameCheck` or declared by a class's own pydantic JSON-schema hook) become
enums, and `data.options` follows the dataset's own options class. A config *file* may be a
fragment that another file extends, so the schema requires no key, and any string may be a
`${env:...}` reference: `tftrain validate` checks required keys, cross-key rules and resolved
values on the composed config. Draft-07, which the YAML language
server (VS Code's and other editors' YAML support) reads.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import textwrap
import tokenize
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from tftrain.errors import UserError
from tftrain.spec.base import NameCheck, building_validators
from tftrain.spec.compose import ENV_SYNTAX, EXTENDS, EXTENDS_HELP
from tftrain.spec.datasets import DATASETS
from tftrain.spec.schedules import SCHEDULES
from tftrain.spec.schema import Config, DataConfig, component_choices

DRAFT = "http://json-schema.org/draft-07/schema#"
DEFINITIONS = "definitions"  # draft-07's name for $defs
DEFAULT_FILE = "tftrain.schema.json"  # where `tftrain init` points editors, and README says to write it


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a tftrain config file."""
    options = list(dict.fromkeys(entry.options for entry in DATASETS.values()))
    with building_validators():
        refs, schema = models_json_schema([(m, "validation") for m in (Config, DataConfig, *options)],
                                          ref_template=f"#/{DEFINITIONS}/{{model}}", schema_generator=_Generator)
    definitions = schema["$defs"]
    data = definitions[_name(refs[DataConfig, "validation"])]
    data["allOf"] = [
        {"if": {"properties": {"dataset": {"const": name}}, "required": ["dataset"]},
         "then": {"properties": {"options": refs[entry.options, "validation"]}}}
        for name, entry in DATASETS.items()]
    _add_catalogs(definitions)
    top = definitions.pop(_name(refs[Config, "validation"]))
    top["properties"] = {EXTENDS: _EXTENDS_SCHEMA, **top["properties"]}
    schema = {"$schema": DRAFT, **top, "title": "tftrain config", DEFINITIONS: definitions}
    _allow_env_references(schema)
    return schema


def _add_catalogs(definitions: dict[str, Any]) -> None:
    """What the classes declare as free lists and strings, from the catalogs validate checks them
    against: layer entries, graph nodes, augmentation entries, backbone names."""
    from tftrain.commands import schema_layers as layers

    ref = f"#/{DEFINITIONS}/"
    definitions.update(layers.definitions(ref))
    for model, key, item in (("SequentialModel", "layers", layers.LAYER_ITEM), ("GraphModel", "nodes", layers.NODE),
                             ("ApplicationModel", "head", layers.LAYER_ITEM)):
        definitions[model]["properties"][key]["items"] = {"$ref": ref + item}
    definitions["DataConfig"]["properties"]["augmentation"]["items"] = {"$ref": ref + layers.AUGMENTATION}
    definitions["ApplicationModel"]["properties"]["name"]["enum"] = layers.backbone_names()
    rate = definitions["OptimizerConfig"]["anyOf"][1]["properties"]["learning_rate"]
    rate["description"] = (f"{rate.get('description', '')}; a number, or {{schedule: NAME, ...}} with NAME one of "
                           f"{', '.join(SCHEDULES)} (Keras's arguments, warmup_steps or warmup_epochs)")


def schema_text() -> str:
    """The schema as indented JSON, ending in a newline."""
    return json.dumps(config_schema(), indent=2) + "\n"


def write_schema(output: str | Path) -> Path:
    """Write the schema to `output` atomically; returns the path."""
    from tftrain.runs import atomic_write

    output = Path(output)
    if output.is_dir():
        raise UserError(f"--output: {output} is a folder; give a file name such as {output / DEFAULT_FILE}")
    if not output.parent.is_dir():
        raise UserError(f"--output: {output.parent} does not exist; create it or choose another path")
    atomic_write(output, schema_text())
    return output


_EXTENDS_SCHEMA = {
    "description": f"{EXTENDS_HELP} Strings may use {ENV_SYNTAX}.",
    "anyOf": [{"type": "string", "minLength": 1},
              {"type": "array", "items": {"type": "string", "minLength": 1}}],
}


# A string that reads an environment variable: the schema checks files as written, before
# composition resolves them, so `dataset: ${env:DATASET}` must not show as an unknown dataset.
_ENV_STRING = {"type": "string", "pattern": r"\$\{env:"}


def _allow_env_references(node: Any) -> None:
    """Let every string restricted to names or a pattern also be a `${env:...}` reference."""
    if isinstance(node, list):
        for item in node:
            _allow_env_references(item)
    if not isinstance(node, dict):
        return
    for value in node.values():
        _allow_env_references(value)
    if node.get("type") == "string" and "anyOf" not in node and {"enum", "const", "pattern"} & set(node):
        restricted = {key: node.pop(key) for key in ("type", "enum", "const", "pattern") if key in node}
        node["anyOf"] = [restricted, _ENV_STRING]


def _name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


class _Generator(GenerateJsonSchema):
    """pydantic's generator, plus descriptions from comments, enums of names, and no `required`."""

    def model_schema(self, schema) -> dict[str, Any]:
        """The object schema of one schema class, annotated."""
        cls = schema["cls"]
        json_schema = super().model_schema(schema)
        json_schema.pop("required", None)  # a file may be a fragment; checked after composition
        properties = json_schema.get("properties", {})
        comments = field_comments(cls)
        for name, prop in list(properties.items()):
            prop.pop("title", None)
            if name in comments and "description" not in prop:
                properties[name] = prop = _described(prop, user_text(cls.__name__, name, comments[name]))
        for name, check in _name_checks(cls).items():
            if name in properties:
                _allow_names(properties[name], check.names)
        choices = component_choices(cls)
        return _component(json_schema, choices) if choices else json_schema

    def tagged_union_schema(self, schema) -> dict[str, Any]:
        """A discriminated union (model types) as anyOf: a fragment may leave `type` to a base."""
        json_schema = super().tagged_union_schema(schema)
        json_schema.pop("discriminator", None)  # OpenAPI's keyword, not JSON Schema's
        json_schema["anyOf"] = json_schema.pop("oneOf")
        return json_schema


# What a required key is, for the hover of keys whose source comment only says why there is no
# default (written for the next contributor, not for the user).
REQUIRED_TEXT = {
    ("ApplicationModel", "name"): "The keras.applications backbone: mobilenet_v3_small, resnet50, efficientnet_b0, "
                                  "... (snake_case, or Keras's name such as MobileNetV3Small)",
    ("SequentialModel", "layers"): "The model's Keras layers in order, by snake_case name with their parameters: "
                                   "[{conv2d: {filters: 32, kernel_size: 3}}, flatten, {dense: {units: 10}}]; "
                                   "{repeat: N, layers: [...]} repeats a block",
    ("GraphModel", "nodes"): "Named nodes {name, layer, inputs}; `input` is the data, the last node the output; "
                             "{name, repeat, nodes} repeats a group",
    ("DataConfig", "dataset"): "What to train on: mnist, fashion_mnist, cifar10, npz, csv, image_folder, tfrecord, "
                               "tfds, synthetic_regression, synthetic_binary",
    ("Config", "data"): "The data to train on: dataset, path, batch_size, validation, augmentation, ...",
    ("Config", "loss"): "The loss by Keras name (sparse_categorical_crossentropy, mse, ...), or {name: ..., "
                        "from_logits: true, label_smoothing: 0.1}",
}


def user_text(cls: str, field: str, comment: str) -> str:
    """A key's hover text from its source comment: for a required key, what it is (the comment
    says only why it has no default); otherwise why its default was chosen (editors show the
    default beside it)."""
    for marker in ("no sensible default:", "required:"):
        if comment.startswith(marker):
            return REQUIRED_TEXT.get((cls, field), f"Required: {comment.removeprefix(marker).strip()}")
    return comment


def _described(prop: dict[str, Any], text: str) -> dict[str, Any]:
    """`prop` with a description; draft-07 ignores keywords beside a $ref, so a $ref is wrapped."""
    if "$ref" in prop:
        prop = {"allOf": [{"$ref": prop.pop("$ref")}], **prop}
    return {**prop, "description": text}


def _allow_names(prop: dict[str, Any], names) -> None:
    """Restrict the string branches of `prop` (and of its list items) to `names`."""
    if prop.get("type") == "string":
        prop["enum"] = sorted(names)
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        _allow_names(prop["items"], names)
    for branch in prop.get("anyOf", ()):
        _allow_names(branch, names)


def _component(obj: dict[str, Any], choices: dict[str, frozenset[str]]) -> dict[str, Any]:
    """A `name` + Keras parameters block: a bare name, or a mapping whose keys are the
    parameters of the named component."""
    names = sorted(choices)
    obj["properties"]["name"] = {**obj["properties"].get("name", {}), "type": "string", "enum": names}
    for parameter in sorted(set().union(*choices.values())):
        obj["properties"].setdefault(parameter, {})  # listed for completion; Keras checks the value
    obj["additionalProperties"] = False
    obj["allOf"] = [{"if": {"properties": {"name": {"const": name}}, "required": ["name"]},
                     "then": {"propertyNames": {"enum": sorted({"name", *choices[name]})}}} for name in names]
    described = {key: obj.pop(key) for key in ("title", "description") if key in obj}
    return {**described, "anyOf": [{"type": "string", "enum": names}, obj]}


def _name_checks(cls: type[BaseModel]) -> dict[str, NameCheck]:
    """Field name -> the NameCheck validating it, over the class's field validators."""
    found = {}
    for decorator in cls.__pydantic_decorators__.field_validators.values():
        check = getattr(decorator.func, "__func__", decorator.func)  # a classmethod's function
        if isinstance(check, NameCheck):
            found.update(dict.fromkeys(decorator.info.fields, check))
    return found


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its `# why` comment in the source of `cls` or a base class (the nearest
    wins): the comment on the field's line(s), else the comment lines right above it."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if issubclass(klass, BaseModel) and klass is not BaseModel:
            found.update(_comments_in(klass))
    return found


def _comments_in(klass: type) -> dict[str, str]:
    try:
        source = _parsed_source(inspect.getsourcefile(klass) or "")
    except TypeError:  # a built-in class: no source
        source = None
    node = source and _class_node(source[0], klass.__qualname__)
    if node is None:  # no source (built in a REPL, or a frozen app): no descriptions
        return {}
    lines = source[1]
    found = {}
    for field in node.body:
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name):
            text = _comments(lines[field.lineno - 1:field.end_lineno])
            if not text:  # the block of comment lines right above the field
                first = field.lineno
                while first > 1 and lines[first - 2].lstrip().startswith("#"):
                    first -= 1
                text = [_comment_text(line) for line in lines[first - 1:field.lineno - 1]]
            if text:
                found[field.target.id] = " ".join(text)
    return found


@functools.cache
def _parsed_source(path: str) -> tuple[ast.Module, list[str]] | None:
    """A module's syntax tree and lines, read and parsed once per file (inspect.getsource
    parses the whole file again for every class it is asked about)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return ast.parse(text), text.splitlines()


def _class_node(tree: ast.Module, qualname: str) -> ast.ClassDef | None:
    """The definition of the class named `qualname` (`Outer.Inner`) in `tree`; None for one
    defined inside a function."""
    node: ast.AST = tree
    for name in qualname.split("."):
        node = next((child for child in getattr(node, "body", ())
                     if isinstance(child, ast.ClassDef) and child.name == name), None)
        if node is None:
            return None
    return node


def _comments(statement: list[str]) -> list[str]:
    """The comments within the lines of one statement (tokenized: a `#` in a string is none)."""
    tokens = tokenize.generate_tokens(io.StringIO(textwrap.dedent("\n".join(statement))).readline)
    return [_comment_text(token.string) for token in tokens if token.type == tokenize.COMMENT]


def _comment_text(comment: str) -> str:
    return comment.strip().lstrip("#").strip()
