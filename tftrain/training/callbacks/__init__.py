"""Keras callbacks shared by both loops, one module each, and the list that drives them.

Both loops (`fit` and `custom`) emit the same Keras callback events with the same flat logs
(`loss`, metrics, `val_*`) through `SessionCallbacks`, so everything here works unchanged in
both. Stateful callbacks (history, snapshots, early stopping, metric accumulators) declare
their resume state (`state_key`, `get_state`, `set_state`: tftrain.training.resume.Stateful).

Callbacks run in the order they are given, and any order works (a test shuffles it), except
for those whose class sets `after_others` (a number): they run after all the rest, lowest
first, because they must see what the others did at that step (the learning rate on a
plateau, 1; the throughput meter, 2; the resume saver, 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import keras


@runtime_checkable
class EndsRun(Protocol):
    """A callback that can end its run early as something other than `completed` (a tune
    trial's pruner: `pruned`): `run_end()` is None until it has, then (status, facts to record
    in summary.json)."""

    def run_end(self) -> tuple[str, dict[str, Any]] | None: ...


def in_order(callbacks: Sequence[keras.callbacks.Callback]) -> list[keras.callbacks.Callback]:
    """`callbacks` as they run: in the order given, those with `after_others` last (lowest first)."""
    return sorted(callbacks, key=lambda callback: getattr(callback, "after_others", 0))


class SessionCallbacks(keras.callbacks.CallbackList):
    """One session's callbacks as both loops drive them.

    - `callbacks` may come in any order; those that declare `after_others` run after the rest.
    - Batch indices are passed on counted from the epoch's start, also in the epoch a resume
      starts part-way through (both loops count that epoch's batches from where they restart).
    - `end_resumed_epoch()` (for `fit`): Keras's fit has no shorter first epoch, so the resumed
      epoch is stopped after its remaining steps and then ends normally (validation, epoch end).
    """

    def __init__(self, callbacks: Sequence[keras.callbacks.Callback], model: keras.Model, epochs: int,
                 steps_per_epoch: int, resume_at=None):
        super().__init__(in_order(callbacks), add_history=True, model=model, epochs=epochs,
                         steps=steps_per_epoch, verbose=0)
        self.steps_per_epoch = steps_per_epoch
        self.resume_at = resume_at  # tftrain.training.resume.Position, or None
        # Training steps (batches) done in the whole run. Not optimizer.iterations, which counts
        # weight updates: one per training.gradient_accumulation_steps batches.
        self.steps_done = resume_at.global_step if resume_at is not None else 0
        self._epoch = 0
        self._offset = 0
        self._end_resumed_epoch = False
        self._stopped_resumed_epoch = False

    def end_resumed_epoch(self) -> None:
        """Stop the resumed epoch after its remaining steps (model.fit runs whole epochs)."""
        self._end_resumed_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        at = self.resume_at
        self._offset = at.step if at is not None and epoch == at.epoch else 0
        self._epoch = epoch
        super().on_epoch_begin(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        super().on_train_batch_begin(batch + self._offset, logs)

    def on_train_batch_end(self, batch, logs=None):
        step = batch + self._offset
        self.steps_done = self._epoch * self.steps_per_epoch + step + 1
        super().on_train_batch_end(step, logs)
        if (self._end_resumed_epoch and self._offset and step + 1 >= self.steps_per_epoch
                and not self.model.stop_training):
            self.model.stop_training = self._stopped_resumed_epoch = True

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped_resumed_epoch:  # our stop, not a callback's: the run goes on
            self.model.stop_training = self._stopped_resumed_epoch = False
        self._offset = 0
        super().on_epoch_end(epoch, logs)
