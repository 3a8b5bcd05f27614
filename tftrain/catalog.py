"""Names a config may use for Keras components, and the parameters each one accepts.

This module imports nothing heavy, so `tftrain validate` can check names and parameters without
TensorFlow. Each entry maps the user-facing name to the Keras class name that
`tftrain.components` hands to Keras's own deserializer; `tests/test_catalog.py` checks every
entry against the real Keras signatures so the two cannot drift apart.

New tables stay plain data (dicts and frozensets of strings), checked by lookup, so their size
never shows in `tftrain validate`: never a `Literal`, Enum or pydantic class per entry (except
options that depend on a name, like DATASETS: one class each, built only when named). A large
table that only some configs use goes in a module of its own, read through
`NameCheck(kind, loader)`; the rules are at the top of tftrain/config.py.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, field_validator, model_validator

# Parameters every Keras optimizer takes (keras.optimizers.Optimizer.__init__).
_OPTIMIZER_COMMON = frozenset({
    "learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
    "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
    "gradient_accumulation_steps",
})

OPTIMIZERS: dict[str, tuple[str, frozenset[str]]] = {
    "sgd": ("SGD", _OPTIMIZER_COMMON | {"momentum", "nesterov"}),
    "adam": ("Adam", _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon", "amsgrad"}),
    "adamw": ("AdamW", _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon", "amsgrad"}),
    "rmsprop": ("RMSprop", _OPTIMIZER_COMMON | {"rho", "momentum", "epsilon", "centered"}),
    "adagrad": ("Adagrad", _OPTIMIZER_COMMON | {"initial_accumulator_value", "epsilon"}),
    "adadelta": ("Adadelta", _OPTIMIZER_COMMON | {"rho", "epsilon"}),
    "adamax": ("Adamax", _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon"}),
    "nadam": ("Nadam", _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon"}),
    "lion": ("Lion", _OPTIMIZER_COMMON | {"beta_1", "beta_2"}),
}

@dataclass(frozen=True)
class Param:
    """What one Keras constructor argument may be: its type, range and allowed values."""

    kind: str  # bool | int | number | str | choice | numbers (a number or a list of numbers)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # (low, ...] instead of [low, ...]
    high_open: bool = False
    choices: tuple = ()
    nullable: bool = False  # null is accepted (Keras's "None: off")

    def problem(self, value: Any) -> str | None:
        """None when `value` is acceptable, else what was expected (`expected ...`)."""
        if value is None:
            return None if self.nullable else f"expected {self._describe()}, got null"
        if self.kind == "numbers" and isinstance(value, list):
            bad = next((v for v in value if self._number_problem(v)), None)
            return None if value and bad is None else f"expected {self._describe()}, got {value!r}"[:200]
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"expected true or false, got {_shown(value)}"
        if self.kind == "str":
            return None if isinstance(value, str) else f"expected a string, got {_shown(value)}"
        if self.kind == "choice":
            return None if value in self.choices else f"expected one of {', '.join(map(str, self.choices))}, got {_shown(value)}"
        return f"expected {self._describe()}, got {_shown(value)}" if self._number_problem(value) else None

    def _number_problem(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        if self.kind == "int" and not isinstance(value, int):
            return True
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return True
        return self.high is not None and (value >= self.high if self.high_open else value > self.high)

    def _describe(self) -> str:
        what = {"int": "an integer", "numbers": "a number or a list of numbers"}.get(self.kind, "a finite number")
        if self.low is not None and self.high is not None:
            what += f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        elif self.low is not None:
            what += f" {'>' if self.low_open else '>='} {self.low:g}"
        return what + (" or null" if self.nullable else "")


def _shown(value: Any) -> str:
    text = f'"{value}"' if isinstance(value, str) else {dict: "a mapping", list: "a list"}.get(type(value), repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


_BOOL = Param("bool")
_UNIT_OPEN = Param("number", 0, 1, high_open=True)  # a decay rate: [0, 1)
_POSITIVE = Param("number", 0, low_open=True)

# Every constructor argument the tables below allow, by name (Keras uses each name with one
# meaning across its optimizers, losses and metrics). tests/test_catalog.py checks that every
# allowed argument has a rule here and that Keras's own default passes it.
PARAMETERS: dict[str, Param] = {
    # optimizers
    "learning_rate": _POSITIVE, "weight_decay": Param("number", 0, nullable=True),
    "clipnorm": Param("number", 0, low_open=True, nullable=True),
    "clipvalue": Param("number", 0, low_open=True, nullable=True),
    "global_clipnorm": Param("number", 0, low_open=True, nullable=True),
    "use_ema": _BOOL, "ema_momentum": Param("number", 0, 1), "ema_overwrite_frequency": Param("int", 1, nullable=True),
    "loss_scale_factor": Param("number", 0, low_open=True, nullable=True),
    "gradient_accumulation_steps": Param("int", 2, nullable=True),  # Keras: an integer >= 2
    "momentum": Param("number", 0, 1), "nesterov": _BOOL, "amsgrad": _BOOL, "centered": _BOOL,
    "beta_1": _UNIT_OPEN, "beta_2": _UNIT_OPEN, "rho": _UNIT_OPEN, "epsilon": _POSITIVE,
    "initial_accumulator_value": Param("number", 0),
    # losses
    "reduction": Param("choice", choices=("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none")),
    "from_logits": _BOOL, "label_smoothing": Param("number", 0, 1), "axis": Param("int"),
    "ignore_class": Param("int", nullable=True), "delta": _POSITIVE,
    # metrics
    "name": Param("str"), "dtype": Param("choice", choices=("bfloat16", "float16", "float32", "float64"), nullable=True),
    "threshold": Param("number"), "k": Param("int", 1), "from_sorted_ids": _BOOL,
    # AUC keeps num_thresholds buckets per class: a billion of them is gigabytes, for no accuracy gained.
    "num_thresholds": Param("int", 2, 100_000), "curve": Param("choice", choices=("ROC", "PR")),
    "multi_label": _BOOL, "thresholds": Param("numbers", 0, 1, nullable=True),
    "top_k": Param("int", 1, nullable=True), "class_id": Param("int", 0, nullable=True),
}
# Keras refuses more than one of these on an optimizer.
EXCLUSIVE = (("clipnorm", "clipvalue", "global_clipnorm"),)


_LOSS_COMMON = frozenset({"reduction"})
_PROBABILISTIC = _LOSS_COMMON | {"from_logits", "label_smoothing", "axis"}

LOSSES: dict[str, tuple[str, frozenset[str]]] = {
    "sparse_categorical_crossentropy": (
        "SparseCategoricalCrossentropy", _LOSS_COMMON | {"from_logits", "ignore_class", "axis"}),
    "categorical_crossentropy": ("CategoricalCrossentropy", _PROBABILISTIC),
    "binary_crossentropy": ("BinaryCrossentropy", _PROBABILISTIC),
    "mean_squared_error": ("MeanSquaredError", _LOSS_COMMON),
    "mean_absolute_error": ("MeanAbsoluteError", _LOSS_COMMON),
    "mean_absolute_percentage_error": ("MeanAbsolutePercentageError", _LOSS_COMMON),
    "mean_squared_logarithmic_error": ("MeanSquaredLogarithmicError", _LOSS_COMMON),
    "huber": ("Huber", _LOSS_COMMON | {"delta"}),
    "log_cosh": ("LogCosh", _LOSS_COMMON),
    "hinge": ("Hinge", _LOSS_COMMON),
    "squared_hinge": ("SquaredHinge", _LOSS_COMMON),
    "categorical_hinge": ("CategoricalHinge", _LOSS_COMMON),
    "kl_divergence": ("KLDivergence", _LOSS_COMMON),
    "poisson": ("Poisson", _LOSS_COMMON),
}

# What each loss trains, read by the model builder (output units), the data checks (labels),
# the `accuracy` metric and `tftrain predict` (how outputs are read), so they cannot disagree:
#   classes     one integer class index per example; one output per class
#   one_hot     one-hot (or probability) rows; one output per column
#   binary      labels in [0, 1]; one output unit per label: a probability, or a logit
#   score       labels in [-1, 1]; one output unit per label read as a signed score
#   regression  real-valued targets; one output per target value
LOSS_TASKS: dict[str, str] = {
    "sparse_categorical_crossentropy": "classes",
    "categorical_crossentropy": "one_hot",
    "categorical_hinge": "one_hot",
    "binary_crossentropy": "binary",
    "hinge": "score",
    "squared_hinge": "score",
    **{name: "regression" for name in (
        "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error", "huber", "log_cosh", "kl_divergence", "poisson")},
}
# The label values each one-unit task trains on.
TASK_LABEL_RANGE = {"binary": (0, 1), "score": (-1, 1)}

# Short names Keras users write for the same losses.
LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
}

_METRIC_COMMON = frozenset({"name", "dtype"})

# "accuracy" is resolved against the loss (sparse, categorical or binary, logits or not)
# by tftrain.components, because Keras's own guess uses 0.5 as threshold even on logits.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "accuracy": ("Accuracy", _METRIC_COMMON),
    "sparse_categorical_accuracy": ("SparseCategoricalAccuracy", _METRIC_COMMON),
    "categorical_accuracy": ("CategoricalAccuracy", _METRIC_COMMON),
    "binary_accuracy": ("BinaryAccuracy", _METRIC_COMMON | {"threshold"}),
    "sparse_top_k_categorical_accuracy": (
        "SparseTopKCategoricalAccuracy", _METRIC_COMMON | {"k", "from_sorted_ids"}),
    "top_k_categorical_accuracy": ("TopKCategoricalAccuracy", _METRIC_COMMON | {"k"}),
    "mean_squared_error": ("MeanSquaredError", _METRIC_COMMON),
    "mean_absolute_error": ("MeanAbsoluteError", _METRIC_COMMON),
    "root_mean_squared_error": ("RootMeanSquaredError", _METRIC_COMMON),
    "auc": ("AUC", _METRIC_COMMON | {"num_thresholds", "curve", "from_logits", "multi_label"}),
    "precision": ("Precision", _METRIC_COMMON | {"thresholds", "top_k", "class_id"}),
    "recall": ("Recall", _METRIC_COMMON | {"thresholds", "top_k", "class_id"}),
}

# Parameters Keras does not have, with what to write instead (shown with the unknown-parameter error).
PARAMETER_HINTS = {
    ("sparse_categorical_crossentropy", "label_smoothing"): (
        "Keras's sparse loss has no label smoothing: use categorical_crossentropy with one-hot labels"),
}

def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """`auto`: max for accuracy-like names (acc, auc, precision, recall), else min."""
    if mode != "auto":
        return mode
    return "max" if any(s in monitor for s in ("acc", "auc", "precision", "recall")) else "min"


METRIC_ALIASES = {
    "acc": "accuracy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "rmse": "root_mean_squared_error",
}

# Every keras.activations function that takes only its input (`threshold` needs two more
# arguments, so it is not one); tests/test_layer_catalog.py checks the list against Keras.
ACTIVATIONS = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish", "tanh",
    "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "softplus", "softsign", "linear",
    "exponential", "celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid",
    "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink",
})


# Generated data lives in memory: ten million points is ~80 MB, more is a typo, not a dataset.
MAX_GENERATED = 10_000_000
# Images are resized to image_size in memory: 16k x 16k RGB is already 768 MB per image.
MAX_IMAGE_SIDE = 16_384


class _Options(BaseModel):
    """Per-dataset `data.options`: unknown keys and coerced types are errors, as everywhere.
    Built on first use (`defer_build`): validating a config builds only its dataset's class."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True)


