"""What every model type provides, and the layers their builders share.

A model type is one module in tftrain/models/: its schema (a pydantic model whose `type` field
is the type's tag) with the methods below. Registering it is one line in
tftrain/models/__init__.py; the config's `model:` union is derived from that list. Keras is
imported inside the builders only: `tftrain validate` reads the schemas without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from pydantic import field_validator

from tftrain.spec.base import Strict

if TYPE_CHECKING:
    import keras

    from tftrain.data.tables.preprocessing import TablePreprocessing


@dataclass(frozen=True)
class ModelSpec:
    """What a builder needs to know about the data (derived by tftrain.models.model_spec)."""

    input_shape: tuple[int, ...]
    input_scale: float | None  # multiply inputs by this inside the model (1/255 for uint8 pixels)
    outputs: int  # output units the loss needs
    output_dtype: str  # float32 even under mixed precision, for a numerically safe loss
    dataset: str = ""  # the dataset's name, for messages
    task: str = ""  # what the loss trains (tftrain.spec.catalog.LOSS_TASKS), for messages
    # data.normalize: per_channel: (mean, variance) per channel or feature, of the training split.
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # data.augmentation_on: model: (Keras class name, arguments) of each layer, seeded from `seed`.
    augmentation: tuple[tuple[str, dict], ...] = ()
    seed: int = 0
    input_dtype: str = "float32"  # the examples' dtype (<U.. for strings), for the model's data checks
    # A typed table (csv/jsonl columns): the model takes raw rows of text cells and preprocesses
    # them with layers built from these statistics and vocabularies (fitted on the training split).
    table: TablePreprocessing | None = None
    # Several outputs (tftrain.models.outputs): (label column, units) of each, in model.outputs' order.
    heads: tuple[tuple[str, int], ...] = ()


class ModelSchema(Strict):
    """Base of every model type's schema: subclasses add `type: Literal["<tag>"]` and their keys."""

    type: str  # each type narrows this to its tag
    init_from: str | None = None  # null: fresh weights; a run directory or .keras file to start from

    @field_validator("init_from")
    @classmethod
    def _model_file(cls, value: str | None) -> str | None:
        if value is not None and value.lower().endswith((".h5", ".hdf5")):
            raise ValueError(f"{value!r} is a legacy HDF5 model, a format that can hold code; give a run "
                             "directory or a .keras file (loaded in Keras safe mode)")
        return value

    @classmethod
    def tag(cls) -> str:
        """The value of `model.type` that selects this schema."""
        return get_args(cls.model_fields["type"].annotation)[0]

    def output_activation_name(self) -> str | None:
        """The activation of the model's output layer: None for raw values (logits, for a
        classifier). Read by predict (probabilities or logits) and the loss/model checks."""
        return getattr(self, "output_activation", None)

    def takes_strings(self) -> bool:
        """Whether the model takes raw strings (its tokenizer is a layer of it)."""
        return False

    def set_stage(self, model: keras.Model, unfrozen: bool) -> None:
        """training.unfreeze: make the backbone of `model` (built by this schema) train whole
        (`unfrozen`) or as `trainable` says. Only types with a pretrained backbone have one
        (tftrain.spec.checks.unfreeze_fits checks the config)."""
        raise TypeError(f"model.type {self.type} has no backbone to unfreeze")

    def check(self, spec: ModelSpec) -> None:
        """Raise DataError when this model cannot take data of `spec` (before anything is built)."""

    def build(self, spec: ModelSpec, load_weights: bool = True) -> keras.Model:
        """The Keras model for data of `spec`. `load_weights=False`: no pretrained weights are
        read (a symbolic build, in keras's StatelessScope, only looks at shapes and layers)."""
        raise NotImplementedError

    def layer_rows(self) -> list[tuple[str, str, str, str]]:
        """(name, layer, parameters, inputs) of every layer the config lists, groups expanded,
        for `tftrain show`; [] for types whose layers are fixed."""
        return []

    def logged_values(self, model: keras.Model) -> dict[str, Any]:
        """Values of the trained model worth a history.csv column per epoch (e.g. w and b)."""
        return {}

    def initial_values(self) -> dict[str, float]:
        """The logged values before training, where the config fixes them (plots start there)."""
        return {}


def model_input(spec: ModelSpec):
    """`keras.Input` named `inputs`, then the in-model augmentation, then the inputs normalized
    (per channel, tftrain.data.pipeline.normalization) or rescaled by `spec.input_scale` when the data
    needs it: returns (the input, the tensor to build on). A typed table's input is its raw
    rows (strings), and the tensor to build on its preprocessed features."""
    import keras

    if spec.table is not None:
        inputs, x, _ = table_input(spec)
        return inputs, x
    inputs = x = keras.Input(shape=spec.input_shape, name="inputs")
    if spec.augmentation:
        from tftrain.data.pipeline.augmentation import in_model

        x = in_model(x, spec.augmentation, spec.seed)
    if spec.normalization is not None:
        mean, variance = spec.normalization
        x = keras.layers.Normalization(axis=-1, mean=list(mean), variance=list(variance), name="normalize")(x)
    elif spec.input_scale:
        x = keras.layers.Rescaling(spec.input_scale, name="rescale")(x)
    return inputs, x


def table_input(spec: ModelSpec):
    """A typed table's input (raw rows of text cells), its features, and each column's own
    features by name (tftrain.data.tables.preprocessing.encode_columns)."""
    import keras

    from tftrain.data.tables.preprocessing import encode_columns

    inputs = keras.Input(shape=spec.input_shape, dtype="string", name="inputs")
    return (inputs, *encode_columns(spec.table, inputs))


def output_layer(x, spec: ModelSpec, activation: str | None, name: str = "outputs", **kwargs):
    """Dense(spec.outputs) in `spec.output_dtype`, the units the loss needs."""
    import keras

    return keras.layers.Dense(spec.outputs, activation=activation, dtype=spec.output_dtype, name=name,
                              **kwargs)(x)


def dense_stack(x, layer_units: list[int], activation: str, dropout: float):
    """[Dense(units, activation) -> Dropout(dropout)]* named dense_i / dropout_i."""
    import keras

    for i, units in enumerate(layer_units):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x
