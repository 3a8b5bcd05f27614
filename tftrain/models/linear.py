"""`model.type: linear`: y = w*x + b, one Dense unit per output and no hidden layers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from tftrain.models.base import ModelSchema, ModelSpec, model_input, output_layer
from tftrain.models.layer_config import check_component
from tftrain.spec.catalog import check_activation

LAYER = "linear"  # the layer holding w and b


class LinearModel(ModelSchema):
    """y = w*x + b (one Dense unit per output, no hidden layers)."""

    type: Literal["linear"]
    # A number, or a Keras initializer such as {random_normal: {stddev: 1.0}} (seeded by `seed`).
    w_init: float | str | dict[str, Any] = 5.0  # the basic-training-loop tutorial starts far from the true w=3
    b_init: float | str | dict[str, Any] = 0.0  # and from b=0
    output_activation: str | None = None  # raw values (regression) or logits (classification)

    _check_activation = field_validator("output_activation")(check_activation)

    @field_validator("w_init", "b_init", mode="before")
    @classmethod
    def _initializer(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return check_component("initializer", value, "")
        except ValueError as exc:
            raise ValueError(f"expected a number or a Keras initializer; {str(exc).lstrip(': ')}") from None

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """y = w*x + b: one Dense layer named `linear`, initialised to w_init and b_init."""
        import keras

        from tftrain.models.layer_config import keras_component

        def initializer(value):
            if isinstance(value, float):
                return keras.initializers.Constant(value)
            return keras.initializers.deserialize(keras_component("initializer", value))

        inputs, x = model_input(spec)
        if len(spec.input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        outputs = output_layer(x, spec, self.output_activation, name=LAYER,
                               kernel_initializer=initializer(self.w_init),
                               bias_initializer=initializer(self.b_init))
        return keras.Model(inputs, outputs, name="linear")

    def initial_values(self) -> dict[str, float]:
        """w and b before training, where they are constants (random ones are drawn at build)."""
        return {k: v for k, v in (("w", self.w_init), ("b", self.b_init)) if isinstance(v, float)}

    def logged_values(self, model) -> dict[str, float]:
        """w and b while the model has one input and one output (the tutorial's case), else {}."""
        import keras

        kernel, bias = (keras.ops.convert_to_numpy(v) for v in model.get_layer(LAYER).weights)
        if kernel.size != 1:
            return {}
        return {"w": float(kernel.reshape(())), "b": float(bias.reshape(()))}
