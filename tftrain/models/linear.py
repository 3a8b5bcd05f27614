"""`model.type: linear`: y = w*x + b, one Dense unit per output and no hidden layers."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from tftrain.models.base import ModelSchema, ModelSpec, model_input, output_layer
from tftrain.schema import check_activation

LAYER = "linear"  # the layer holding w and b


class LinearModel(ModelSchema):
    """y = w*x + b (one Dense unit per output, no hidden layers)."""

    type: Literal["linear"]
    w_init: float = 5.0  # the basic-training-loop tutorial starts far from the true w=3
    b_init: float = 0.0  # and from b=0
    output_activation: str | None = None  # raw values (regression) or logits (classification)

    _check_activation = field_validator("output_activation")(check_activation)

    def build(self, spec: ModelSpec):
        """y = w*x + b: one Dense layer named `linear`, initialised to w_init and b_init."""
        import keras

        inputs, x = model_input(spec)
        if len(spec.input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        outputs = output_layer(x, spec, self.output_activation, name=LAYER,
                               kernel_initializer=keras.initializers.Constant(self.w_init),
                               bias_initializer=keras.initializers.Constant(self.b_init))
        return keras.Model(inputs, outputs, name="linear")

    def initial_values(self) -> dict[str, float]:
        """w and b before training: the constant initial values."""
        return {"w": self.w_init, "b": self.b_init}

    def logged_values(self, model) -> dict[str, float]:
        """w and b while the model has one input and one output (the tutorial's case), else {}."""
        import keras

        kernel, bias = (keras.ops.convert_to_numpy(v) for v in model.get_layer(LAYER).weights)
        if kernel.size != 1:
            return {}
        return {"w": float(kernel.reshape(())), "b": float(bias.reshape(()))}
