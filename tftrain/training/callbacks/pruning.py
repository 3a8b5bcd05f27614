"""A tune trial's reports to its study: the objective after every epoch (or log interval), and a
stop when the study's pruner says the trial will not beat the others. The run then ends as
`pruned` (its `run_end`, which the session records) and keeps what it trained: model.keras, snapshots, history.

`report(step, value) -> bool` is how the value reaches the study; for `tftrain tune` it is a
line to the tune process, which asks Optuna (tftrain.commands.workers). Steps are epoch (or log
interval) numbers, 1-based as in history.csv, so every trial of a study reports the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras


class PruningCallback(keras.callbacks.Callback):
    """Reports `metric` at every epoch end; stops training when `report` answers True.

    Resume state: where the trial was pruned (a run killed after that stop, before it ended,
    still ends as pruned when resumed).
    """

    state_key = "pruning"

    def __init__(self, metric: str, report: Callable[[int, float], bool]):
        super().__init__()
        self.metric = metric
        self.report = report
        self.pruned_at: dict[str, Any] | None = None

    def run_end(self) -> tuple[str, dict[str, Any]] | None:
        """("pruned", {"pruned_at": ...}) once the study pruned the trial (tftrain.training.callbacks.EndsRun)."""
        return ("pruned", {"pruned_at": self.pruned_at}) if self.pruned_at is not None else None

    def get_state(self) -> dict[str, Any]:
        """Where the trial was pruned, if it was."""
        return {"pruned_at": self.pruned_at}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue with this state."""
        self.pruned_at = state["pruned_at"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.metric)
        if value is None or self.pruned_at is not None:
            return
        value = float(value)
        if not math.isfinite(value):
            return  # a diverged epoch: the run ends as diverged, not pruned
        if self.report(epoch + 1, value):
            self.pruned_at = {"step": epoch + 1, "metric": self.metric, "value": value}
            self.model.stop_training = True
