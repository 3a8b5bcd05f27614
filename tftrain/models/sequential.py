"""`model.type: sequential`: a stack of built-in Keras layers, each written by name with its
Keras arguments, on an input shaped (and rescaled) by the data.

    model:
      type: sequential
      layers:
        - conv2d: {filters: 32, kernel_size: 3, padding: same, kernel_regularizer: {l2: 1.0e-4}}
        - batch_normalization: {}
        - activation: relu
        - {repeat: 2, layers: [{conv2d: {filters: 64, kernel_size: 3}}, {max_pooling2d: {}}]}
        - flatten
        - dense: {units: 10}

The last layer is the output: its width must match what the loss needs (checked before the run
starts). A `{repeat: N, layers: [...]}` entry stands for its layers N times over.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import field_validator

from tftrain.models.base import ModelSchema, ModelSpec, model_input
from tftrain.models.layer_config import activation_of, check_expanded_size, check_layer, entry_parts, is_layer_entry
from tftrain.spec.base import show, suggest


def check_layer_list(value: Any, where: str = "") -> list:
    """A non-empty list of layer entries and `{repeat: N, layers: [...]}` groups, normalised."""
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else show(value)
        raise ValueError(f"{where}: " * bool(where) + "expected a non-empty list of layers, such as "
                         f"[{{dense: {{units: 10}}}}], got {got}")
    return [check_layer(item, f"{where}[{i}]") if is_layer_entry(item) else _check_group(item, f"{where}[{i}]")
            for i, item in enumerate(value)]


def _check_group(value: dict, where: str) -> dict[str, Any]:
    unknown = [key for key in value if key not in ("repeat", "layers")]
    if unknown:
        raise ValueError(f"{where}: unknown key {show(unknown[0])} in a repeated group"
                         f"{suggest(str(unknown[0]), ['repeat', 'layers'])}; valid keys: repeat, layers")
    repeat = value.get("repeat")
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise ValueError(f"{where}.repeat: expected a positive integer, got {show(repeat)}")
    if "layers" not in value:
        raise ValueError(f"{where}.layers: required key is missing (the layers to repeat)")
    return {"repeat": repeat, "layers": check_layer_list(value["layers"], f"{where}.layers")}


def expand(items: list) -> list[dict]:
    """The layer entries of a checked list, groups repeated."""
    out: list[dict] = []
    for item in items:
        if "repeat" in item and "layers" in item and len(item) == 2:
            for _ in range(item["repeat"]):
                out += expand(item["layers"])
        else:
            out.append(item)
    return out


def unique_names(entries: list[dict]) -> list[str]:
    """Each layer's name: its `name` parameter, else Keras's style (conv2d, conv2d_1, ...)."""
    given = {entry_parts(e)[1].get("name") for e in entries} - {None}
    counts: dict[str, int] = {}
    names = []
    for entry in entries:
        kind, args = entry_parts(entry)
        if args.get("name"):
            names.append(args["name"])
            continue
        while True:
            n = counts.get(kind, 0)
            counts[kind] = n + 1
            candidate = kind if n == 0 else f"{kind}_{n}"
            if candidate not in given:
                break
        names.append(candidate)
    return names


def parameters_text(args: dict[str, Any]) -> str:
    """A layer's parameters as one compact line (for `tftrain show`): `filters=32, padding=same,
    kernel_regularizer=l2(l2=0.0001)`."""
    return ", ".join(f"{k}={_text(v)}" for k, v in args.items() if k != "name")


def _text(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), dict):
        name, args = next(iter(value.items()))
        return f"{name}({parameters_text(args)})"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


class SequentialModel(ModelSchema):
    """A stack of Keras layers by name; the input comes from the data, the last layer is the output."""

    type: Literal["sequential"]
    layers: list[Any]  # no sensible default: the layers are the model

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, value: Any) -> list:
        layers = check_layer_list(value)
        check_expanded_size(layers, "layers")
        names, seen = unique_names(expand(layers)), set()
        twice = next((n for n in names if n in seen or seen.add(n)), None)
        if twice is not None:
            raise ValueError(f"layer name {twice!r} is used twice; layer names must be unique")
        return layers

    def layer_list(self) -> list[tuple[str, dict]]:
        """(name, entry) of every layer in order, groups expanded."""
        entries = expand(self.layers)
        return list(zip(unique_names(entries), entries))

    def layer_rows(self) -> list[tuple[str, str, str, str]]:
        rows, previous = [], "input"
        for name, entry in self.layer_list():
            kind, args = entry_parts(entry)
            rows.append((name, kind, parameters_text(args), previous))
            previous = name
        return rows

    def output_activation_name(self) -> str | None:
        """The last layer's activation (None: raw values, or logits)."""
        return activation_of(self.layer_list()[-1][1])

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """Input (rescaled as the data needs) -> the layers in order; the last one computes in
        spec.output_dtype (float32 under mixed precision)."""
        import keras

        from tftrain.models.keras_build import call_layer, image_input, kind_of, make_layer

        layers = self.layer_list()
        inputs, x = model_input(spec)
        x = image_input(x, spec, [kind_of(layers[0][1])])
        for i, (name, entry) in enumerate(layers):
            where = f"model.layers[{i}] ({name})"
            dtype = spec.output_dtype if i == len(layers) - 1 else None
            layer = make_layer(entry, name, where, dtype)
            x = call_layer(layer, kind_of(entry), [x], where, spec.dataset, spec.input_shape)
        return keras.Model(inputs, x, name="sequential")

    def check(self, spec: ModelSpec) -> None:
        """Build symbolically: any layer that cannot take its input, or an output of the wrong
        width, is a one-line error naming the layer."""
        from tftrain.models.keras_build import check_symbolically

        layers = self.layer_list()
        last = f"model.layers[{len(layers) - 1}] ({layers[-1][0]})"
        check_symbolically(lambda: self.build(spec, load_weights=False), spec, last)
