"""TensorBoard event files for both loops, written with tf.summary.

keras.callbacks.TensorBoard reads `model.train_function` for the graph and writes validation
scalars from `on_test_*` events, which only model.fit emits; the custom loop has neither. This
callback uses only the events both loops emit (train begin/end, batch end, epoch end) with the
same tag names and folder layout as Keras's callback, so `tensorboard --logdir runs/` shows every
run's `train` and `validation` curves the same way whichever loop produced them:

    tensorboard/train/       epoch_loss, epoch_<metric>, epoch_learning_rate (the rate the last
                             step used), batch_*, the graph
    tensorboard/validation/  epoch_loss, epoch_<metric>

Epoch scalars are stepped by epoch number (1-based, as in history.csv); in steps mode, where an
"epoch" is one log interval, by the global step at the end of the interval. Batch scalars (about
ten per epoch, without a summary write per step) are stepped by the global step, also after a
resume part-way through an epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.scalar.summary_v2 import scalar_pb

from tftrain.training.callbacks.progress import batch_interval, ordered_logs
from tftrain.training.schedules import learning_rate_used

TRAIN = "train"
VALIDATION = "validation"


class TensorBoardCallback(keras.callbacks.Callback):
    """Scalars per epoch (or log interval) and per batch interval, plus the model's op graph."""

    def __init__(self, log_dir: str | Path, steps_per_epoch: int, steps_mode: bool,
                 logged_values: Callable[[keras.Model], dict[str, Any]] = lambda model: {},
                 resumed_at=None):
        super().__init__()
        self.logged_values = logged_values
        self.resumed_at = resumed_at  # the Position a resumed session starts from
        self.log_dir = Path(log_dir)
        self.steps_per_epoch = steps_per_epoch
        self.steps_mode = steps_mode
        # In steps mode every "epoch" already is one log interval: batch points would repeat them.
        self.batch_every = None if steps_mode else batch_interval(steps_per_epoch)
        self._writers: dict[str, tf.summary.SummaryWriter] = {}
        self._epoch = 0
        self._last_batch_point = 0
        self._epoch_started = False
        self._steps_done = 0  # the global step of the last batch done: which rate it trained with

    def _writer(self, name: str) -> tf.summary.SummaryWriter:
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def _write(self, name: str, step: int, scalars: dict[str, float]) -> None:
        """One event holding a point's scalars, each as tf.summary.scalar writes it (TensorBoard's
        scalar_pb): one summary op per point, not one per scalar (~0.5 ms each, between compiled
        calls of a few milliseconds on small models)."""
        summary = summary_pb2.Summary()
        for tag, value in scalars.items():
            summary.value.extend(scalar_pb(tag, float(value)).value)
        with self._writer(name).as_default():
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

    def on_train_begin(self, logs=None):
        if self.resumed_at is not None:
            self._truncate(self.resumed_at)
        self._write_graph()

    def _truncate(self, at) -> None:
        """Drop from the event files the points of work the resume state does not have (a
        killed session trained past its last checkpoint), as history.csv drops its rows: this
        session writes them again, so TensorBoard sees each step once."""
        from tensorboard.compat.proto import event_pb2

        last_epoch_point = at.epoch * self.steps_per_epoch if self.steps_mode else at.epoch

        def kept(event) -> bool:
            if not event.HasField("summary") or not event.summary.value:
                return True
            tag = event.summary.value[0].tag
            return event.step <= (at.global_step if tag.startswith("batch_") else last_epoch_point)

        for path in sorted(self.log_dir.glob("*/events.out.tfevents.*")):
            events = [event_pb2.Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
            keep = [event for event in events if kept(event)]
            if len(keep) == len(events):
                continue
            tmp = path.with_name(f".{path.name}.tmp")
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for event in keep:
                    writer.write(event.SerializeToString())
            tmp.replace(path)

    def _write_graph(self) -> None:
        """The op graph of the model's forward pass (TensorBoard's Graphs tab)."""
        # The inputs' own structure: a tensor, a list, or a dict (a keras-hub model's features).
        specs = keras.tree.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name), self.model.input)
        forward = tf.function(lambda x: self.model(x, training=False))
        graph = forward.get_concrete_function(specs).graph
        with self._writer(TRAIN).as_default():
            tf.summary.graph(graph)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_started = epoch, True

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch_started:  # the last step done before this one (an epoch may resume part-way)
            self._last_batch_point, self._epoch_started = self._epoch * self.steps_per_epoch + batch, False

    def on_train_batch_end(self, batch, logs=None):
        step = self._steps_done = self._epoch * self.steps_per_epoch + batch + 1
        if self.batch_every is None or not logs:
            return
        # With steps_per_execution > 1 this is called every few steps: write when a point is passed.
        if step // self.batch_every <= self._last_batch_point // self.batch_every:
            return
        self._last_batch_point = step
        values = {**ordered_logs(logs), "learning_rate": learning_rate_used(self.model, step)}
        self._write(TRAIN, step, {f"batch_{name}": value for name, value in values.items()})

    def on_epoch_end(self, epoch, logs=None):
        logs = ordered_logs(logs)
        step = (epoch + 1) * self.steps_per_epoch if self.steps_mode else epoch + 1
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        train["learning_rate"] = learning_rate_used(self.model, self._steps_done)
        train.update(self.logged_values(self.model))  # e.g. w and b of a one-input linear model
        self._write(TRAIN, step, {f"epoch_{name}": value for name, value in train.items()})
        validation = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        if validation:
            self._write(VALIDATION, step, validation)
        # Flush every epoch: a live `tensorboard` sees it now, and a killed run loses nothing written.
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
