"""Model builders: one per `model.type`, each `(model_config, spec) -> keras.Model`.

Builders know nothing about datasets: they get the input shape, how to scale the input and how
many outputs the loss needs (`ModelSpec`, derived from the data by `model_spec`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras

from tftrain.config import CnnModel, Config, DenseModel, LinearModel
from tftrain.data.base import LoadedData
from tftrain.errors import DataError

# Losses whose model has a single output unit per example (binary classification).
_ONE_UNIT_LOSSES = {"binary_crossentropy", "hinge", "squared_hinge"}


@dataclass(frozen=True)
class ModelSpec:
    """What a builder needs to know about the data."""

    input_shape: tuple[int, ...]
    input_scale: float | None
    outputs: int
    output_dtype: str  # float32 even under mixed precision, for a numerically safe loss


def model_spec(config: Config, data: LoadedData) -> ModelSpec:
    """Derive input shape and output units from the data and the loss."""
    loss = config.loss.canonical
    y = data.y_train
    if loss == "sparse_categorical_crossentropy":
        if data.num_classes is None:
            raise DataError(f"loss sparse_categorical_crossentropy needs integer class labels; "
                            f"the labels of {config.data.dataset} are {y.dtype}")
        outputs = data.num_classes
    elif loss in _ONE_UNIT_LOSSES:
        outputs = 1
    else:
        outputs = int(math.prod(y.shape[1:])) or 1
    return ModelSpec(tuple(data.x_train.shape[1:]), data.input_scale, outputs, "float32")


def build_model(config: Config, data: LoadedData) -> keras.Model:
    """Build the configured model for this data."""
    spec = model_spec(config, data)
    return MODELS[config.model.type](config.model, spec)


def _inputs(spec: ModelSpec):
    inputs = keras.Input(shape=spec.input_shape, name="inputs")
    x = keras.layers.Rescaling(spec.input_scale, name="rescale")(inputs) if spec.input_scale else inputs
    return inputs, x


def _output(x, cfg, spec: ModelSpec, name: str = "outputs", **kwargs):
    return keras.layers.Dense(spec.outputs, activation=cfg.output_activation, dtype=spec.output_dtype,
                              name=name, **kwargs)(x)


def _dense_stack(x, layer_units: list[int], activation: str, dropout: float):
    for i, units in enumerate(layer_units):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def build_dense(cfg: DenseModel, spec: ModelSpec) -> keras.Model:
    """Flatten -> [Dense(units, activation) -> Dropout]* -> Dense(outputs)."""
    inputs, x = _inputs(spec)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _dense_stack(x, cfg.hidden, cfg.activation, cfg.dropout)
    return keras.Model(inputs, _output(x, cfg, spec), name="dense")


def build_cnn(cfg: CnnModel, spec: ModelSpec) -> keras.Model:
    """[Conv2D -> MaxPool]* -> Conv2D -> Flatten -> Dense* -> Dense(outputs) (the CIFAR-10 tutorial)."""
    if len(spec.input_shape) not in (2, 3):
        raise DataError(f"model.type cnn needs images of shape (height, width[, channels]); "
                        f"the data has examples of shape {spec.input_shape}")
    inputs, x = _inputs(spec)
    if len(spec.input_shape) == 2:  # grayscale (N, H, W) images: add the channel axis
        x = keras.layers.Reshape((*spec.input_shape, 1), name="add_channel")(x)
    for i, filters in enumerate(cfg.conv):
        x = keras.layers.Conv2D(filters, cfg.kernel_size, activation=cfg.activation, name=f"conv_{i}")(x)
        if i < len(cfg.conv) - 1:
            x = keras.layers.MaxPooling2D(cfg.pool_size, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _dense_stack(x, cfg.dense, cfg.activation, cfg.dropout)
    return keras.Model(inputs, _output(x, cfg, spec), name="cnn")


def build_linear(cfg: LinearModel, spec: ModelSpec) -> keras.Model:
    """y = w*x + b: one Dense layer named `linear`, initialised to w_init and b_init."""
    inputs, x = _inputs(spec)
    if len(spec.input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = _output(x, cfg, spec, name="linear",
                      kernel_initializer=keras.initializers.Constant(cfg.w_init),
                      bias_initializer=keras.initializers.Constant(cfg.b_init))
    return keras.Model(inputs, outputs, name="linear")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "dense": build_dense,
    "cnn": build_cnn,
    "linear": build_linear,
}
