"""Names a config may use for Keras components, and the parameters each one accepts.

This module imports nothing heavy, so `tftrain validate` can check names and parameters without
TensorFlow. Each entry maps the user-facing name to the Keras class name that
`tftrain.components` hands to Keras's own deserializer; `tests/test_catalog.py` checks every
entry against the real Keras signatures so the two cannot drift apart.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

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

METRIC_ALIASES = {
    "acc": "accuracy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "rmse": "root_mean_squared_error",
}

ACTIVATIONS = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish", "tanh",
    "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "softplus", "softsign", "linear",
    "exponential",
})


class _Options(BaseModel):
    """Per-dataset `data.options`: unknown keys and coerced types are errors, as everywhere."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoOptions(_Options):
    """The dataset takes no options."""


class SyntheticRegressionOptions(_Options):
    """Points on linspace(x_min, x_max), y = w*x + b + noise*N(0, 1): the basic-training-loop data."""

    num_examples: PositiveInt = 201  # the tutorial's 201 points
    w: float = 3.0  # the tutorial's true slope
    b: float = 2.0  # and intercept
    noise: Annotated[float, Field(ge=0)] = 1.0  # standard deviation of the Gaussian noise
    x_min: float = -2.0  # the tutorial's range
    x_max: float = 2.0  # [-2, 2]: the tutorial's range


class SyntheticBinaryOptions(_Options):
    """Two Gaussian blobs on a line, N(-mean, std) labelled 0 and N(mean, std) labelled 1."""

    num_examples: Annotated[int, Field(ge=2)] = 100  # 50 per class, as in the logistic-regression example
    mean: float = 3.0  # classes centred at -3 and +3: almost separable
    std: Annotated[float, Field(gt=0)] = 1.0  # unit variance


class CsvOptions(_Options):
    """A CSV file with a header row: `label` is the target column, every other column a feature."""

    label: str  # no sensible default: only the user knows which column is the target
    # auto: whole non-negative numbers written as integers are class labels, text names classes,
    # other numbers are regression targets; set it when integers are quantities (counts, prices).
    task: Literal["auto", "classification", "regression"] = "auto"
    test_path: str | None = None  # null -> no test file; data.validation may carve a fraction instead
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","  # the C in CSV


class ImageFolderOptions(_Options):
    """One sub-folder of images per class, read by keras.utils.image_dataset_from_directory."""

    # [height, width] to resize every image to; null: the images' own size, which they must all share.
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
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
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None


# Dataset name -> the options it accepts; the loaders live in tftrain.data (which imports NumPy).
DATASETS: dict[str, type[_Options]] = {
    "mnist": NoOptions,
    "fashion_mnist": NoOptions,
    "cifar10": NoOptions,
    "npz": NoOptions,
    "csv": CsvOptions,
    "image_folder": ImageFolderOptions,
    "tfrecord": TfrecordOptions,
    "tfds": TfdsOptions,
    "synthetic_regression": SyntheticRegressionOptions,
    "synthetic_binary": SyntheticBinaryOptions,
}