class NoOptions(_Options):
    """The dataset takes no options."""


class SyntheticRegressionOptions(_Options):
    """y = (w + slope_noise*N(0, 1))*x + b + noise*N(0, 1), x on linspace(x_min, x_max) or drawn
    from N(x_mean, x_std): the basic-training-loop data by default."""

    num_examples: Annotated[int, Field(gt=0, le=MAX_GENERATED)] = 201  # the tutorial's 201 points
    w: float = 3.0  # the tutorial's true slope
    b: float = 2.0  # and intercept
    noise: Annotated[float, Field(ge=0)] = 1.0  # standard deviation of the Gaussian noise
    slope_noise: Annotated[float, Field(ge=0)] = 0.0  # per-point noise on the slope: off, as in the tutorial
    x_distribution: Literal["linspace", "normal"] = "linspace"  # the tutorial's evenly spaced x
    x_min: float = -2.0  # the tutorial's range (linspace)
    x_max: float = 2.0  # [-2, 2]: the tutorial's range (linspace)
    x_mean: float = 0.0  # the mean of x drawn from N(x_mean, x_std) (normal): standard normal
    x_std: Annotated[float, Field(gt=0)] = 1.0  # and its spread


class SyntheticBinaryOptions(_Options):
    """Two Gaussian blobs on a line, N(-mean, std) labelled 0 and N(mean, std) labelled 1."""

    num_examples: Annotated[int, Field(ge=2, le=MAX_GENERATED)] = 100  # 50 per class, as in the logistic-regression example
    mean: float = 3.0  # classes centred at -3 and +3: almost separable
    std: Annotated[float, Field(gt=0)] = 1.0  # unit variance


