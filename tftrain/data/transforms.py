"""What every training batch goes through once gathered (the hook of tftrain.data.pipeline):
class weights as sample weights, then the pipeline's augmentation.

`training_transform(...)` returns `(x, y, step) -> (x, y) | (x, y, sample_weight)`, a pure
function of the batch and its step, or None when there is nothing to do. Validation and
evaluation batches never go through it.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tftrain.config import Config
from tftrain.data.augmentation import PipelineAugmentation

Transform = Callable[..., tuple]


def training_transform(config: Config, augmentation: list | None, class_weights: tuple[float, ...] | None,
                       seed: int) -> Transform | None:
    """The per-batch function for training: `augmentation` (layer arguments, tftrain.data.
    augmentation.layer_arguments) when it runs in the pipeline, `class_weights` by class index."""
    augment = PipelineAugmentation(augmentation, seed) if augmentation else None
    task = config.loss.task
    weights = tf.constant(class_weights, tf.float32) if class_weights is not None else None
    if augment is None and weights is None:
        return None

    def transform(x, y, step):
        # Weights come from the labels before any mixing: an example weighs what its class weighs.
        weight = tf.gather(weights, _classes(y, task)) if weights is not None else None
        if augment is not None:
            x, y = augment(x, y, step)
        return (x, y) if weight is None else (x, y, weight)

    return transform


def _classes(y, task: str):
    """Each label's class index, as tftrain.data.class_weights.example_classes reads it."""
    if task == "one_hot":
        return tf.argmax(y, axis=-1)
    if task == "binary":
        return tf.cast(tf.round(tf.reshape(tf.cast(y, tf.float32), [tf.shape(y)[0], -1])[:, 0]), tf.int64)
    return tf.reshape(tf.cast(y, tf.int64), [-1])
