"""Exact resume: the training state in a tf.train.Checkpoint, saved by `StateCallback` and
restored by `tftrain run --resume`.

A checkpoint holds the model's variables (weights, normalisation statistics, the dropout
seed-generator state), the optimizer's (iterations, slots, loss scale) and a JSON record of
everything else: the position (epoch, steps done in it), the metric accumulators of the epoch in
progress, history rows, the best value so far, early stopping's state. The data position needs
no saving: batch `s` of a run is a pure function of (seed, s) (tftrain.data.pipeline), so both
loops simply restart the stream at the saved step.

tf.train.CheckpointManager writes a checkpoint's files first and then replaces the small
`checkpoint` pointer file atomically, so a kill during a write leaves the previous checkpoint
as the latest; on restore, a checkpoint that cannot be read is skipped for the one before it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from tftrain.errors import TftrainError
from tftrain.runs import CHECKPOINTS, RunDir

STATE = "state"  # checkpoints/state/: the tf.train.CheckpointManager folder
KEEP = 3  # the newest plus two older ones to fall back on if the newest cannot be read
FORMAT = 1  # version of the JSON record, checked on restore


@dataclasses.dataclass
class Record:
    """What a checkpoint holds besides variables."""

    epoch: int  # the epoch in progress (or the next one, at an epoch boundary)
    step: int  # steps of that epoch already done; 0 at an epoch boundary
    global_step: int
    history: list[dict[str, Any]]
    best: float | None
    best_epoch: int | None
    metrics: dict[str, list]  # the epoch's metric accumulators by variable path (mid-epoch only)
    early_stopping: dict[str, Any] | None
    stopped: bool  # a callback (early stopping) ended training at this epoch boundary
    seconds: float  # training time so far, over all sessions
    format: int = FORMAT
    # Under a strategy, each replica's own share of `metrics`, by variable path, in replica order
    # (mid-epoch only; older records lack it and restore the sums).
    replica_metrics: dict[str, list] = dataclasses.field(default_factory=dict)


class Interrupted(Exception):
    """Raised inside the loop after the checkpoint that a SIGINT/SIGTERM asked for."""

    def __init__(self, signum: int, record: Record):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.record = record


class InterruptRequests:
    """While active, a first SIGINT or SIGTERM only records itself: training stops at the next
    step boundary after writing a checkpoint. A second signal acts at once, as usual."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptRequests:
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self._restore()
        # os.write, not print: a signal handler may interrupt a half-written console line.
        os.write(2, f"\n{signal.Signals(signum).name}: stopping after this step and saving a "
                    "checkpoint (send it again to stop at once)\n".encode())


def state_folder(run_path: Path) -> Path:
    """Where the run at `run_path` keeps its tf.train.Checkpoint files."""
    return run_path / CHECKPOINTS / STATE