# Typed table columns (tftrain.data.tables): what each kind of column becomes inside the model.
COLUMN_TYPES = ("numeric", "category", "hashed", "text")
TEXT_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
# Cells that mean "no value" in a numeric column (pandas' usual markers): filled with the mean, flagged.
MISSING_MARKERS = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?")


class TableColumn(_Options):
    """One typed input column of a table (csv, jsonl), preprocessed inside the model."""

    type: Literal[COLUMN_TYPES]  # no default: numeric, category, hashed or text
    embedding: PositiveInt | None = None  # category/hashed (text: int mode): an Embedding of N; null: one-hot
    max_values: PositiveInt = 10_000  # category: more distinct training values is an error (use hashed)
    bins: PositiveInt = 1024  # hashed: hash buckets (keras.layers.Hashing)
    max_tokens: PositiveInt | None = 20_000  # text: vocabulary size (TextVectorization's max_tokens)
    sequence_length: PositiveInt | None = None  # text, int mode: pad or cut to this many tokens
    output_mode: Literal[TEXT_OUTPUT_MODES] = "tf_idf"  # text: a bag of words weighted by rarity fits beside other columns
    ngrams: Annotated[int, Field(ge=1, le=5)] | None = None  # text: also n-grams up to this length

    @model_validator(mode="after")
    def _keys_of_its_type(self) -> "TableColumn":
        fields = type(self).model_fields
        own = {"numeric": set(), "category": {"embedding", "max_values"}, "hashed": {"embedding", "bins"},
               "text": {"embedding", "max_tokens", "sequence_length", "output_mode", "ngrams"}}[self.type]
        for key in fields:
            if key != "type" and key not in own and getattr(self, key) != fields[key].default:
                raise ValueError(f"{key} does not apply to a {self.type} column"
                                 + (f" (it applies to: {', '.join(sorted(own))})" if own else ""))
        if self.type == "text" and self.embedding is not None and self.output_mode != "int":
            raise ValueError("embedding applies to a text column with output_mode: int (token sequences)")
        return self


