"""Exact resume: the resume state of a run in one tf.train.Checkpoint (checkpoints/state/),
saved by `ResumeCallback` and restored by `tftrain run --resume`.

The checkpoint holds the model's variables (weights, normalisation statistics, the dropout
seed-generator state), the optimizer's (iterations, slots, loss scale) and a record: the
position (epoch, steps done in it), the training time so far, and the state of every stateful
component of the session, collected through one protocol (`Stateful`) without knowing any
component's fields. Arrays in a component's state (early stopping's best weights) are kept
beside the JSON record as .npy bytes. The data position needs no saving: batch `s` of a run is
a pure function of (seed, s) (tftrain.data.pipeline.batches), so both loops restart the stream at the
saved step.

tf.train.CheckpointManager writes a checkpoint's files first and then replaces the small
`checkpoint` pointer file atomically, so a kill during a write leaves the previous checkpoint
as the latest; on restore, a checkpoint that cannot be read is skipped for the one before it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

from tftrain.errors import TftrainError
from tftrain.training.signals import Interrupted, InterruptRequests

KEEP = 3  # the newest plus two older ones to fall back on if the newest cannot be read
FORMAT = 2  # version of the record, checked on restore (1: tftrain before the state protocol)
_ARRAY = "__array__"  # marks an array's place in a state: {"__array__": [offset, length]} in the blob


@runtime_checkable
class Stateful(Protocol):
    """A component whose state must survive a resume (as Lightning's callbacks' state_dict).

    `get_state()` returns plain data (JSON types and NumPy arrays); `set_state(state)` gets it
    back in a resumed session, before training begins. Keys are unique within a session.
    """

    state_key: str

    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class Position:
    """Where training is: `step` steps into epoch `epoch` (0-based; step 0 is its boundary)."""

    epoch: int
    step: int
    global_step: int

    def describe(self) -> dict[str, int]:
        """As summary.json and messages count: 1-based epoch, step in it, global step."""
        return {"epoch": self.epoch + 1, "step_in_epoch": self.step, "step": self.global_step}


@dataclasses.dataclass(frozen=True)
class Record:
    """What a checkpoint holds besides variables."""

    at: Position
    stopped: bool  # a callback (early stopping) ended training at this epoch boundary
    seconds: float  # training time so far, over all sessions
    states: dict[str, Any]  # each Stateful component's state, by state_key

    def to_json(self) -> tuple[str, bytes]:
        """The record as JSON, and the bytes of the arrays it refers to."""
        blob = io.BytesIO()
        states = _encode(self.states, blob)
        data = {"format": FORMAT, **dataclasses.asdict(self.at), "stopped": self.stopped,
                "seconds": self.seconds, "states": states}
        return json.dumps(data), blob.getvalue()

    @classmethod
    def from_json(cls, text: str, blob: bytes) -> Record:
        """Read a record back (ValueError when it is of another format)."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"record format {data.get('format')}, expected {FORMAT} (written by another "
                             "tftrain version: resume it with the version that started it)")
        at = Position(data["epoch"], data["step"], data["global_step"])
        return cls(at, bool(data["stopped"]), float(data["seconds"]), _decode(data["states"], blob))


def _encode(value: Any, blob: io.BytesIO) -> Any:
    if isinstance(value, dict):
        return {k: _encode(v, blob) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, blob) for v in value]
    if isinstance(value, np.ndarray):
        start = blob.tell()
        np.save(blob, value, allow_pickle=False)  # .npy bytes carry no timestamps: equal states, equal bytes
        return {_ARRAY: [start, blob.tell() - start]}
    return value.item() if isinstance(value, np.generic) else value


def _decode(value: Any, blob: bytes) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            start, length = value[_ARRAY]
            return np.load(io.BytesIO(blob[start:start + length]), allow_pickle=False)
        return {k: _decode(v, blob) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, blob) for v in value]
    return value