class TrainingState:
    """The variables and the record that make a run resumable, in one tf.train.Checkpoint."""

    def __init__(self, run: RunDir, model: keras.Model, metrics: list,
                 early_stopping: keras.callbacks.EarlyStopping | None = None):
        self.folder = state_folder(run.path)
        self.metrics = metrics
        self.strategy = model.distribute_strategy
        optimizer = model.optimizer
        self._best_weights = None
        # Numeric state lives in the model's strategy scope (mirrored over the replicas).
        with model.distribute_strategy.scope():
            if not optimizer.built:  # its slot variables must exist to be saved and restored
                optimizer.build(model.trainable_variables)
            if early_stopping is not None and early_stopping.restore_best_weights:
                self._best_weights = [tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False)
                                      for w in model.weights]
        # The record is a string, which collectives cannot broadcast: it stays outside the strategy.
        self._record = tf.Variable("", dtype=tf.string, trainable=False)
        parts = {"model": list(model.variables), "optimizer": list(optimizer.variables),
                 "record": self._record}
        if self._best_weights is not None:
            parts["early_stopping_best_weights"] = self._best_weights
        self.checkpoint = tf.train.Checkpoint(**parts)
        _ = self.checkpoint.save_counter  # created lazily otherwise, and restore checks every value is used
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.folder), max_to_keep=KEEP,
                                                  checkpoint_name="ckpt")

    # -- saving ----------------------------------------------------------------------------
    def save(self, record: Record, best_weights: list | None = None) -> str:
        """Write a checkpoint numbered by the global step; the pointer moves only once it is complete."""
        if self._best_weights is not None and best_weights is not None:
            for variable, value in zip(self._best_weights, best_weights):
                variable.assign(value)
        self._record.assign(json.dumps(dataclasses.asdict(record)))
        return self.manager.save(checkpoint_number=record.global_step)

    def metric_values(self) -> dict[str, list]:
        """The current metric accumulators, by variable path."""
        return {path: keras.ops.convert_to_numpy(v).tolist() for path, v in _metric_variables(self.metrics).items()}

    def replica_metric_values(self) -> dict[str, list]:
        """Under a strategy, every replica's own metric accumulators, by variable path: a list
        in replica order over all workers (a collective op: every worker calls it); {} on one device.

        Keras keeps one accumulator per replica and sums them when read. Restoring only the sum
        would split it evenly over the replicas, and the rest of the epoch would then add up in
        another order: the same to about 1e-7, but not bit for bit.
        """
        parts = {path: self.strategy.experimental_local_results(variable.value)
                 for path, variable in _metric_variables(self.metrics).items() if _per_replica(variable)}
        if not parts:
            return {}
        local_replicas = len(next(iter(parts.values())))

        def flat(context):  # this replica's accumulators in one row (float64 holds them all exactly)
            i = context.replica_id_in_sync_group % local_replicas  # workers have as many replicas each
            return tf.concat([tf.reshape(tf.cast(p[i], tf.float64), [1, -1]) for p in parts.values()], axis=1)

        rows = self.strategy.gather(self.strategy.experimental_distribute_values_from_function(flat), axis=0)
        rows, values, start = rows.numpy(), {}, 0
        for path, (first, *_) in parts.items():
            size = int(np.prod(first.shape))
            values[path] = rows[:, start:start + size].reshape((-1, *first.shape)).tolist()
            start += size
        return values

    def set_metric_values(self, values: dict[str, list], replica_values: dict[str, list] | None = None) -> None:
        """Put saved accumulators back (after the loop reset them for the resumed epoch): each
        replica's own where `replica_values` has them for this many replicas, else the sums."""
        replica_ids = None
        for path, variable in _metric_variables(self.metrics).items():
            dtype = keras.backend.standardize_dtype(variable.dtype)
            by_replica = (replica_values or {}).get(path)
            if (by_replica is not None and _per_replica(variable)
                    and len(by_replica) == self.strategy.num_replicas_in_sync):
                if replica_ids is None:
                    replica_ids = [int(i) for i in self.strategy.experimental_local_results(
                        self.strategy.experimental_distribute_values_from_function(
                            lambda context: tf.constant(context.replica_id_in_sync_group)))]
                for replica, part in zip(replica_ids, self.strategy.experimental_local_results(variable.value)):
                    part.assign(np.asarray(by_replica[replica], dtype=dtype))
            elif path in values:
                variable.assign(np.asarray(values[path], dtype=dtype))

    # -- restoring -------------------------------------------------------------------------
    def checkpoints(self, folder: Path | None = None) -> list[str]:
        """Checkpoint prefixes in `folder` (default: this run's) to try, best first: those the
        pointer file lists, newest first, then any others found (only if every listed one fails)."""
        folder = folder or self.folder
        pointer = tf.train.get_checkpoint_state(str(folder))
        listed = list(reversed(pointer.all_model_checkpoint_paths)) if pointer else []
        listed = [str(folder / Path(prefix).name) for prefix in listed]  # the pointer may hold another path
        found = sorted(folder.glob("ckpt-*.index"), key=lambda p: _number(p.stem), reverse=True)
        return listed + [str(p.with_suffix("")) for p in found if str(p.with_suffix("")) not in listed]

    def restore(self, warn=print, folder: Path | None = None) -> Record | None:
        """Restore the newest readable checkpoint and return its record (None: there is none);
        `warn` hears about each newer one that had to be skipped.

        `folder` reads another run's checkpoints (a multi_worker worker other than the chief
        restores the chief's, then saves its own into a scratch folder).
        """
        candidates = self.checkpoints(folder)
        problems = []
        for prefix in candidates:
            try:
                self.checkpoint.read(prefix).assert_consumed()
                record = Record(**json.loads(self._record.numpy().decode("utf-8")))
                if record.format != FORMAT:
                    raise ValueError(f"record format {record.format}, expected {FORMAT}")
            except Exception as exc:  # noqa: BLE001 (unreadable for any reason: try the one before)
                problems.append(f"{Path(prefix).name}: {_first_line(exc)}")
                continue
            for problem in problems:
                warn(f"skipped unreadable checkpoint {problem}")
            return record
        if candidates:
            raise TftrainError(f"{folder or self.folder}: no checkpoint can be restored ({problems[0]}); "
                               "was config.yaml edited after the run started?")
        return None

    def best_weights(self) -> list | None:
        """Early stopping's best weights from the restored checkpoint, if it keeps them."""
        return None if self._best_weights is None else [v.numpy() for v in self._best_weights]