class TableCross(_Options):
    """A feature cross of category/hashed columns (keras.layers.HashedCrossing), one-hot in `bins` buckets."""

    columns: Annotated[list[str], Field(min_length=2)]  # no default: the columns crossed
    bins: PositiveInt = 32  # hash buckets for the combinations (the FeatureSpace tutorial's 32)


class TableOptions(_Options):
    """What every table dataset (csv, jsonl) takes: the target, typed inputs and crosses."""

    label: str  # no sensible default: only the user knows which column is the target
    # auto: whole non-negative numbers written as integers are class labels, text names classes,
    # other numbers are regression targets; set it when integers are quantities (counts, prices).
    task: Literal["auto", "classification", "regression"] = "auto"
    test_path: str | None = None  # null -> no test file; data.validation may carve a fraction instead
    # Typed inputs (tftrain.data.tables): {name: numeric | category | hashed | text | {type: ..., ...}};
    # null: every column but the label is a number (the model takes a float vector).
    # (The string form is turned into the mapping before validation; the union says so to the JSON Schema.)
    columns: dict[str, TableColumn | Literal[COLUMN_TYPES]] | None = None
    crosses: list[TableCross] = []  # none: crosses are a modelling choice
    missing: list[str] = list(MISSING_MARKERS)  # numeric cells that mean "no value"

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`island: category` is `island: {type: category}`."""
        if not isinstance(value, dict):
            return value
        return {name: {"type": c} if isinstance(c, str) else c for name, c in value.items()}

    @model_validator(mode="after")
    def _typed_columns(self) -> "TableOptions":
        from tftrain.schema import suggest  # deferred: tftrain.schema imports this module

        columns = self.columns or {}
        if self.columns is not None and not columns:
            raise ValueError("columns: empty; name the input columns, or leave columns out (every column numeric)")
        if self.label in columns:
            raise ValueError(f"columns: '{self.label}' is the label; it cannot be an input column too")
        if self.crosses and self.columns is None:
            raise ValueError("crosses: join typed columns; name them (and their types) in columns")
        for i, cross in enumerate(self.crosses):
            for name in cross.columns:
                if name not in columns:
                    raise ValueError(f"crosses.{i}.columns: '{name}' is not in columns" + suggest(name, list(columns)))
                if columns[name].type not in ("category", "hashed"):
                    raise ValueError(f"crosses.{i}.columns: '{name}' is a {columns[name].type} column; crosses "
                                     "join category or hashed columns")
        return self


class CsvOptions(TableOptions):
    """A CSV file with a header row: `label` is the target column, every other column a feature
    (or the typed `columns`: tftrain.data.tables)."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV
    encoding: str = "utf-8-sig"  # UTF-8, with or without Excel's byte-order mark (a CSV that streams is read as UTF-8)


