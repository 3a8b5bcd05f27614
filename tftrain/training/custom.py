"""The `custom` loop: a tf.function train step with tf.GradientTape.

It drives the same Keras callbacks with the same logs as model.fit (loss averaged over the
examples of the epoch, metrics reset every epoch, `val_` prefixed validation results), so the
rest of tftrain cannot tell the two loops apart. Several steps run per compiled call
(`steps_per_execution`) to keep Python out of the hot path.

Where the plan holds the training split in the graph (`Pipelines.in_graph`), each step gathers
its own batch by index inside the compiled call: no iterator, no tf.data, the same batches.

Under a tf.distribute strategy each step runs on every replica (`strategy.run`) over its share
of the global batch; see `_replica_loss` for how the loss is averaged over the global batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tftrain.data.pipeline.interface import Pipelines
from tftrain.training.callbacks import SessionCallbacks
from tftrain.training.loss_tracker import LossMean
from tftrain.training.resume import Position


class CustomLoop:
    """GradientTape training of a compiled model (its loss, optimizer and metrics)."""

    def __init__(self, model: keras.Model, loss_fn, metrics: list, steps_per_execution: int,
                 jit_compile: bool, run_eagerly: bool, strategy: tf.distribute.Strategy | None = None,
                 distill=None):
        self.model = model
        self.distill = distill  # tftrain.training.distill: the teacher's term joins the training loss
        self.loss_fn = loss_fn
        # The same loss, per example: a replica sees only part of the batch, so it cannot average.
        self.per_example_loss = type(loss_fn).from_config({**loss_fn.get_config(), "reduction": "none"})
        self.optimizer = model.optimizer
        self.metrics = metrics
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():  # its variables are summed over the replicas when read
            self.loss_tracker = LossMean(name="loss")
        self.steps_per_execution = steps_per_execution
        # The metric objects whose accumulators a mid-epoch checkpoint carries.
        self.accumulators = [self.loss_tracker, *metrics]
        self._run_eagerly, self._jit_compile = run_eagerly, jit_compile
        self.in_graph = None  # the pipelines' InGraphBatches, set by run()
        self._compile()

    def _compile(self) -> None:
        """The step functions, traced at their first call with the variables that train then;
        made again when those change (training.unfreeze, at an epoch's start)."""
        self._trained = [id(v) for v in self.model.trainable_variables]
        self._step, self._test = self._train_step, self._test_step
        if self._run_eagerly:
            self._train_steps, self._test_steps = self._train_steps_py, self._test_steps_py
            self._train_steps_in_graph = self._train_steps_in_graph_py
            return
        if self._jit_compile:
            # XLA compiles one step, as in Keras's fit: the iterator loop around it has ops
            # (IteratorGetNext) that XLA cannot compile.
            self._step = tf.function(self._train_step, jit_compile=True)
            self._test = tf.function(self._test_step, jit_compile=True)
        self._train_steps = tf.function(self._train_steps_py)
        self._test_steps = tf.function(self._test_steps_py)
        self._train_steps_in_graph = tf.function(self._train_steps_in_graph_py)

    # -- the compiled bodies --------------------------------------------------------------
    def _train_step(self, x, y, sample_weight=None):
        """One step; `sample_weight` (training.class_weight) weighs each example's loss, as
        Keras's fit does with a dataset of (x, y, sample_weight); the metrics stay unweighted, as
        fit keeps `metrics` (only compile's `weighted_metrics` would be weighted)."""
        with tf.GradientTape() as tape:
            predictions = self.model(x, training=True)
            loss, tracked, weight = self._replica_loss(x, y, predictions, sample_weight)
            if self.distill is not None:  # the teacher's term, averaged over the global batch as `loss` is
                replicas = self.strategy.num_replicas_in_sync
                loss = self.distill.total(x, loss, predictions, None if replicas == 1 else weight * replicas)
                tracked = loss if replicas == 1 else loss * replicas  # as _replica_loss records it
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else identity
        variables = self.model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)  # sums the replicas' gradients first
        self._update(y, predictions, tracked, weight)

    def _test_step(self, x, y):
        predictions = self.model(x, training=False)
        _, tracked, weight = self._replica_loss(x, y, predictions)
        self._update(y, predictions, tracked, weight)

    def _replica_loss(self, x, y, predictions, sample_weight=None):
        """This replica's share of the global batch's loss, and what the loss tracker records.

        The optimizer sums the replicas' gradients, so each replica contributes
        sum(its per-example losses) / (examples in the GLOBAL batch): the sum over replicas is
        the mean over the global batch, even when a short last batch splits unevenly. (Keras's
        fit instead gives every replica's own mean the same weight.) On one device this is the
        loss's own `sum / size`; `reduction: sum` is summed over replicas the same way.
        """
        if self.strategy.num_replicas_in_sync == 1:
            # One replica holds the whole batch: the loss's own reduction is the same value, with
            # none of the bookkeeping below (it matters for small models, where every op counts).
            loss = self.loss_fn(y, predictions, sample_weight=sample_weight)
            if self.model.losses:
                loss = loss + tf.add_n(self.model.losses)
            return loss, loss, _examples(x)
        values = self.per_example_loss(y, predictions, sample_weight=sample_weight)  # weighted, not averaged
        local = tf.stack([tf.cast(tf.size(values), values.dtype), tf.cast(_examples(x), values.dtype)])
        replicas = self.strategy.num_replicas_in_sync
        context = tf.distribute.get_replica_context()
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, local) if replicas > 1 else local
        loss = tf.reduce_sum(values)
        if self.loss_fn.reduction != "sum":
            loss = tf.math.divide_no_nan(loss, total[0])
        if self.model.losses:  # regularisation: once per step in total
            loss = loss + tf.add_n(self.model.losses) / replicas
        # Every replica records `loss * replicas` with weight `global batch / replicas`: the
        # tracker sums the replicas, so it sees the global batch's loss weighted by its size
        # (as Keras's fit, a short last batch counts for what it is). One device: loss, batch.
        return loss, loss * replicas, total[1] / replicas

    def _update(self, y, predictions, loss, weight):
        self.loss_tracker.update_state(loss, sample_weight=weight)
        for metric in self.metrics:
            metric.update_state(y, predictions)

    def _train_steps_py(self, iterator, n):
        for _ in tf.range(n):
            batch = next(iterator)  # (x, y), or (x, y, sample_weight) with class weights
            self.strategy.run(self._step, args=batch)
        return self._result_tensors()

    def _train_steps_in_graph_py(self, first, n):
        for i in tf.range(n):
            batch = self.in_graph.batch(first + tf.cast(i, tf.int64))  # training batch `first + i` of the run
            self.strategy.run(self._step, args=batch)  # XLA's step under jit_compile, as from tf.data
        return self._result_tensors()

    def _test_steps_py(self, iterator, n):
        for _ in tf.range(n):
            x, y = next(iterator)
            self.strategy.run(self._test, args=(x, y))
        return self._result_tensors()

    def _result_tensors(self) -> dict[str, tf.Tensor]:
        # Read in the call that ran the steps, as fit's train function returns its logs: reading
        # them after it, eagerly, costs ~1 ms a call (small models run a call in a few ms).
        return {m.name: m.result() for m in [self.loss_tracker, *self.metrics]}

    # -- the epoch loop -------------------------------------------------------------------
    def _reset(self):
        self.loss_tracker.reset_state()
        for metric in self.metrics:
            metric.reset_state()

    def _run(self, call, steps: int, callbacks: SessionCallbacks, test: bool = False) -> dict[str, float]:
        """`steps` steps in compiled calls of up to steps_per_execution (call(n) runs n of them
        and returns the metrics' results after them), each call between the batch events
        model.fit sends (on_test_batch_* for validation). The results after the last step."""
        begin, end = ((callbacks.on_test_batch_begin, callbacks.on_test_batch_end) if test
                      else (callbacks.on_train_batch_begin, callbacks.on_train_batch_end))
        done, results = 0, None
        while done < steps:
            n = min(self.steps_per_execution, steps - done)
            begin(done)
            results = _as_floats(call(n))
            done += n
            end(done - 1, results)
            if not test and self.model.stop_training:
                break
        if results is None:  # no step left (resumed at the epoch's end): read the metrics here
            results = _as_floats(self._result_tensors())
        return results

    def run(self, pipelines: Pipelines, callbacks: SessionCallbacks, start: Position | None) -> None:
        """Train from `start` (None: the beginning) to the end of the run, calling the Keras
        callback events as model.fit does.

        A resumed run starts part-way through epoch `start.epoch`; that epoch runs only its
        remaining steps (batch indices count from the resume point, as in fit).
        """
        start = start or Position(0, 0, 0)
        self.model.stop_training = False
        with self.strategy.scope():
            if not self.optimizer.built:  # a resumed run built it to restore its slots
                self.optimizer.build(self.model.trainable_variables)
        callbacks.on_train_begin()
        # One stream for the whole run, cut into epochs (or log intervals) of steps_per_epoch;
        # each replica gets its share of every global batch (the default strategy: the batch).
        train = self._training_calls(pipelines, start.global_step)
        validation = (self.strategy.experimental_distribute_dataset(preprocessed(self.model, pipelines.validation))
                      if pipelines.validation is not None else None)
        logs: dict[str, float] = {}
        for epoch in range(start.epoch, pipelines.epochs):
            self._reset()
            callbacks.on_epoch_begin(epoch)
            if [id(v) for v in self.model.trainable_variables] != self._trained:
                self._compile()  # a callback changed what trains (training.unfreeze)
            steps = pipelines.steps_per_epoch - (start.step if epoch == start.epoch else 0)
            logs = self._run(train, steps, callbacks)
            if validation is not None and not self.model.stop_training:
                self._reset()
                callbacks.on_test_begin()  # as model.fit's validation does (the EMA weights swap in)
                batches = iter(validation)
                results = self._run(lambda n: self._test_steps(batches, tf.constant(n)), pipelines.validation_steps,
                                    callbacks, test=True)
                validated = {f"val_{name}": value for name, value in results.items()}
                callbacks.on_test_end(results)
                logs.update(validated)
            callbacks.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        self.optimizer.finalize_variable_values(self.model.trainable_variables)  # as fit ends (EMA)
        callbacks.on_train_end(logs)

    def _training_calls(self, pipelines: Pipelines, first_step: int):
        """call(n): the run's next n training steps, from global step `first_step` on."""
        # A keras-hub task's preprocessor (its tokenizer) runs in tf.data, on the batches as read.
        has_preprocessor = getattr(self.model, "preprocessor", None) is not None
        self.in_graph = None if has_preprocessor else pipelines.in_graph
        if self.in_graph is None:
            train = preprocessed(self.model, pipelines.train(first_step))
            iterator = iter(self.strategy.experimental_distribute_dataset(train))
            return lambda n: self._train_steps(iterator, tf.constant(n))
        position = [first_step]

        def call(n):
            results = self._train_steps_in_graph(tf.constant(position[0], tf.int64), tf.constant(n))
            position[0] += n
            return results

        return call

    def finish(self, callbacks: SessionCallbacks) -> None:
        """Only the end of training is left (killed after the last checkpoint)."""
        callbacks.on_train_begin()
        self.optimizer.finalize_variable_values(self.model.trainable_variables)
        callbacks.on_train_end()


def preprocessed(model: keras.Model, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The batches a keras-hub task model takes: its preprocessor (a tokenizer, an image converter)
    mapped over the raw batches, as keras-hub's own fit, evaluate and predict do (model.fit does
    it itself); any other model takes the batches as they are."""
    if getattr(model, "preprocessor", None) is None or not hasattr(model, "preprocess_samples"):
        return dataset
    return dataset.map(model.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _as_floats(results: dict[str, tf.Tensor]) -> dict[str, float]:
    return {name: float(value) for name, value in results.items()}


def _examples(x) -> tf.Tensor:
    """The batch's example count, whatever the inputs' structure (a tensor, a list, a dict)."""
    return tf.shape(tf.nest.flatten(x)[0])[0]
