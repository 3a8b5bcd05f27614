"""Keras's augmentation layers as the tf.data pipeline runs them: subclasses with Keras's own draws
(`get_random_transformation`) and Keras's own output, bit for bit, computed more cheaply on a CPU.

Why: on a 2-core machine the pipeline's CPU time is taken from the training step, and Keras's
layers are written for accelerators (bench/RESULTS.md, issue 16). RandomFlip broadcasts a
[batch, 1, 1, 1] mask over every pixel in a `tf.where`; RandomTranslation runs TensorFlow's
general projective-transform op, which maps and interpolates every pixel's coordinates, where a
translation's coordinates are one row and one column per image. In the model (`augmentation_on:
model`) the layers are Keras's own, so a saved model holds only Keras's classes.

tests/training/test_recipes.py compares each with Keras's layer on the same draws, in every mode.
"""

from __future__ import annotations

import functools


@functools.cache
def pipeline_layer_classes() -> dict[str, type]:
    """Keras class name -> the pipeline's subclass of it, defined once Keras is imported."""
    import keras
    import tensorflow as tf

    class RowSelectFlip(keras.layers.RandomFlip):
        """RandomFlip picking each image of a batch whole, flipped or not, by a [batch] condition
        (tf.raw_ops.Select) instead of a broadcast select: 3/4 of Keras's flip's cost was that
        select."""

        def _flip_inputs(self, inputs, transformation):
            if transformation is None or len(inputs.shape) != 4:
                return super()._flip_inputs(inputs, transformation)
            rows = tf.reshape(transformation["flips"], [-1])
            horizontal, vertical = (2, 1) if self.data_format == "channels_last" else (3, 2)
            axes = {"horizontal": [horizontal], "vertical": [vertical]}.get(self.mode, [horizontal, vertical])
            for axis in axes:  # as Keras: horizontal_and_vertical flips both axes of the same images
                inputs = tf.raw_ops.Select(condition=rows, x=tf.reverse(inputs, [axis]), y=inputs)
            return inputs

    class GatherTranslation(keras.layers.RandomTranslation):
        """RandomTranslation as gathers of whole rows and columns (`translate`): in a tf.data map
        on a CPU, two thirds of Keras's time for bilinear shifts, half for nearest ones."""

        def _translate_inputs(self, inputs, transformation, interpolation):
            shape = inputs.shape
            if (transformation is None or len(shape) != 4 or self.data_format != "channels_last"
                    or None in shape[1:3]):
                return super()._translate_inputs(inputs, transformation, interpolation)
            shifts = tf.cast(transformation["translations"], tf.float32)  # [batch, (dx, dy)] in pixels
            return translate(inputs, shifts[:, 0], shifts[:, 1], interpolation, self.fill_mode, self.fill_value)

    return {"RandomFlip": RowSelectFlip, "RandomTranslation": GatherTranslation}


def translate(images, dx, dy, interpolation: str, fill_mode: str, fill_value: float = 0.0):
    """`images` [batch, height, width, channels] shifted by (dx, dy) pixels per image: what
    `tf.raw_ops.ImageProjectiveTransformV3` computes for the transform [1, 0, -dx, 0, 1, -dy, 0, 0]
    (Keras's RandomTranslation), with the same float operations in the same order. Output pixel
    (y, x) reads input (y - dy, x - dx), whose row and column depend only on y and on x: rows and
    columns are gathered whole, and bilinear weights are one per row and one per column. As
    there, bilinear interpolation is computed in float32 and cast back to the images' dtype."""
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    fill = tf.cast(fill_value, images.dtype)
    xs = _map_coordinate(tf.range(width, dtype=tf.float32)[None, :] - dx[:, None], width, fill_mode)  # [batch, width]
    ys = _map_coordinate(tf.range(height, dtype=tf.float32)[None, :] - dy[:, None], height, fill_mode)
    constant = fill_mode == "constant"  # only there can a read fall outside the image with a weight
    if interpolation == "nearest":
        out, rows_in = _read(images, _round_half_away(ys), height, axis=1)
        out, columns_in = _read(out, _round_half_away(xs), width, axis=2)
        return tf.where(rows_in & columns_in, out, fill) if constant else out
    x0, y0 = tf.floor(xs), tf.floor(ys)
    wx0, wx1 = (tf.reshape(w, [-1, 1, width, 1]) for w in (x0 + 1 - xs, xs - x0))
    wy0, wy1 = (tf.reshape(w, [-1, height, 1, 1]) for w in (y0 + 1 - ys, ys - y0))
    left, left_in = _read(images, x0, width, axis=2)
    right, right_in = _read(images, x0 + 1, width, axis=2)
    if constant:
        left, right = tf.where(left_in, left, fill), tf.where(right_in, right, fill)
    left, right, fill = (tf.cast(v, tf.float32) for v in (left, right, fill))
    along_x = wx0 * left + wx1 * right  # every input row interpolated at the output's columns
    top, top_in = _read(along_x, y0, height, axis=1)
    bottom, bottom_in = _read(along_x, y0 + 1, height, axis=1)
    if constant:  # a row outside the image reads fill_value at both columns
        outside = wx0 * fill + wx1 * fill
        top, bottom = tf.where(top_in, top, outside), tf.where(bottom_in, bottom, outside)
    return tf.cast(wy0 * top + wy1 * bottom, images.dtype)


def _map_coordinate(coordinate, size: int, fill_mode: str):
    """TensorFlow's MapCoordinate (tensorflow/core/kernels/image/image_ops.h) for `fill_mode`: an
    input coordinate outside [0, size - 1] mapped inside (reflect, wrap, nearest) or kept
    (constant), in float32 as there (integer truncations included)."""
    import tensorflow as tf

    def truncated(value):
        return tf.cast(tf.cast(value, tf.int64), tf.float32)

    if fill_mode == "constant":
        return coordinate
    if size <= 1:
        return tf.zeros_like(coordinate)
    below, above = coordinate < 0, coordinate > size - 1
    if fill_mode == "reflect":  # dcba|abcd|dcba
        period = float(2 * size)
        low = period * truncated(-coordinate / period) + coordinate
        low = tf.where(low < -size, low + period, -low - 1)
        high = coordinate - period * truncated(coordinate / period)
        high = tf.where(high >= size, period - high - 1, high)
        coordinate = tf.where(below, low, tf.where(above, high, coordinate))
    elif fill_mode == "wrap":  # abcd|abcd|abcd
        span = float(size - 1)
        low = coordinate + size * (truncated(-coordinate / span) + 1)
        high = coordinate - size * truncated(coordinate / span)
        coordinate = tf.where(below, low, tf.where(above, high, coordinate))
    return tf.clip_by_value(coordinate, 0.0, float(size - 1))


def _round_half_away(value):
    """std::round: halves away from zero (tf.round rounds them to even)."""
    import tensorflow as tf

    floor = tf.floor(value)
    fraction = value - floor  # exact in float32
    return floor + tf.cast((fraction > 0.5) | ((fraction == 0.5) & (value >= 0)), tf.float32)


def _read(images, index, size: int, axis: int):
    """Rows (axis 1) or columns (axis 2) of each image at `index` [batch, n] (whole numbers as
    floats), clipped into the image, and where each index was inside it (broadcastable)."""
    import tensorflow as tf

    index = tf.cast(index, tf.int32)
    inside = (index >= 0) & (index < size)
    out = tf.gather(images, tf.clip_by_value(index, 0, size - 1), axis=axis, batch_dims=1)
    return out, tf.reshape(inside, [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1])
