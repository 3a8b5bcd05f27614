"""The `fit` loop: Keras's own model.fit."""

from __future__ import annotations

import keras

from tftrain.data.pipeline import Pipelines


def train_with_fit(model: keras.Model, pipelines: Pipelines, callbacks: list, initial_epoch: int = 0,
                   initial_step: int = 0) -> None:
    """model.fit over the pipelines; the model is already compiled.

    fit reads one stream of batches for the whole run, starting at the resume position. A run
    resumed `initial_step` steps into epoch `initial_epoch` ends that epoch early (model.fit
    has no shorter first epoch), then goes on with full epochs.
    """
    if initial_step:
        end = _EndResumedEpoch(initial_epoch, pipelines.steps_per_epoch - initial_step)
        callbacks = [end.release, *callbacks, end]
    model.fit(
        pipelines.train(initial_epoch * pipelines.steps_per_epoch + initial_step),
        epochs=pipelines.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=pipelines.steps_per_epoch,
        validation_data=pipelines.validation,
        validation_steps=pipelines.validation_steps,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline already shuffles, with the run's seed
        verbose=0,
    )


class _EndResumedEpoch(keras.callbacks.Callback):
    """Stops the resumed epoch after its remaining `steps` with `stop_training` (last in the
    list, so it sees a stop another callback asked for and leaves it alone); `release` (first
    in the list) clears that stop at the epoch's end before the other callbacks run, so fit
    validates, ends the epoch normally and continues."""

    def __init__(self, epoch: int, steps: int):
        super().__init__()
        self.epoch, self.steps = epoch, steps
        self.current: int | None = None
        self.stopped = False
        self.release = _Release(self)

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch + 1 >= self.steps and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped = True


class _Release(keras.callbacks.Callback):
    def __init__(self, end: _EndResumedEpoch):
        super().__init__()
        self.end = end

    def on_epoch_end(self, epoch, logs=None):
        if self.end.stopped:
            self.end.stopped = False
            self.model.stop_training = False