class ResumeState:
    """The variables and the record that make a run resumable, in one tf.train.Checkpoint."""

    def __init__(self, folder: Path, model: keras.Model):
        self.folder = Path(folder)
        optimizer = model.optimizer
        with model.distribute_strategy.scope():  # numeric state is mirrored over the replicas
            if not optimizer.built:  # its slot variables must exist to be saved and restored
                optimizer.build(model.trainable_variables)
        # Strings, which collectives cannot broadcast: they stay outside the strategy.
        self._record = tf.Variable("", dtype=tf.string, trainable=False)
        self._arrays = tf.Variable(b"", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=list(model.variables), optimizer=list(optimizer.variables),
                                              record=self._record, arrays=self._arrays)
        _ = self.checkpoint.save_counter  # created lazily otherwise, and restore checks every value is used
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.folder), max_to_keep=KEEP,
                                                  checkpoint_name="ckpt")
        self.remove_partial()  # a process killed while it saved leaves these behind

    def remove_partial(self) -> None:
        """Delete what a checkpoint write cut short (a second Ctrl-C, a kill) left: the
        `ckpt-N_temp` files of a save that never became a checkpoint."""
        for leftover in self.folder.glob("ckpt-*_temp*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def save(self, record: Record) -> str:
        """Write a checkpoint numbered by the global step; the pointer moves only once it is complete."""
        text, blob = record.to_json()
        self._record.assign(text)
        self._arrays.assign(blob)
        return self.manager.save(checkpoint_number=record.at.global_step)

    def checkpoints(self, folder: Path | None = None) -> list[str]:
        """Checkpoint prefixes in `folder` (default: this run's) to try, best first: those the
        pointer file lists, newest first, then any others found (only if every listed one fails)."""
        folder = folder or self.folder
        pointer = tf.train.get_checkpoint_state(str(folder))
        listed = list(reversed(pointer.all_model_checkpoint_paths)) if pointer else []
        listed = [str(folder / Path(prefix).name) for prefix in listed]  # the pointer may hold another path
        found = sorted(folder.glob("ckpt-*.index"), key=lambda p: _number(p.stem), reverse=True)
        return listed + [str(p.with_suffix("")) for p in found if str(p.with_suffix("")) not in listed]

    def restore(self, warn: Callable[[str], None] = print, folder: Path | None = None) -> Record | None:
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
                record = Record.from_json(self._record.numpy().decode("utf-8"), self._arrays.numpy())
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


class ResumeCallback(keras.callbacks.Callback):
    """Saves the resume state at every epoch end, every `every_steps` steps and when a signal
    asked to stop (then raises `Interrupted`).

    It runs after every other callback (`after_others`), so a checkpoint holds what they all did
    at that step; batch indices count from the epoch's start (tftrain.training.callbacks).
    `agree` (multi_worker: tftrain.training.distribute.SignalAgreement) turns this worker's
    pending signal into the one all workers act on: every worker must stop after the same step,
    or the ones still training would fail in a collective op with the ones that stopped.
    """

    after_others = 3

    def __init__(self, state: ResumeState, components: list[Stateful], steps_per_epoch: int,
                 every_steps: int | None, interrupts: InterruptRequests, restored: Record | None = None,
                 agree: Callable[..., int | None] | None = None):
        super().__init__()
        keys = [c.state_key for c in components]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two stateful components share a state_key: {sorted(keys)}")
        self.state = state
        self.components = components
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.interrupts = interrupts
        self.agree = agree
        self.epoch = restored.at.epoch if restored else 0
        self.last_saved = restored.at.global_step if restored else 0
        self.seconds_before = restored.seconds if restored else 0.0
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        # The epoch's last step is saved (and a signal acted on) at the epoch's end, after
        # validation: a resume position is always strictly inside an epoch or on its boundary.
        if step >= self.steps_per_epoch or not _finite(logs):
            return
        signum = self._stop_signal(epoch_end=False)
        if signum is not None:
            record = self._save(step)
            raise Interrupted(signum, record.at, record.seconds)
        if self.every_steps and self.epoch * self.steps_per_epoch + step - self.last_saved >= self.every_steps:
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        if not _finite(logs):
            return  # diverged: the last good checkpoint stays the latest
        self.epoch = epoch + 1
        record = self._save(0)
        finished = record.stopped or self.epoch >= self.params.get("epochs", math.inf)
        signum = None if finished else self._stop_signal(epoch_end=True)
        if signum is not None:
            raise Interrupted(signum, record.at, record.seconds)

    def _stop_signal(self, epoch_end: bool) -> int | None:
        """The signal to stop on now, if any (the same on every worker)."""
        signum = self.interrupts.signum
        return signum if self.agree is None else self.agree(signum, epoch_end=epoch_end)

    def _save(self, step: int) -> Record:
        at = Position(self.epoch, step, self.epoch * self.steps_per_epoch + step)
        record = Record(at, stopped=bool(step == 0 and self.model.stop_training),
                        seconds=round(self.seconds_before + time.perf_counter() - self.started, 3),
                        states={c.state_key: c.get_state() for c in self.components})
        self.state.save(record)
        self.last_saved = at.global_step
        return record


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