class JsonlOptions(TableOptions):
    """JSON Lines: one JSON object per line; `label` names the target key, `columns` the inputs
    (required: JSON values carry no header to read the column names from)."""

    encoding: str = "utf-8"  # the files' text encoding

    @model_validator(mode="after")
    def _named_columns(self) -> "JsonlOptions":
        if self.columns is None:
            raise ValueError("columns: required for jsonl; name each input key and its type, e.g. "
                             "{age: numeric, city: category}")
        return self


class TextFolderOptions(_Options):
    """One sub-folder of .txt files per class, one example a file (keras.utils.text_dataset_from_directory's
    layout); the texts go through TextVectorization inside the model (tftrain.data.text)."""

    test_path: str | None = None  # null -> no test folder; data.validation may carve a fraction instead
    encoding: str = "utf-8"  # the files' text encoding
    max_tokens: PositiveInt | None = 20_000  # vocabulary size, the Keras text tutorial's
    output_mode: Literal[TEXT_OUTPUT_MODES] = "tf_idf"  # int: token sequences for an embedding model
    sequence_length: PositiveInt | None = None  # int mode: pad or cut to this many tokens (null: the longest)
    ngrams: Annotated[int, Field(ge=1, le=5)] | None = None  # also n-grams up to this length

    @model_validator(mode="after")
    def _sequence_length(self) -> "TextFolderOptions":
        if self.sequence_length is not None and self.output_mode != "int":
            raise ValueError(f"sequence_length applies to output_mode: int (token sequences), not {self.output_mode}")
        return self


class TimeseriesOptions(_Options):
    """A CSV of a series sorted by `time_column`, cut into windows of `window` rows (every input
    column) whose target is `target` `horizon` rows after the window's last row
    (keras.utils.timeseries_dataset_from_array's windows; tftrain.data.series)."""

    target: str  # no sensible default: the column to forecast
    time_column: str | None = None  # null: the rows are in time order as they are; else checked sorted, no duplicates
    columns: list[str] | None = None  # the input columns; null: every column but time_column (the target included)
    window: Annotated[int, Field(gt=0, le=100_000)] = 24  # input rows per example: a day of hourly data
    horizon: Annotated[int, Field(gt=0, le=100_000)] = 1  # forecast this many rows after the window's last
    stride: Annotated[int, Field(gt=0, le=100_000)] = 1  # rows between the starts of consecutive windows
    test_path: str | None = None  # null -> no test file; data.validation: FRACTION takes the last part in time
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV
    encoding: str = "utf-8-sig"  # UTF-8, with or without Excel's byte-order mark


class ImageFolderOptions(_Options):
    """One sub-folder of images per class, read by keras.utils.image_dataset_from_directory."""

    # [height, width] to resize every image to; null: the images' own size, which they must all share.
    image_size: Annotated[list[Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]],
                          Field(min_length=2, max_length=2)] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"  # Keras's default: 3 channels
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5",
                           "gaussian", "mitchellcubic"] = "bilinear"  # Keras's default resize method
    crop_to_aspect_ratio: bool = False  # Keras's default: resize may distort the aspect ratio
    test_path: str | None = None  # null -> no test folder; data.validation may carve a fraction instead


