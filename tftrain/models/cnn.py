"""`model.type: cnn`: Conv2D/MaxPool stack -> Flatten -> Dense, the CIFAR-10 tutorial's model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from tftrain.errors import DataError
from tftrain.models.base import ModelSchema, ModelSpec, dense_stack, model_input, output_layer
from tftrain.spec.catalog import check_activation


class CnnModel(ModelSchema):
    """Conv2D/MaxPool stack -> Flatten -> Dense: the CIFAR-10 tutorial's model."""

    type: Literal["cnn"]
    conv: list[PositiveInt] = [32, 64, 64]  # the CIFAR-10 tutorial's filters
    kernel_size: PositiveInt = 3  # the tutorial's 3x3 kernels
    pool_size: PositiveInt = 2  # 2x2 max-pooling between conv layers halves the resolution
    dense: list[PositiveInt] = [64]  # the tutorial's classifier head
    activation: str = "relu"  # the standard hidden activation
    output_activation: str | None = None  # logits: pair with from_logits=true, numerically stabler
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # off: regularisation is opt-in
    batch_norm: bool = False  # off: the tutorial's model; true: Conv -> BatchNormalization -> activation
    # Keras's default; its moving statistics (what validation and inference use) take about
    # 460 steps to settle at 0.99, 44 at 0.9: lower it for short runs
    batch_norm_momentum: Annotated[float, Field(gt=0, lt=1)] = 0.99

    _check_activation = field_validator("activation", "output_activation")(check_activation)

    def check(self, spec: ModelSpec) -> None:
        """Images only, large enough for every conv layer (valid padding) and pooling step."""
        shape, name = spec.input_shape, spec.dataset
        if len(shape) not in (2, 3):
            raise DataError(f"model.type cnn needs images of shape (height, width[, channels]); the examples "
                            f"of {name} have shape {shape}: use model.type dense for vectors")
        # Follow the spatial size through the stack: conv (valid padding) shrinks by kernel_size - 1,
        # pooling divides by pool_size. Below 1 pixel Keras fails with a negative-dimension error.
        height, width = shape[:2]
        size = min(height, width)
        for i in range(len(self.conv)):
            size = size - self.kernel_size + 1
            if size >= 1 and i < len(self.conv) - 1:
                size //= self.pool_size
            if size < 1:
                raise DataError(f"model.conv: {len(self.conv)} conv layers (kernel_size {self.kernel_size}, "
                                f"pool_size {self.pool_size}) shrink {height}x{width} images of {name} below one "
                                f"pixel at layer {i + 1}; use fewer conv layers or larger images")

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """[Conv2D -> MaxPool]* -> Conv2D -> Flatten -> Dense* -> Dense(outputs)."""
        import keras

        inputs, x = model_input(spec)
        if len(spec.input_shape) == 2:  # grayscale (N, H, W) images: add the channel axis
            x = keras.layers.Reshape((*spec.input_shape, 1), name="add_channel")(x)
        for i, filters in enumerate(self.conv):
            if self.batch_norm:  # the bias would only shift what BatchNormalization re-centres
                x = keras.layers.Conv2D(filters, self.kernel_size, use_bias=False, name=f"conv_{i}")(x)
                x = keras.layers.BatchNormalization(momentum=self.batch_norm_momentum, name=f"bn_{i}")(x)
                x = keras.layers.Activation(self.activation, name=f"act_{i}")(x)
            else:
                x = keras.layers.Conv2D(filters, self.kernel_size, activation=self.activation, name=f"conv_{i}")(x)
            if i < len(self.conv) - 1:
                x = keras.layers.MaxPooling2D(self.pool_size, name=f"pool_{i}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_stack(x, self.dense, self.activation, self.dropout)
        return keras.Model(inputs, output_layer(x, spec, self.output_activation), name="cnn")
