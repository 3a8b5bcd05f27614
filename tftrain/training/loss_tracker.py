"""The loss tracker of both loops: the epoch's mean training loss, weighted by batch size."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.utils.tracking import DotNotTrackScope  # no public equivalent (compile uses it)


class LossMean(keras.metrics.Mean):
    """Keras's Mean for the loop's loss, a scalar weighted by its batch's example count: total +=
    loss * weight, count += weight, what Mean.update_state computes for a scalar and its weight,
    in two updates instead of Mean's general broadcast-multiply-sum (~13 ops a step, as many as
    a small model's forward pass)."""

    def update_state(self, values, sample_weight=None):
        weight = tf.cast(sample_weight, self.dtype)
        self.total.assign_add(tf.cast(values, self.dtype) * weight)
        self.count.assign_add(weight)


def use_lean_loss_tracker(model: keras.Model) -> None:
    """Give a compiled model's fit and evaluate (Keras's train_step and test_step, which update
    `model._loss_tracker` with the batch's loss and example count) a LossMean in place of the
    Mean that compile made: the same two variables with the same values, fewer ops a step.
    Set untracked, as compile sets it: a tracked metric would also join `model._metrics`, so
    `model.metrics` (its logs, its resets, a checkpoint's accumulators) would hold it twice."""
    with DotNotTrackScope():
        model._loss_tracker = LossMean(name=model._loss_tracker.name, dtype=model._loss_tracker.dtype)
