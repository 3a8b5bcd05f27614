"""The `fit` loop: Keras's own model.fit."""

from __future__ import annotations

import keras

from tftrain.data.pipeline import Pipelines


def train_with_fit(model: keras.Model, pipelines: Pipelines, callbacks: list, initial_epoch: int = 0) -> None:
    """model.fit over the pipelines; the model is already compiled."""
    model.fit(
        pipelines.train,
        epochs=pipelines.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=pipelines.steps_per_epoch,
        validation_data=pipelines.validation,
        validation_steps=pipelines.validation_steps,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline already shuffles, with the run's seed
        verbose=0,
    )
