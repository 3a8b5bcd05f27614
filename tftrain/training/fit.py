"""The `fit` loop: Keras's own model.fit."""

from __future__ import annotations

import keras

from tftrain.data.pipeline.batches import Pipelines
from tftrain.training.callbacks import SessionCallbacks
from tftrain.training.resume import Position


class FitLoop:
    """model.fit over the pipelines; the model is already compiled."""

    def __init__(self, model: keras.Model, metrics: list):
        self.model = model
        # The metric objects whose accumulators a mid-epoch checkpoint carries (fit's compiled
        # metrics wrap the configured ones).
        self.accumulators = [*model.metrics, *metrics]

    def run(self, pipelines: Pipelines, callbacks: SessionCallbacks, start: Position | None) -> None:
        """Train from `start` (None: the beginning) to the end of the run.

        fit reads one stream of batches for the whole run, starting at the resume position. A run
        resumed part-way through an epoch ends that epoch early (model.fit has no shorter first
        epoch), then goes on with full epochs.
        """
        start = start or Position(0, 0, 0)
        if start.step:
            callbacks.end_resumed_epoch()
        self.model.fit(
            pipelines.train(start.global_step),
            epochs=pipelines.epochs,
            initial_epoch=start.epoch,
            steps_per_epoch=pipelines.steps_per_epoch,
            validation_data=pipelines.validation,
            validation_steps=pipelines.validation_steps,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline already shuffles, with the run's seed
            verbose=0,
        )

    def finish(self, callbacks: SessionCallbacks) -> None:
        """Only the end of training is left (killed after the last checkpoint): do what fit
        does at its end (the optimizer's final values, then the callbacks' train end)."""
        callbacks.on_train_begin()
        self.model.optimizer.finalize_variable_values(self.model.trainable_weights)
        callbacks.on_train_end()
