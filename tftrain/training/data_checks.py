"""Checks of the loaded data against the model and loss, before anything is built or written.

Each mismatch (labels 0..9 with a one-output binary loss, class indices with a one-hot loss, a
CNN on rows of a table) is a one-line DataError naming both sides, instead of a TensorFlow shape
error from inside the first training step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import MAX_CLASSES, FileList, LabelSummary, LoadedData, StreamedData
from tftrain.data.pipeline.augmentation import check_augmentation
from tftrain.data.pipeline.label_encoding import stored_task
from tftrain.data.pipeline.normalization import check_normalization
from tftrain.errors import DataError
from tftrain.models import model_spec
from tftrain.spec import catalog
from tftrain.spec.checks import RunFacts
from tftrain.spec.outputs import several

if TYPE_CHECKING:
    from tftrain.spec.schema import Config


def check_data(config: Config, data: LoadedData | StreamedData) -> None:
    """Raise DataError if the data cannot train `config.model` with `config.loss`."""
    name = config.data.dataset
    splits = [("train", data.train_labels)]
    if data.test_labels is not None:
        splits.append(("test", data.test_labels))
    for split, labels in splits:
        for role, dtype in (("inputs", data.input_dtype), ("labels", labels.dtype)):
            raw_rows = role == "inputs" and data.extra.get("raw_rows")  # text cells: the model parses them
            raw_text = role == "inputs" and config.model.takes_strings() and np.dtype(dtype).kind in "US"
            if raw_rows or raw_text:
                continue  # raw text, parsed or tokenized by the model itself
            if not (np.issubdtype(np.dtype(dtype), np.number) or dtype == "bool"):
                raise DataError(f"data: the {split} {role} of {name} are {dtype}; expected numbers")
    if data.test_labels is not None and data.streamed is False:
        for role, train, test in (("inputs", data.x_train, data.x_test), ("labels", data.y_train, data.y_test)):
            if train.shape[1:] != test.shape[1:]:
                raise DataError(f"data: {name} train {role} have per-example shape {train.shape[1:]} but "
                                f"test {role} {test.shape[1:]}; both splits must match")
    if data.test_labels is not None and data.train_labels.shape != data.test_labels.shape:
        raise DataError(f"data: {name} train labels have per-example shape {data.train_labels.shape} but "
                        f"test labels {data.test_labels.shape}; both splits must match")
    _check_sizes(config, data)
    _check_sampling(config, data)
    if several(config):  # each output's labels against its own loss
        from tftrain.models.outputs import check_heads

        check_heads(config, data)
    else:
        _check_labels(config, data)
        _check_inferred_task(config, data)
    check_normalization(config, data)
    check_augmentation(config, data)
    if not data.extra.get("raw_rows"):  # a typed table's model is checked once its preprocessing is fitted (plan)
        config.model.check(model_spec(config, data))  # what the model type itself needs of the data




def _check_sizes(config: Config, data: LoadedData | StreamedData) -> None:
    """Sizes the data declare, checked before anything is allocated for them: the classes a
    model would need outputs for, what a validation fraction leaves to train on."""
    name = config.data.dataset
    if data.num_classes is not None and data.num_classes > MAX_CLASSES:
        raise DataError(_too_many_classes(config, data.num_classes))
    if name == "image_folder" and data.num_classes == 1:
        raise DataError(f"data: {config.data.path} holds one class folder ({data.class_names[0]}); a classifier "
                        "needs a sub-folder per class, at least two")
    fraction, n = config.data.validation, data.train_count
    if isinstance(fraction, float) and n - max(1, round(n * fraction)) < 1:
        raise DataError(f"data.validation: {fraction:g} of the {n} training examples of {name} leaves none to train "
                        "on; use a smaller fraction or more data (data.limit)")


def _too_many_classes(config: Config, count: int) -> str:
    """The message for a class count past MAX_CLASSES, naming the option that fixes it."""
    name, options = config.data.dataset, config.data.options
    if options.get("num_classes") is not None:
        return (f"data.options.num_classes: {count:,} classes would need as many outputs; expected at most "
                f"{MAX_CLASSES:,}")
    where = f"the labels of {name} go up to {count - 1:,}, so a model would need {count:,} outputs (at most {MAX_CLASSES:,})"
    if "task" in options:  # a table: whole-number targets read as classes unless told otherwise
        return f"data.options.task: {where}; if the target is a quantity, set data.options.task: regression"
    if "num_classes" in options:
        return f"data.options.num_classes: {where}; set it, or number the classes 0..N-1"
    return f"data: {where}; number the classes 0..N-1, or train a regression (loss: mse) if they are values"


def _check_sampling(config: Config, data: LoadedData | StreamedData) -> None:
    """Drawing examples at random needs random access: arrays in memory, or one file per example."""
    if config.training.sampling == "with_replacement" and data.streamed and not isinstance(data.train, FileList):
        raise DataError(f"training.sampling: with_replacement draws examples at random, but {config.data.dataset} "
                        f"data streams from its files ({data.reason}), which are read in order: use "
                        "sampling: sequential, or raise data.in_memory_max_mb so the data is read into memory")


def _check_inferred_task(config: Config, data: LoadedData | StreamedData) -> None:
    """A CSV target of whole numbers is read as class labels (task: auto); trained with a
    regression loss it is most likely a quantity, and the user should say which it is."""
    options = config.data.options
    if (config.data.dataset == "csv" and options.get("task") == "auto" and data.num_classes is not None
            and RunFacts.of(config).task == "regression"):
        values = data.train_labels.values
        distinct = f"{len(values)} distinct values" if values is not None else "many distinct values"
        raise DataError(f"data: the csv label column '{options['label']}' holds whole numbers, read as class labels "
                        f"({distinct}, data.options.task: auto), but loss {config.loss.name} "
                        "is a regression loss: set data.options.task: regression to train on the values (or use "
                        "a classification loss such as sparse_categorical_crossentropy)")


def _kept_range(labels: list[LabelSummary], ignored) -> tuple[int, int]:
    """The lowest and highest class index once `ignored` (the loss's ignore_class) is left out."""
    lows, highs = [], []
    for summary in labels:
        if summary.values is not None:
            kept = [v for v in summary.values if v != ignored]
            lows.extend(kept[:1])
            highs.extend(kept[-1:])
        elif summary.low is not None:
            lows.append(int(summary.low))
            highs.append(int(summary.high))
    return min(lows, default=0), max(highs, default=0)


def _check_labels(config: Config, data: LoadedData | StreamedData) -> None:
    loss = config.loss.canonical
    task = stored_task(config, data)  # class indices a categorical loss gets one-hot: checked as indices
    name = config.data.dataset
    labels = [s for s in (data.train_labels, data.test_labels) if s is not None and s.count]
    y = data.train_labels
    counted = [s for s in labels if s.low is not None]
    if not labels or not counted and task != "classes":
        return
    low, high = (min(s.low for s in counted), max(s.high for s in counted)) if counted else (0.0, 0.0)
    shown = f"{low:g}..{high:g}"
    integer = y.integer
    per_example = int(np.prod(y.shape))
    shape = (y.count, *y.shape)
    if task == "classes":
        if not integer:
            raise DataError(f"loss sparse_categorical_crossentropy needs integer class labels; the labels of "
                            f"{name} are {y.dtype} ({shown}): use a regression loss such as mse")
        if per_example != 1:
            raise DataError(f"loss sparse_categorical_crossentropy needs one class index per example; the "
                            f"labels of {name} have shape {shape} (one-hot?): use categorical_crossentropy")
        outputs = data.num_classes
        if not counted:
            return  # class labels the dataset defines (TFDS ClassLabel): 0..num_classes-1 by construction
        kept_low, kept_high = _kept_range(counted, config.loss.params.get("ignore_class"))
        if kept_low < 0 or outputs is None or kept_high >= outputs:
            raise DataError(f"loss {loss}: the model has {outputs} outputs (one per "
                            f"class), so labels must lie in [0, {outputs}); the labels of {name} range over "
                            f"{kept_low}..{kept_high}")
    elif task == "one_hot":
        if len(y.shape) != 1 or y.shape[0] < 2:
            hint = " (class indices): use sparse_categorical_crossentropy" if integer else ""
            raise DataError(f"loss {loss} expects one-hot labels of shape (N, classes); the labels of "
                            f"{name} have shape {shape}{hint}")
        if low < 0 or high > 1:
            raise DataError(f"loss {loss} expects one-hot or probability rows in [0, 1]; the labels of "
                            f"{name} range over {shown}")
    elif task in catalog.TASK_LABEL_RANGE:
        lo, hi = catalog.TASK_LABEL_RANGE[task]
        if low < lo or high > hi:
            classes = f" ({int(high) + 1} classes)" if integer and low == 0 else ""
            hint = ": for several classes use sparse_categorical_crossentropy" if classes else ""
            raise DataError(f"loss {loss} trains one output unit per label on values in [{lo}, {hi}]; the "
                            f"labels of {name} range over {shown}{classes}{hint}")