# What a TFRecord feature's bytes may hold, and the NumPy dtypes `decode: raw` reads them as.
IMAGE_DECODERS = ("png", "jpeg", "image")  # image: PNG, JPEG, GIF or BMP, told apart by its bytes
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")


class TfrecordFeature(_Options):
    """One feature of the tf.train.Example records, as tf.io.parse_example needs it."""

    type: Literal["bytes", "int64", "float"]  # no default: the records say what they hold
    shape: list[PositiveInt] = []  # [] is one value per record; bytes features: the decoded array's shape
    decode: Literal["raw", "png", "jpeg", "image"] | None = None  # bytes only: what the bytes are; required there
    dtype: Literal[RAW_DTYPES] | None = None  # decode: raw only: the array's element type; null: uint8 (pixels)

    @model_validator(mode="after")
    def _decodable(self) -> "TfrecordFeature":
        if self.type != "bytes":
            if self.decode is not None or self.dtype is not None:
                article = "an" if self.type == "int64" else "a"
                raise ValueError(f"decode and dtype apply to bytes features; {article} {self.type} feature is read "
                                 f"as {self.type} values of the given shape")
            return self
        if self.decode is None:
            raise ValueError("a bytes feature needs decode: raw (an array's bytes), png, jpeg or image")
        if not self.shape:
            raise ValueError(f"a bytes feature decoded as {self.decode} needs shape: the array each record "
                             "holds, e.g. [28, 28, 1]")
        if self.decode in IMAGE_DECODERS and (len(self.shape) != 3 or self.shape[2] not in (1, 3, 4)):
            raise ValueError(f"decode: {self.decode} gives images: shape must be [height, width, channels] "
                             f"with 1, 3 or 4 channels, got {self.shape}")
        if self.decode in IMAGE_DECODERS and self.dtype not in (None, "uint8"):
            raise ValueError(f"decode: {self.decode} gives uint8 pixels; dtype applies to decode: raw")
        return self


class TfrecordOptions(_Options):
    """TFRecord files of tf.train.Example records: `options.features` as tf.io.parse_example reads them."""

    features: dict[str, TfrecordFeature]  # no sensible default: only the user knows what the records hold
    label: str  # no sensible default: which feature is the target (the others are the inputs)
    test_path: str | None = None  # a glob of test files; null: no test split (data.validation may carve a fraction)
    compression: Literal["auto", "none", "gzip"] = "auto"  # auto: gzip where a file starts as gzip files do
    num_classes: PositiveInt | None = None  # null: the largest integer label + 1, counted when the records are checked

    @model_validator(mode="after")
    def _label_and_inputs(self) -> "TfrecordOptions":
        names = list(self.features)
        if self.label not in self.features:
            from tftrain.schema import suggest  # deferred: tftrain.schema imports this module

            raise ValueError(f"label: '{self.label}' is not one of the features ({', '.join(names)})"
                             + suggest(self.label, names))
        if self.features[self.label].type == "bytes":
            raise ValueError(f"label: feature '{self.label}' is bytes; the target must be int64 (classes) "
                             "or float (values)")
        inputs = [n for n in names if n != self.label]
        if not inputs:
            raise ValueError(f"features: only the label '{self.label}'; list the input feature(s) too")
        arrays = [n for n in inputs if self.features[n].type == "bytes"]
        if arrays and len(inputs) > 1:
            raise ValueError(f"features: '{arrays[0]}' is bytes (an array or image) beside other inputs "
                             f"({', '.join(n for n in inputs if n != arrays[0])}); a model takes one input: "
                             "one bytes feature, or numeric features (joined into one vector)")
        return self


class TfdsOptions(_Options):
    """A dataset of tensorflow-datasets (tfds), read from its prepared files in `data_dir`."""

    name: str  # no sensible default: the TFDS name, e.g. mnist or mnist:3.0.1
    data_dir: str | None = None  # null: TFDS's own default ($TFDS_DATA_DIR, else ~/tensorflow_datasets)
    split_train: str = "train"  # TFDS split syntax: train, train[:90%], train+validation
    split_test: str | None = "test"  # the split validation: test uses; null: the dataset has none
    download: bool = False  # off: a run never reaches the network; true lets TFDS download and prepare
    input: str | None = None  # null: the dataset's supervised input (info.supervised_keys)
    label: str | None = None  # null: the dataset's supervised label
    # [height, width] to resize images to; null: the dataset's own shape, which must be fixed.
    image_size: Annotated[list[Annotated[int, Field(gt=0, le=MAX_IMAGE_SIDE)]],
                          Field(min_length=2, max_length=2)] | None = None


