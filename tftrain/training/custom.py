"""The `custom` loop: a tf.function train step with tf.GradientTape.

It drives the same Keras callbacks with the same logs as model.fit (loss averaged over the
examples of the epoch, metrics reset every epoch, `val_` prefixed validation results), so the
rest of tftrain cannot tell the two loops apart. Several steps run per compiled call
(`steps_per_execution`) to keep Python out of the hot path.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tftrain.data.pipeline import Pipelines


class CustomLoop:
    """GradientTape training of a compiled model (its loss, optimizer and metrics)."""

    def __init__(self, model: keras.Model, loss_fn, metrics: list, steps_per_execution: int,
                 jit_compile: bool, run_eagerly: bool):
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = model.optimizer
        self.metrics = metrics
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.steps_per_execution = steps_per_execution
        if run_eagerly:
            self._train_steps, self._test_steps = self._train_steps_py, self._test_steps_py
        else:
            if jit_compile:
                # XLA compiles one step, as in Keras's fit: the iterator loop around it has ops
                # (IteratorGetNext) that XLA cannot compile.
                self._train_step = tf.function(self._train_step, jit_compile=True)
                self._test_step = tf.function(self._test_step, jit_compile=True)
            self._train_steps = tf.function(self._train_steps_py)
            self._test_steps = tf.function(self._test_steps_py)

    # -- the compiled bodies --------------------------------------------------------------
    def _train_step(self, x, y):
        with tf.GradientTape() as tape:
            predictions = self.model(x, training=True)
            loss = self.loss_fn(y, predictions)
            if self.model.losses:
                loss = loss + tf.add_n(self.model.losses)
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else identity
        variables = self.model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        self._update(y, predictions, loss, tf.shape(x)[0])

    def _update(self, y, predictions, loss, batch_size):
        # Weighted by batch size, as in Keras's fit, so a short last batch counts for what it is.
        self.loss_tracker.update_state(loss, sample_weight=batch_size)
        for metric in self.metrics:
            metric.update_state(y, predictions)

    def _train_steps_py(self, iterator, n):
        for _ in tf.range(n):
            x, y = next(iterator)
            self._train_step(x, y)

    def _test_step(self, x, y):
        predictions = self.model(x, training=False)
        self._update(y, predictions, self.loss_fn(y, predictions), tf.shape(x)[0])

    def _test_steps_py(self, iterator, n):
        for _ in tf.range(n):
            x, y = next(iterator)
            self._test_step(x, y)

    # -- the epoch loop -------------------------------------------------------------------
    def _reset(self):
        self.loss_tracker.reset_state()
        for metric in self.metrics:
            metric.reset_state()

    def _results(self, prefix: str = "") -> dict[str, float]:
        return {prefix + m.name: float(m.result()) for m in [self.loss_tracker, *self.metrics]}

    def _run(self, steps_fn, iterator, steps: int, on_end=None) -> None:
        done = 0
        while done < steps:
            n = min(self.steps_per_execution, steps - done)
            steps_fn(iterator, tf.constant(n))
            done += n
            if on_end is not None:
                on_end(done - 1, self._results())
                if self.model.stop_training:
                    return

    def fit(self, pipelines: Pipelines, callbacks: list, initial_epoch: int = 0) -> None:
        """Train for pipelines.epochs, calling the Keras callback events as model.fit does."""
        callback_list = keras.callbacks.CallbackList(
            callbacks, model=self.model, epochs=pipelines.epochs, steps=pipelines.steps_per_epoch)
        self.model.stop_training = False
        self.optimizer.build(self.model.trainable_variables)
        callback_list.on_train_begin()
        # A finite dataset is re-iterated (and reshuffled) every epoch; an infinite one
        # (steps mode) is one stream cut into intervals.
        stream = iter(pipelines.train) if pipelines.train.cardinality() == tf.data.INFINITE_CARDINALITY else None
        logs: dict[str, float] = {}
        for epoch in range(initial_epoch, pipelines.epochs):
            self._reset()
            callback_list.on_epoch_begin(epoch)
            iterator = stream if stream is not None else iter(pipelines.train)
            self._run(self._train_steps, iterator, pipelines.steps_per_epoch,
                      on_end=lambda step, batch_logs: callback_list.on_train_batch_end(step, batch_logs))
            logs = self._results()
            if pipelines.validation is not None and not self.model.stop_training:
                self._reset()
                self._run(self._test_steps, iter(pipelines.validation), pipelines.validation_steps)
                logs.update(self._results(prefix="val_"))
            callback_list.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        callback_list.on_train_end(logs)