class StateCallback(keras.callbacks.Callback):
    """Saves the training state at every epoch end, every `every_steps` steps and when a signal
    asked to stop (then raises `Interrupted`); on a resumed run, puts back what the loop and
    callbacks reset at the start: the epoch's metric accumulators and early stopping's state.

    It must come last in the callback list: it saves what the others have just recorded. Both
    loops report batch indices from where the epoch (re)started, so a resumed epoch's first
    batch is `resumed.step` steps in.

    `agree` (multi_worker: tftrain.training.distribute.SignalAgreement) turns this worker's
    pending signal into the one all workers act on: every worker must stop after the same step,
    or the ones still training would fail in a collective op with the ones that stopped.
    """

    def __init__(self, state: TrainingState, steps_per_epoch: int, every_steps: int | None,
                 interrupts: InterruptRequests, history, checkpoint,
                 early_stopping: keras.callbacks.EarlyStopping | None = None, resumed: Record | None = None,
                 agree: Callable[..., int | None] | None = None):
        super().__init__()
        self.agree = agree
        self.state = state
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.interrupts = interrupts
        self.history = history
        self.checkpoint = checkpoint
        self.early_stopping = early_stopping
        self.resumed = resumed
        self.epoch = resumed.epoch if resumed else 0
        self.offset = 0
        self.last_saved = resumed.global_step if resumed else 0
        self.seconds_before = resumed.seconds if resumed else 0.0
        self.started = time.perf_counter()

    def on_train_begin(self, logs=None):
        # EarlyStopping.on_train_begin has just reset itself (it comes earlier in the list).
        es, saved = self.early_stopping, self.resumed and self.resumed.early_stopping
        if es is not None and saved:
            es.wait, es.best, es.best_epoch, es.stopped_epoch = (
                saved["wait"], saved["best"], saved["best_epoch"], saved["stopped_epoch"])
            if saved.get("has_best_weights"):
                es.best_weights = self.state.best_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        resuming = self.resumed is not None and epoch == self.resumed.epoch and self.resumed.step > 0
        self.offset = self.resumed.step if resuming else 0
        if resuming:
            self.state.set_metric_values(self.resumed.metrics, self.resumed.replica_metrics)

    def on_train_batch_end(self, batch, logs=None):
        step = self.offset + batch + 1
        # The epoch's last step is saved (and a signal acted on) at the epoch's end, after
        # validation: a resume position is always strictly inside an epoch or on its boundary.
        if step >= self.steps_per_epoch or not _finite(logs):
            return
        global_step = self.epoch * self.steps_per_epoch + step
        signum = self._stop_signal(epoch_end=False)
        if signum is not None:
            raise Interrupted(signum, self._save(step))
        if self.every_steps and global_step - self.last_saved >= self.every_steps:
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        if not _finite(logs):
            return  # diverged: the last good checkpoint stays the latest
        self.epoch = epoch + 1
        record = self._save(0)
        finished = record.stopped or self.epoch >= self.params.get("epochs", math.inf)
        signum = None if finished else self._stop_signal(epoch_end=True)
        if signum is not None:
            raise Interrupted(signum, record)

    def _stop_signal(self, epoch_end: bool) -> int | None:
        """The signal to stop on now, if any (the same on every worker)."""
        signum = self.interrupts.signum
        return signum if self.agree is None else self.agree(signum, epoch_end=epoch_end)

    def _save(self, step: int) -> Record:
        es = self.early_stopping
        record = Record(
            epoch=self.epoch, step=step, global_step=self.epoch * self.steps_per_epoch + step,
            history=list(self.history.rows), best=self.checkpoint.best, best_epoch=self.checkpoint.best_epoch,
            metrics=self.state.metric_values() if step else {},
            replica_metrics=self.state.replica_metric_values() if step else {},
            early_stopping=None if es is None else {
                "wait": int(es.wait), "best": None if es.best is None else float(es.best),
                "best_epoch": int(es.best_epoch), "stopped_epoch": int(es.stopped_epoch),
                "has_best_weights": es.best_weights is not None},
            stopped=bool(step == 0 and self.model.stop_training),
            seconds=round(self.seconds_before + time.perf_counter() - self.started, 3),
        )
        self.state.save(record, es.best_weights if es is not None else None)
        self.last_saved = record.global_step
        return record


def _metric_variables(metrics: list) -> dict[str, Any]:
    """Each metric variable once (fit's compiled metrics share the configured metric objects),
    keyed by its path, with a counter for repeated paths."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for metric in metrics:
        for variable in metric.variables:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            key, n = variable.path, 1
            while key in found:
                n += 1
                key = f"{variable.path}#{n}"
            found[key] = variable
    return found


def _per_replica(variable) -> bool:
    """Whether a Keras variable is a tf.distribute variable with one accumulator per replica."""
    value = variable.value
    return (isinstance(value, tf.distribute.DistributedValues)
            and value.synchronization == tf.VariableSynchronization.ON_READ)


def _finite(logs) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


def _number(stem: str) -> int:
    try:
        return int(stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0][:200] if text else ''}"
