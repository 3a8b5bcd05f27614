"""`model.type: dense`: Flatten -> Dense(hidden...) -> Dense(outputs), the MNIST tutorial's model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from tftrain.models.base import ModelSchema, ModelSpec, dense_stack, model_input, output_layer
from tftrain.spec.catalog import check_activation


class DenseModel(ModelSchema):
    """Flatten -> Dense(hidden...) -> Dense(outputs): the MNIST tutorial's model."""

    type: Literal["dense"]
    hidden: list[PositiveInt] = [128]  # the MNIST tutorial's single hidden layer
    activation: str = "relu"  # the standard hidden activation
    output_activation: str | None = "softmax"  # probabilities, matching a from_logits=false loss
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0  # off: regularisation is opt-in

    _check_activation = field_validator("activation", "output_activation")(check_activation)

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """Flatten -> [Dense(units, activation) -> Dropout]* -> Dense(outputs)."""
        import keras

        inputs, x = model_input(spec)
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense_stack(x, self.hidden, self.activation, self.dropout)
        return keras.Model(inputs, output_layer(x, spec, self.output_activation), name="dense")