# Dataset name -> the options it accepts; the loaders live in tftrain.data (which imports NumPy).
DATASETS: dict[str, type[_Options]] = {
    "mnist": NoOptions,
    "fashion_mnist": NoOptions,
    "cifar10": NoOptions,
    "npz": NoOptions,
    "csv": CsvOptions,
    "jsonl": JsonlOptions,
    "text_folder": TextFolderOptions,
    "timeseries": TimeseriesOptions,
    "image_folder": ImageFolderOptions,
    "tfrecord": TfrecordOptions,
    "tfds": TfdsOptions,
    "synthetic_regression": SyntheticRegressionOptions,
    "synthetic_binary": SyntheticBinaryOptions,
}


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (keras.optimizers.schedules), written as
# `optimizer.learning_rate: {schedule: NAME, <Keras's own argument names>}`.

NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
# `auto`: the run's total number of training steps (tftrain.training.schedules).
StepsOrAuto = PositiveInt | Literal["auto"]


class _LinearWarmup(_Options):
    """tftrain's warmup for the schedules Keras gives none: the learning rate rises linearly from
    `warmup_learning_rate` to the schedule's own value at `warmup_steps`, then follows the schedule
    (Model Garden's LinearWarmup: the schedule is not delayed, only its start is replaced)."""

    warmup_steps: NonNegativeInt = 0  # no warmup unless asked for
    warmup_learning_rate: NonNegativeFloat = 0.0  # warm up from zero, the usual start


class CosineDecaySchedule(_Options):
    """keras.optimizers.schedules.CosineDecay, with Keras's own warmup: linear from
    `initial_learning_rate` to `warmup_target` over `warmup_steps`, then cosine decay to
    `alpha * warmup_target` over `decay_steps`."""

    schedule: Literal["cosine_decay"]
    initial_learning_rate: NonNegativeFloat  # required: no value suits every model (0.0 with a warmup)
    decay_steps: StepsOrAuto = "auto"  # the rest of the run after the warmup: decays exactly to the end
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0  # Keras's default: decays to zero
    warmup_target: PositiveFloat | None = None  # Keras's default: no warmup
    warmup_steps: NonNegativeInt = 0  # Keras's default: no warmup

    @model_validator(mode="after")
    def _warmup_has_a_target(self):
        if self.warmup_steps and self.warmup_target is None:
            raise ValueError(".warmup_target: required with warmup_steps (the learning rate the warmup "
                             "rises to from initial_learning_rate, as Keras's CosineDecay takes it)")
        if self.warmup_target is None and self.initial_learning_rate == 0:
            raise ValueError(".initial_learning_rate: 0.0 without a warmup would train nothing; give a "
                             "positive value, or warmup_target and warmup_steps to warm up from 0.0")
        return self


class ExponentialDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.ExponentialDecay: lr * decay_rate ** (step / decay_steps)."""

    schedule: Literal["exponential_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # decay_rate is reached at the end of the run
    decay_rate: PositiveFloat  # required: how far to decay is the user's choice
    staircase: bool = False  # Keras's default: a smooth decay


class PiecewiseConstantSchedule(_LinearWarmup):
    """keras.optimizers.schedules.PiecewiseConstantDecay: `values[i]` until `boundaries[i]`, given
    in steps (`boundaries`, Keras's key) or in epochs (`boundary_epochs`)."""

    schedule: Literal["piecewise_constant"]
    boundaries: list[PositiveInt] | None = None  # in steps; or boundary_epochs
    boundary_epochs: list[PositiveInt] | None = None  # in epochs (multiplied by the steps per epoch)
    values: Annotated[list[NonNegativeFloat], Field(min_length=1)]  # required: one more than boundaries

    @model_validator(mode="after")
    def _boundaries_match_values(self):
        given = [key for key in ("boundaries", "boundary_epochs") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of boundaries (in steps) and boundary_epochs (in epochs), "
                             f"got {' and '.join(given) or 'neither'}")
        key = given[0]
        bounds = getattr(self, key)
        if any(b >= c for b, c in zip(bounds, bounds[1:])):
            raise ValueError(f".{key}: expected strictly increasing values, got {bounds}")
        if len(self.values) != len(bounds) + 1:
            raise ValueError(f".values: expected {len(bounds) + 1} values (one more than the {len(bounds)} "
                             f"{key}), got {len(self.values)}")
        return self


class PolynomialDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.PolynomialDecay: from initial_learning_rate to end_learning_rate."""

    schedule: Literal["polynomial_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # end_learning_rate is reached at the end of the run
    end_learning_rate: NonNegativeFloat = 0.0001  # Keras's default
    power: PositiveFloat = 1.0  # Keras's default: linear decay
    cycle: bool = False  # Keras's default: stay at end_learning_rate


class InverseTimeDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.InverseTimeDecay: lr / (1 + decay_rate * step / decay_steps)."""

    schedule: Literal["inverse_time_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # lr / (1 + decay_rate) at the end of the run
    decay_rate: PositiveFloat  # required: how far to decay is the user's choice
    staircase: bool = False  # Keras's default: a smooth decay


class CosineDecayRestartsSchedule(_LinearWarmup):
    """keras.optimizers.schedules.CosineDecayRestarts (SGDR): cosine periods, restarted."""

    schedule: Literal["cosine_decay_restarts"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    first_decay_steps: PositiveInt  # required: the first period's length sets the rhythm
    t_mul: PositiveFloat = 2.0  # Keras's default: each period twice as long as the one before
    m_mul: PositiveFloat = 1.0  # Keras's default: every restart at the initial learning rate
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0  # Keras's default: each period decays to zero


# Config name -> (Keras class in keras.optimizers.schedules, the schema of its arguments).
SCHEDULES: dict[str, tuple[str, type[_Options]]] = {
    "cosine_decay": ("CosineDecay", CosineDecaySchedule),
    "exponential_decay": ("ExponentialDecay", ExponentialDecaySchedule),
    "piecewise_constant": ("PiecewiseConstantDecay", PiecewiseConstantSchedule),
    "polynomial_decay": ("PolynomialDecay", PolynomialDecaySchedule),
    "inverse_time_decay": ("InverseTimeDecay", InverseTimeDecaySchedule),
    "cosine_decay_restarts": ("CosineDecayRestarts", CosineDecayRestartsSchedule),
}


def schedule_own_keys(schema: type[_Options]) -> frozenset[str]:
    """Keys of a schedule's schema that are tftrain's, not arguments of its Keras class."""
    warmup = set(_LinearWarmup.model_fields) if issubclass(schema, _LinearWarmup) else set()
    return frozenset({"schedule", "boundary_epochs", *warmup})


# ---------------------------------------------------------------------------------------------
# Augmentation: Keras's image preprocessing layers, written `data.augmentation: [{random_flip:
# {mode: horizontal}}, ...]`. Seeds are not a parameter: tftrain derives them from the run's seed.

AUGMENTATIONS: dict[str, tuple[str, frozenset[str]]] = {
    "random_flip": ("RandomFlip", frozenset({"mode"})),
    "random_crop": ("RandomCrop", frozenset({"height", "width"})),
    "random_translation": ("RandomTranslation", frozenset(
        {"height_factor", "width_factor", "fill_mode", "interpolation", "fill_value"})),
    "random_rotation": ("RandomRotation", frozenset({"factor", "fill_mode", "interpolation", "fill_value"})),
    "random_zoom": ("RandomZoom", frozenset(
        {"height_factor", "width_factor", "fill_mode", "interpolation", "fill_value"})),
    "random_contrast": ("RandomContrast", frozenset({"factor", "value_range"})),
    "random_brightness": ("RandomBrightness", frozenset({"factor", "value_range"})),
    "rand_augment": ("RandAugment", frozenset({"value_range", "num_ops", "factor", "interpolation"})),
    "mix_up": ("MixUp", frozenset({"alpha"})),
    "cut_mix": ("CutMix", frozenset({"factor"})),
    "random_erasing": ("RandomErasing", frozenset({"factor", "scale", "fill_value", "value_range"})),
}
# These mix two examples' labels as well as their images: they need labels that can be mixed
# (one-hot rows or binary probabilities), and the labels, which a model never sees.
LABEL_MIXING = frozenset({"mix_up", "cut_mix"})
