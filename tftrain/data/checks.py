"""Checks of the loaded data against the model and loss, before anything is built or written.

Each mismatch (labels 0..9 with a one-output binary loss, class indices with a one-hot loss, a
CNN on rows of a table) is a one-line DataError naming both sides, instead of a TensorFlow shape
error from inside the first training step.
"""

from __future__ import annotations

import numpy as np

from tftrain.config import CnnModel, Config
from tftrain.data.base import LoadedData
from tftrain.errors import DataError

# Losses comparing one-hot (or probability) rows with as many model outputs as classes.
ONE_HOT_LOSSES = {"categorical_crossentropy", "categorical_hinge"}
# Losses on a single output unit whose labels are 0/1 (hinge losses also take -1/1).
BINARY_LOSSES = {"binary_crossentropy": (0, 1), "hinge": (-1, 1), "squared_hinge": (-1, 1)}


def check_data(config: Config, data: LoadedData) -> None:
    """Raise DataError if the data cannot train `config.model` with `config.loss`."""
    name = config.data.dataset
    splits = [("train", data.x_train, data.y_train)]
    if data.x_test is not None:
        splits.append(("test", data.x_test, data.y_test))
    for split, x, y in splits:
        for role, array in (("inputs", x), ("labels", y)):
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise DataError(f"data: the {split} {role} of {name} are {array.dtype}; expected numbers")
    if data.x_test is not None:
        for role, train, test in (("inputs", data.x_train, data.x_test), ("labels", data.y_train, data.y_test)):
            if train.shape[1:] != test.shape[1:]:
                raise DataError(f"data: {name} train {role} have per-example shape {train.shape[1:]} but "
                                f"test {role} {test.shape[1:]}; both splits must match")
    _check_labels(config, data)
    if isinstance(config.model, CnnModel):
        _check_cnn(config.model, tuple(data.x_train.shape[1:]), name)


def _check_labels(config: Config, data: LoadedData) -> None:
    loss = config.loss.canonical
    name = config.data.dataset
    labels = [y for y in (data.y_train, data.y_test) if y is not None and y.size]
    if not labels:
        return
    y = data.y_train
    low, high = min(float(v.min()) for v in labels), max(float(v.max()) for v in labels)
    shown = f"{low:g}..{high:g}"
    integer = np.issubdtype(y.dtype, np.integer)
    per_example = int(np.prod(y.shape[1:]))
    if loss == "sparse_categorical_crossentropy":
        if not integer:
            raise DataError(f"loss sparse_categorical_crossentropy needs integer class labels; the labels of "
                            f"{name} are {y.dtype} ({shown}): use a regression loss such as mse")
        if per_example != 1:
            raise DataError(f"loss sparse_categorical_crossentropy needs one class index per example; the "
                            f"labels of {name} have shape {y.shape} (one-hot?): use categorical_crossentropy")
        outputs = data.num_classes
        ignored = config.loss.params.get("ignore_class")
        kept = [v[v != ignored] if ignored is not None else v for v in labels]
        kept_low = min((int(v.min()) for v in kept if v.size), default=0)
        kept_high = max((int(v.max()) for v in kept if v.size), default=0)
        if kept_low < 0 or outputs is None or kept_high >= outputs:
            raise DataError(f"loss sparse_categorical_crossentropy: the model has {outputs} outputs (one per "
                            f"class), so labels must lie in [0, {outputs}); the labels of {name} range over "
                            f"{kept_low}..{kept_high}")
    elif loss in ONE_HOT_LOSSES:
        if y.ndim != 2 or y.shape[1] < 2:
            hint = " (class indices): use sparse_categorical_crossentropy" if integer else ""
            raise DataError(f"loss {loss} expects one-hot labels of shape (N, classes); the labels of "
                            f"{name} have shape {y.shape}{hint}")
        if low < 0 or high > 1:
            raise DataError(f"loss {loss} expects one-hot or probability rows in [0, 1]; the labels of "
                            f"{name} range over {shown}")
    elif loss in BINARY_LOSSES:
        lo, hi = BINARY_LOSSES[loss]
        if low < lo or high > hi:
            classes = f" ({int(high) + 1} classes)" if integer and low == 0 else ""
            hint = ": for several classes use sparse_categorical_crossentropy" if classes else ""
            raise DataError(f"loss {loss} trains one output unit per label on values in [{lo}, {hi}]; the "
                            f"labels of {name} range over {shown}{classes}{hint}")


def _check_cnn(cfg: CnnModel, shape: tuple[int, ...], name: str) -> None:
    if len(shape) not in (2, 3):
        raise DataError(f"model.type cnn needs images of shape (height, width[, channels]); the examples "
                        f"of {name} have shape {shape}: use model.type dense for vectors")
    # Follow the spatial size through the stack: conv (valid padding) shrinks by kernel_size - 1,
    # pooling divides by pool_size. Below 1 pixel Keras fails with a negative-dimension error.
    height, width = shape[:2]
    size = min(height, width)
    for i in range(len(cfg.conv)):
        size = size - cfg.kernel_size + 1
        if size >= 1 and i < len(cfg.conv) - 1:
            size //= cfg.pool_size
        if size < 1:
            raise DataError(f"model.conv: {len(cfg.conv)} conv layers (kernel_size {cfg.kernel_size}, "
                            f"pool_size {cfg.pool_size}) shrink {height}x{width} images of {name} below one "
                            f"pixel at layer {i + 1}; use fewer conv layers or larger images")
