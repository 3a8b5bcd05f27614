"""`model: {type: keras_file, path: FILE.keras}`: a model whose architecture (and starting
weights) is a .keras file, loaded in Keras safe mode. The Python API writes the `keras.Model` a
caller hands it to such a file beside the runs (`tftrain.train(..., model=m)`), so the run
directory alone still says what was trained, and resume, evaluate and report work from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from tftrain.models.base import ModelSchema, ModelSpec, model_input


class KerasFileModel(ModelSchema):
    """A saved Keras model, trained as it is: the data's rescaling or normalization goes in front."""

    type: Literal["keras_file"]
    path: str  # no sensible default: the file is the model
    output_activation: str | None = None  # what its output layer applies (null: logits); read by checks and predict

    @field_validator("path")
    @classmethod
    def _keras_file(cls, value: str) -> str:
        if not value.lower().endswith(".keras"):
            raise ValueError(f"expected a .keras file (loaded in Keras safe mode), got {value!r}")
        return value

    def build(self, spec: ModelSpec, load_weights: bool = True):
        """The saved model (its weights as saved) after the input layers the data needs."""
        import keras

        from tftrain.errors import DataError
        from tftrain.models.keras_build import keras_message
        from tftrain.security import load_model

        saved = load_model(self.path)
        inputs, x = model_input(spec)
        try:
            outputs = saved(x)
        except Exception as exc:  # noqa: BLE001 (any Keras shape or type error)
            raise DataError(f"model.path: {self.path} cannot take inputs of shape {spec.input_shape} "
                            f"({spec.dataset}): {keras_message(exc)}") from None
        return keras.Model(inputs, outputs, name=saved.name)

    def check(self, spec: ModelSpec) -> None:
        """Build it symbolically: inputs the model cannot take, or an output of the wrong width."""
        from tftrain.models.keras_build import check_symbolically

        check_symbolically(lambda: self.build(spec), spec, f"model.path ({self.path})")
