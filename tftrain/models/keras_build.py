"""Building models from checked layer entries with Keras's own deserializer, and the symbolic
build that finds shape problems before anything is written.

Imported by the builders only (it imports Keras). Every problem Keras reports while a layer is
made or called becomes a one-line DataError naming the layer's place in the config and its name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import keras
from keras.src.backend.common.stateless_scope import StatelessScope  # no public equivalent

from tftrain import plugins
from tftrain.errors import DataError, UserError
from tftrain.models.base import ModelSpec
from tftrain.models.layer_config import entry_parts, keras_layer
from tftrain.models.layers import ARGUMENT_INPUTS, HUB_LAYERS, IMAGE_LAYERS, LIST_INPUTS
from tftrain.plugins import is_registered_name

if TYPE_CHECKING:
    from tftrain.models.base import ModelSpec

# Keras's "Input 0 of layer "conv2d" is incompatible with the layer: " prefix (our message names
# the layer already) and its "Full shape received" suffix (our message gives the shape).
_KERAS_PREFIX = re.compile(r"^(Exception encountered when calling \w+\.call\(\)\.\s*)?"
                           r"(Input \d+ (with name '[^']*' )?of layer [\"'][^\"']*[\"'] is incompatible with the layer: )?")
_KERAS_SUFFIX = re.compile(r"\s*Full shape received: .*$")


def keras_message(exc: BaseException) -> str:
    """The informative first line of a Keras error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = next((line for line in lines if not line.startswith("Exception encountered")), "") \
        or exc.__class__.__name__
    return _KERAS_SUFFIX.sub("", _KERAS_PREFIX.sub("", text)).rstrip(".")[:300]


def make_layer(entry: dict, name: str, where: str, dtype: str | None = None) -> keras.layers.Layer:
    """The Keras layer of a normalised entry, made by keras.layers.deserialize (safe mode); a
    plugin's layer by its class, registered under the entry's name."""
    kind, args = entry_parts(entry)
    try:
        if is_registered_name(kind):
            return plugins.build("layer", kind, {"name": name, **({"dtype": dtype} if dtype else {}), **args})
        if kind in HUB_LAYERS:
            from tftrain.models.hub_preset import import_keras_hub

            import_keras_hub()  # registers keras-hub's classes, which deserialize finds by their registered name
        return keras.layers.deserialize(keras_layer(entry, name, dtype))
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 (Keras raises ValueError/TypeError/... for bad arguments)
        raise DataError(f"{where}: {keras_message(exc)}") from None


def call_layer(layer: keras.layers.Layer, kind: str, inputs: list, where: str, dataset: str = "",
               data_shape: tuple = ()):
    """Call `layer` on `inputs` as its kind takes them: one tensor, a list (merging,
    attention), or separate arguments (multi-head attention; one input attends to itself)."""
    try:
        if kind in LIST_INPUTS:
            return layer(inputs)
        if kind in ARGUMENT_INPUTS:
            return layer(*inputs) if len(inputs) > 1 else layer(inputs[0], inputs[0])
        return layer(inputs[0])
    except Exception as exc:  # noqa: BLE001 (any Keras shape or type error)
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        data = f" (the examples of {dataset} have shape {data_shape})" if dataset else ""
        raise DataError(f"{where}: cannot take an input of shape {shapes}: {keras_message(exc)}{data}") from None


def image_input(x, spec: ModelSpec, first_layers: list[str]):
    """Grey images of shape (H, W) get a channel axis when a 2-D image layer reads them."""
    if len(spec.input_shape) == 2 and any(kind in IMAGE_LAYERS for kind in first_layers):
        return keras.layers.Reshape((*spec.input_shape, 1), name="add_channel")(x)
    return x


@contextlib.contextmanager
def symbolic() -> Iterator[None]:
    """A build that creates no variable values (keras StatelessScope), then forgets its layers'
    names so that the real model's names are the same."""
    try:
        with StatelessScope(initialize_variables=False):
            yield
    finally:
        # Names only: Keras's default also runs a full garbage collection (~0.5 s with TensorFlow
        # loaded, more in a long-lived process), for a throwaway model that holds no variable values.
        keras.backend.clear_session(free_memory=False)


def check_symbolically(build: Callable[[], keras.Model], spec: ModelSpec, last: str) -> None:
    """Build the model symbolically (shape errors surface as DataErrors naming the layer) and
    check its output against what the loss needs; `last` names the output layer in messages."""
    check_output(tuple(build_symbolically(build).outputs[0].shape), spec, last)


def build_symbolically(build: Callable[[], keras.Model]) -> keras.Model:
    """The model built symbolically; shape errors surface as DataErrors naming the layer."""
    with symbolic():
        try:
            return build()
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 (what Keras says about the model as a whole)
            raise DataError(f"model: {keras_message(exc)}") from None


def check_output(shape: tuple, spec: ModelSpec, last: str) -> None:
    """The output must be (batch, spec.outputs), the width the loss and the labels need."""
    if len(shape) == 2 and shape[-1] == spec.outputs:
        return
    why = {"classes": f"one per class of {spec.dataset}", "one_hot": "one per column of the one-hot labels",
           "binary": "one unit per label", "score": "one unit per label"}.get(spec.task, "one per target value")
    hint = ("; flatten or pool it first (flatten, global_average_pooling2d, ...)" if len(shape) > 2
            else f"; give the last layer {spec.outputs} units")
    raise DataError(f"{last}: the model's output has shape {shape}, but the loss needs (None, {spec.outputs}): "
                    f"{spec.outputs} output{'s' if spec.outputs != 1 else ''}, {why}{hint}")


def kind_of(entry: dict) -> str:
    """The catalog name of a normalised layer entry."""
    return entry_parts(entry)[0]
