"""Names a config may use for Keras components, and the parameters each one accepts.

This module imports nothing heavy, so `tftrain validate` can check names and parameters without
TensorFlow. Each entry maps the user-facing name to the Keras class name that
`tftrain.components` hands to Keras's own deserializer; `tests/config/test_catalog.py` checks every
entry against the real Keras signatures so the two cannot drift apart.

New tables stay plain data (dicts and frozensets of strings), checked by lookup, so their size
never shows in `tftrain validate`: never a `Literal`, Enum or pydantic class per entry (except
options that depend on a name, like the datasets' in tftrain.spec.datasets: one class each, built
only when named). A large table that only some configs use goes in a module of its own, read
through `NameCheck(kind, loader)`; the rules are in tftrain/spec/__init__.py.
"""

from dataclasses import dataclass
from typing import Any

from tftrain.spec.base import NameCheck

MAX_ACCUMULATION = 65_536  # batches one update may accumulate

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

    kind: str  # bool | int | number | str | choice | numbers (a number or a list of numbers) | ints (a list of integers)
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
        if self.kind == "ints":
            ok = isinstance(value, (list, tuple)) and value and not any(self._number_problem(v) for v in value)
            return None if ok else f"expected a list of integers >= {self.low:g}, got {_shown(value)}"
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
        if self.kind in ("int", "ints") and not isinstance(value, int):
            return True
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return True
        return self.high is not None and (value >= self.high if self.high_open else value > self.high)

    def _describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(map(str, self.choices))}" + (" or null" if self.nullable else "")
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
# meaning across its optimizers, losses and metrics). tests/config/test_catalog.py checks that every
# allowed argument has a rule here and that Keras's own default passes it.
PARAMETERS: dict[str, Param] = {
    # optimizers
    "learning_rate": _POSITIVE, "weight_decay": Param("number", 0, nullable=True),
    "clipnorm": Param("number", 0, low_open=True, nullable=True),
    "clipvalue": Param("number", 0, low_open=True, nullable=True),
    "global_clipnorm": Param("number", 0, low_open=True, nullable=True),
    "use_ema": _BOOL, "ema_momentum": Param("number", 0, 1), "ema_overwrite_frequency": Param("int", 1, nullable=True),
    "loss_scale_factor": Param("number", 0, low_open=True, nullable=True),
    # Keras: an integer >= 2; more steps than any run trains never applies an update
    "gradient_accumulation_steps": Param("int", 2, MAX_ACCUMULATION, nullable=True),
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
    "summation_method": Param("choice", choices=("interpolation", "minoring", "majoring")),
    "num_labels": Param("int", 1, nullable=True),
    # Keras's null (one score per class) would log a vector: a run logs one number per metric.
    "average": Param("choice", choices=("micro", "macro", "weighted")),
    "beta": _POSITIVE,
    # The operating point the *_at_* metrics hold (a rate in [0, 1]).
    "recall": Param("number", 0, 1), "precision": Param("number", 0, 1),
    "specificity": Param("number", 0, 1), "sensitivity": Param("number", 0, 1),
    "class_aggregation": Param("choice", choices=("uniform_average", "variance_weighted_average")),  # null: a vector
    "num_regressors": Param("int", 0),
    "num_classes": Param("int", 2), "target_class_ids": Param("ints", 0),
    "sparse_y_true": _BOOL, "sparse_y_pred": _BOOL,
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
    # The rest of keras.metrics (Mean and Sum aside: they average values, not labels and predictions).
    "binary_crossentropy": ("BinaryCrossentropy", _METRIC_COMMON | {"from_logits", "label_smoothing"}),
    "categorical_crossentropy": ("CategoricalCrossentropy", _METRIC_COMMON | {"from_logits", "label_smoothing", "axis"}),
    "sparse_categorical_crossentropy": (
        "SparseCategoricalCrossentropy", _METRIC_COMMON | {"from_logits", "ignore_class", "axis"}),
    "hinge": ("Hinge", _METRIC_COMMON),
    "squared_hinge": ("SquaredHinge", _METRIC_COMMON),
    "categorical_hinge": ("CategoricalHinge", _METRIC_COMMON),
    "kl_divergence": ("KLDivergence", _METRIC_COMMON),
    "poisson": ("Poisson", _METRIC_COMMON),
    "mean_absolute_percentage_error": ("MeanAbsolutePercentageError", _METRIC_COMMON),
    "mean_squared_logarithmic_error": ("MeanSquaredLogarithmicError", _METRIC_COMMON),
    "log_cosh_error": ("LogCoshError", _METRIC_COMMON),
    "cosine_similarity": ("CosineSimilarity", _METRIC_COMMON | {"axis"}),
    "pearson_correlation": ("PearsonCorrelation", _METRIC_COMMON | {"axis"}),
    "concordance_correlation": ("ConcordanceCorrelation", _METRIC_COMMON | {"axis"}),
    "r2_score": ("R2Score", _METRIC_COMMON | {"class_aggregation", "num_regressors"}),
    "f1_score": ("F1Score", _METRIC_COMMON | {"average", "threshold"}),
    "fbeta_score": ("FBetaScore", _METRIC_COMMON | {"average", "beta", "threshold"}),
    "true_positives": ("TruePositives", _METRIC_COMMON | {"thresholds"}),
    "true_negatives": ("TrueNegatives", _METRIC_COMMON | {"thresholds"}),
    "false_positives": ("FalsePositives", _METRIC_COMMON | {"thresholds"}),
    "false_negatives": ("FalseNegatives", _METRIC_COMMON | {"thresholds"}),
    "precision_at_recall": ("PrecisionAtRecall", _METRIC_COMMON | {"recall", "num_thresholds", "class_id"}),
    "recall_at_precision": ("RecallAtPrecision", _METRIC_COMMON | {"precision", "num_thresholds", "class_id"}),
    "sensitivity_at_specificity": (
        "SensitivityAtSpecificity", _METRIC_COMMON | {"specificity", "num_thresholds", "class_id"}),
    "specificity_at_sensitivity": (
        "SpecificityAtSensitivity", _METRIC_COMMON | {"sensitivity", "num_thresholds", "class_id"}),
    "iou": ("IoU", _METRIC_COMMON | {"num_classes", "target_class_ids", "ignore_class", "sparse_y_true",
                                    "sparse_y_pred", "axis"}),
    "mean_iou": ("MeanIoU", _METRIC_COMMON | {"num_classes", "ignore_class", "sparse_y_true", "sparse_y_pred", "axis"}),
    "binary_iou": ("BinaryIoU", _METRIC_COMMON | {"target_class_ids", "threshold"}),
    "one_hot_iou": ("OneHotIoU", _METRIC_COMMON | {"num_classes", "target_class_ids", "ignore_class",
                                                  "sparse_y_pred", "axis"}),
    "one_hot_mean_iou": ("OneHotMeanIoU", _METRIC_COMMON | {"num_classes", "ignore_class", "sparse_y_pred", "axis"}),
}

