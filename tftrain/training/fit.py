"""The `fit` loop: Keras's own model.fit.

Where the plan holds the training split in the graph (`Pipelines.in_graph`), fit reads a stream
of step numbers instead of batches, and the model's train step gathers batch `s` by index before
Keras's own step runs on it: the same batches, with no input pipeline between the calls' steps.
"""

from __future__ import annotations

from contextlib import contextmanager

import keras
import tensorflow as tf

from tftrain.data.pipeline.interface import InGraphBatches, Pipelines
from tftrain.training.callbacks import SessionCallbacks
from tftrain.training.resume import Position


class FitLoop:
    """model.fit over the pipelines; the model is already compiled."""

    def __init__(self, model: keras.Model, metrics: list, distill=None):
        self.model = model
        if distill is not None:  # tftrain.training.distill: the teacher's term joins fit's training loss
            distill.attach(model)
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
        with _in_graph_steps(self.model, pipelines) as train:
            self._fit(train(start.global_step), pipelines, callbacks, start)

    def _fit(self, train, pipelines: Pipelines, callbacks: SessionCallbacks, start: Position) -> None:
        self.model.fit(
            train,
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


@contextmanager
def _in_graph_steps(model: keras.Model, pipelines: Pipelines):
    """What fit reads, as a function of the first step: the batches (tf.data), or where the
    training split is in the graph, the step numbers of each call, which the model's train
    function (in_graph_train_function) runs (instance attributes, removed again when fit returns)."""
    graph = pipelines.in_graph
    if graph is None:
        yield pipelines.train
        return
    spe, total = model.steps_per_execution, pipelines.total_steps

    def make_train_function(force=False):  # Keras's hook, also called again after training.unfreeze
        if model.train_function is None or force:
            model.train_function = in_graph_train_function(model, graph)
        return model.train_function

    model.make_train_function, model.train_function = make_train_function, None
    try:
        # One element per compiled call: its step numbers. Unknown cardinality (the filter), so
        # Keras counts calls by steps_per_epoch alone, as it does for the stream of batches.
        yield lambda first: tf.data.Dataset.range(first, total).batch(spe).filter(lambda _: True)
    finally:
        del model.make_train_function
        model.train_function = None


def in_graph_train_function(model: keras.Model, graph: InGraphBatches):
    """Keras's train function for batches in the graph: iterator -> the logs of the call's last
    step. Each call reads its step numbers and runs the model's own train_step on batch `s` for
    each in one tf.range loop: the same steps as Keras's function, without its per-step tf.cond,
    Optional and iterator ops (dense MNIST: those cost more than the step's kernels)."""
    keras_step = type(model).train_step

    def train(batch):
        return keras_step(model, batch)

    if model.jit_compile and not model.run_eagerly:
        # XLA compiles the step on its batch, as Keras's own function does; the gather stays
        # outside (XLA has no kernel for the epoch order's RandomIndexShuffle).
        train = tf.function(train, jit_compile=True, reduce_retracing=True)

    def step(s):
        return train(graph.batch(s))

    if model.run_eagerly:
        return lambda iterator: _steps(step, next(iterator))
    steps = tf.function(lambda numbers: _steps(step, numbers), reduce_retracing=True)
    return lambda iterator: steps(next(iterator))  # StopIteration ends the epoch, as in Keras


def _steps(step, numbers):
    last = tf.size(numbers) - 1
    for i in tf.range(last):
        step(numbers[i])
    return step(numbers[last])  # its logs (the model's metrics so far), what Keras's function returns
