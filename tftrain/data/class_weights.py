"""`training.class_weight`: one weight per class, `balanced` or as given, checked against the data.

The weights become each training example's sample weight in the pipeline (tftrain.data.transforms),
so both loops weigh the same examples by the same numbers: Keras's fit and the custom loop both
take the mean of the weighted per-example losses over the batch. Metrics stay unweighted (fit
weighs only compile's `weighted_metrics`); validation, evaluate and predict are never weighted.
"""

from __future__ import annotations

import difflib

import numpy as np

from tftrain.config import Config
from tftrain.data.base import LoadedData, StreamedData
from tftrain.errors import DataError


def example_classes(y: np.ndarray, task: str) -> np.ndarray:
    """The class index of each label: the label itself, the one-hot row's argmax, or the binary
    label rounded (as Keras reads class weights for one-unit labels)."""
    if task == "one_hot":
        return np.argmax(y, axis=-1).astype(np.int64)
    if task == "binary":
        return np.round(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
    return y.reshape(len(y)).astype(np.int64)


def class_count(config: Config, data: LoadedData | StreamedData) -> int:
    """How many classes the loss tells apart in this data."""
    task = config.loss.task
    if task == "one_hot":
        return int(data.label_shape[0])
    if task == "binary":
        return 2
    return int(data.num_classes)


def class_weights(config: Config, data: LoadedData | StreamedData, y_train: np.ndarray | None) -> tuple[float, ...] | None:
    """The weight of each class 0..K-1 (None: no weighting). `balanced` weighs class c by
    n / (classes present * n_c) over `y_train`, the training split's labels (scikit-learn's
    formula; only `balanced` reads them); a mapping names classes by index or by name, unlisted
    ones weigh 1.0."""
    choice = config.training.class_weight
    if choice is None:
        return None
    task = config.loss.task
    k = class_count(config, data)
    if choice == "balanced":
        classes = example_classes(y_train, task)
        counts = np.bincount(classes, minlength=k)
        present = int(np.count_nonzero(counts))
        weights = np.where(counts > 0, len(classes) / (present * np.maximum(counts, 1)), 1.0)
        return tuple(float(w) for w in weights)
    weights = np.ones(k)
    for key, weight in choice.items():
        weights[_class_index(key, k, data, config.data.dataset)] = weight
    return tuple(float(w) for w in weights)


def _class_index(key: int | str, k: int, data: LoadedData | StreamedData, dataset: str) -> int:
    """A class of the data named by its index or its name; a DataError otherwise."""
    names = list(data.class_names or ())
    if isinstance(key, int):
        if 0 <= key < k:
            return key
        raise DataError(f"training.class_weight: class {key} is not a class of {dataset}, whose classes are "
                        f"0..{k - 1}" + (f" ({', '.join(names)})" if names else ""))
    if key in names:
        return names.index(key)
    if not names:
        raise DataError(f"training.class_weight: class '{key}' is a name, but the classes of {dataset} are "
                        f"numbered 0..{k - 1}; weigh them by number")
    close = difflib.get_close_matches(key, names, n=1)
    raise DataError(f"training.class_weight: class '{key}' is not a class of {dataset}"
                    + (f" — did you mean '{close[0]}'?" if close else "") + f"; its classes: {', '.join(names)}")
