"""Integer class labels one-hot encoded in the pipeline, for a loss that trains on one-hot rows.

categorical_crossentropy (with `label_smoothing`) and categorical_hinge train on one-hot rows,
and mix_up / cut_mix mix them; mnist, fashion_mnist, cifar10, image folders and CSV label
columns store class indices. When the loss wants rows and the labels are class indices whose
count the data knows, every batch a model sees (training, validation, evaluate, export's check)
carries `tf.one_hot` rows; the data as stored, its class names and whatever is read from the
stored labels (data checks, class weights, per-channel statistics, convert) keep the indices.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from tftrain.spec.outputs import SEVERAL, several

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.spec.schema import Config


def one_hot_classes(config: Config, data: LoadedData | StreamedData) -> int | None:
    """The number of classes integer labels are one-hot encoded to, or None: they are not (the
    loss takes them as they are, or they already are rows; several outputs: label_encoder)."""
    if several(config) or config.loss.task != "one_hot" or data.num_classes is None:
        return None
    if not data.train_labels.integer or math.prod(data.label_shape) != 1:
        return None
    return int(data.num_classes)


def stored_task(config: Config, data: LoadedData | StreamedData) -> str:
    """What the stored labels are (catalog.LOSS_TASKS's words): `classes` where they are one-hot
    encoded in the pipeline, else what the loss trains."""
    if several(config):
        return SEVERAL
    return "classes" if one_hot_classes(config, data) is not None else config.loss.task


class OneHot:
    """Class indices -> one-hot rows of `classes` (a batch, or `array` for labels in memory)."""

    def __init__(self, classes: int):
        self.classes = classes

    def __call__(self, y):
        return encode(y, self.classes)

    def array(self, y: np.ndarray) -> np.ndarray:
        return encode_array(y, self.classes)


def label_encoder(config: Config, data: LoadedData | StreamedData):
    """What turns stored labels into what the loss takes (a batch -> labels, with `.array` for
    arrays): one-hot rows, or a dict per output (tftrain.data.tables.outputs); None: as stored."""
    if several(config):
        from tftrain.data.tables.outputs import OutputLabels

        return OutputLabels(config, data)
    classes = one_hot_classes(config, data)
    return None if classes is None else OneHot(classes)


def encode(y, classes: int):
    """A batch of class indices (shape (N,) or (N, 1)) as float32 one-hot rows (N, classes)."""
    import tensorflow as tf

    return tf.one_hot(tf.reshape(tf.cast(y, tf.int32), [-1]), classes, dtype=tf.float32)


def encode_array(y: np.ndarray, classes: int) -> np.ndarray:
    """encode for labels in memory (export's check reads arrays)."""
    return np.eye(classes, dtype=np.float32)[np.asarray(y).reshape(-1).astype(np.int64)]


def encode_batches(batches, encoder):
    """(x, y) batches with y encoded (label_encoder's; None: as they are)."""
    if batches is None or encoder is None:
        return batches
    import tensorflow as tf

    return batches.map(lambda x, y: (x, encoder(y)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def encoding_first(transform, encoder):
    """The training transform (x, y, step) with the labels encoded before it runs, so that class
    weights and mix_up / cut_mix see one-hot rows (`encoder` None: `transform` as it is)."""
    if encoder is None:
        return transform
    if transform is None:
        return lambda x, y, step: (x, encoder(y))
    return lambda x, y, step: transform(x, encoder(y), step)
