"""The two layers a model of raw table rows needs that Keras has none of.

A typed table's model takes (batch, columns) strings, the cells as the file has them. Keras's
preprocessing layers (StringLookup, Hashing, TextVectorization, Normalization) take one column
each, and none turns text into numbers; these two do only that, in TensorFlow ops, so the
model (and its SavedModel) holds the whole path from a raw row to a prediction.

They are registered as `tftrain>RawColumn` and `tftrain>ParsedNumber`: tftrain's own classes,
which tftrain.security lets a model file name (it imports nothing the file names).
"""

from __future__ import annotations

import keras
import tensorflow as tf

PACKAGE = "tftrain"


@keras.saving.register_keras_serializable(package=PACKAGE)
class RawColumn(keras.layers.Layer):
    """Column `index` of (batch, columns) strings, stripped of surrounding blanks: (batch,)."""

    def __init__(self, index: int, **kwargs):
        kwargs.setdefault("dtype", "string")
        kwargs["trainable"] = False  # nothing to train: a slice of the row
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, rows):
        return tf.strings.strip(rows[:, self.index])

    def compute_output_spec(self, rows):
        return keras.KerasTensor((rows.shape[0],), dtype="string")

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ParsedNumber(keras.layers.Layer):
    """Column `index` of (batch, columns) strings as (batch, 2) float32: the number, `fill` where
    the cell is one of `missing` (or not finite), and 1.0 in the second place where it was."""

    def __init__(self, index: int, fill: float, missing: list[str], **kwargs):
        kwargs["trainable"] = False  # nothing to train: the fill value was fitted on the training split
        super().__init__(**kwargs)
        self.index, self.fill, self.missing = int(index), float(fill), list(missing)

    def call(self, rows):
        cells = tf.strings.strip(rows[:, self.index])
        absent = tf.zeros_like(cells, dtype=tf.bool)
        for marker in self.missing:
            absent |= tf.equal(cells, marker)
        values = tf.strings.to_number(tf.where(absent, "0", cells), tf.float32)
        absent |= ~tf.math.is_finite(values)
        values = tf.where(absent, tf.constant(self.fill, tf.float32), values)
        return tf.stack([values, tf.cast(absent, tf.float32)], axis=1)

    def compute_output_spec(self, rows):
        return keras.KerasTensor((rows.shape[0], 2), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "index": self.index, "fill": self.fill, "missing": self.missing}


# The class names a model file may use (checked by tftrain.security without importing this module).
LAYERS = (RawColumn, ParsedNumber)