# Parameters Keras requires (num_classes, which it requires too, is filled from the data).
METRIC_REQUIRED = {
    "precision_at_recall": ("recall",), "recall_at_precision": ("precision",),
    "sensitivity_at_specificity": ("specificity",), "specificity_at_sensitivity": ("sensitivity",),
    "iou": ("target_class_ids",), "one_hot_iou": ("target_class_ids",),
}
# The metrics that count classes: num_classes is the model's output width unless given.
METRIC_NUM_CLASSES = frozenset({"iou", "mean_iou", "one_hot_iou", "one_hot_mean_iou"})
# The tasks (LOSS_TASKS) whose labels and outputs a metric reads; metrics not listed read any.
# Keras's F1/FBeta and the one-hot IoUs compare label rows with output rows (one-hot labels);
# the thresholded ones read one probability per label; regression scores read values.
_BINARY_OR_ROWS = ("binary", "one_hot")
METRIC_TASKS: dict[str, tuple[str, ...]] = {
    "binary_crossentropy": ("binary",), "categorical_crossentropy": ("one_hot",),
    "sparse_categorical_crossentropy": ("classes",), "categorical_hinge": ("one_hot",),
    "hinge": ("score",), "squared_hinge": ("score",),
    "top_k_categorical_accuracy": ("one_hot",), "sparse_top_k_categorical_accuracy": ("classes",),
    "f1_score": _BINARY_OR_ROWS, "fbeta_score": _BINARY_OR_ROWS,
    **{name: _BINARY_OR_ROWS for name in ("true_positives", "true_negatives", "false_positives", "false_negatives",
                                          "precision_at_recall", "recall_at_precision",
                                          "sensitivity_at_specificity", "specificity_at_sensitivity")},
    "iou": ("classes", "one_hot"), "mean_iou": ("classes", "one_hot"), "binary_iou": ("binary",),
    "one_hot_iou": ("one_hot",), "one_hot_mean_iou": ("one_hot",),
    **{name: ("regression",) for name in ("r2_score", "pearson_correlation", "concordance_correlation",
                                          "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
                                          "log_cosh_error", "poisson")},
}
# Metrics that threshold probabilities: on a model that outputs logits they count nonsense.
THRESHOLDED = frozenset({"f1_score", "fbeta_score", "binary_iou", "true_positives", "true_negatives",
                         "false_positives", "false_negatives", "precision_at_recall", "recall_at_precision",
                         "sensitivity_at_specificity", "specificity_at_sensitivity"})

# Parameters Keras does not have, with what to write instead (shown with the unknown-parameter error).
PARAMETER_HINTS = {
    ("sparse_categorical_crossentropy", "label_smoothing"): (
        "Keras's sparse loss has no label smoothing: use categorical_crossentropy (integer class labels "
        "are then one-hot encoded in the pipeline)"),
}

def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """`auto`: max for accuracy-like names (acc, auc, precision, recall), else min."""
    if mode != "auto":
        return mode
    if any(s in monitor for s in ("acc", "auc", "precision", "recall", "specificity", "sensitivity", "true_")):
        return "max"
    words = set(monitor.split("_"))  # whole words: "iou" is in "previous"
    return "max" if words & {"f1", "fbeta", "iou", "r2", "correlation", "similarity"} else "min"


METRIC_ALIASES = {
    "acc": "accuracy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "rmse": "root_mean_squared_error",
    "f_beta_score": "fbeta_score",  # Keras's snake_case of FBetaScore
    "logcosh": "log_cosh_error",  # Keras's name for its values
    "io_u": "iou", "mean_io_u": "mean_iou", "binary_io_u": "binary_iou",
    "one_hot_io_u": "one_hot_iou", "one_hot_mean_io_u": "one_hot_mean_iou",
}

# Every keras.activations function that takes only its input (`threshold` needs two more
# arguments, so it is not one); tests/config/test_layer_catalog.py checks the list against Keras.
ACTIVATIONS = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish", "tanh",
    "sigmoid", "hard_sigmoid", "softmax", "log_softmax", "softplus", "softsign", "linear",
    "exponential", "celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid",
    "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink",
})

# A Keras activation name (or null for none); a field validator of the model types.
check_activation = NameCheck("activation", ACTIVATIONS)


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
