"""history.csv: one row per epoch (or log interval) with the logs, the learning rate and any
values the model type logs (w and b of a linear model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from tftrain.runs import RunDir
from tftrain.training.callbacks.progress import ordered_logs
from tftrain.training.schedules import learning_rate_used


class HistoryCallback(keras.callbacks.Callback):
    """One history.csv row per epoch (or log interval), rewritten atomically after every row.

    Resume state: the rows so far. history.csv always matches them, so rows a killed session
    wrote after its last checkpoint disappear on resume, as the work they describe does.
    """

    state_key = "history"

    def __init__(self, run: RunDir, steps_per_epoch: int, steps_mode: bool,
                 logged_values: Callable[[keras.Model], dict[str, Any]] = lambda model: {}):
        super().__init__()
        self.run = run
        self.steps_per_epoch = steps_per_epoch
        self.steps_mode = steps_mode
        self.logged_values = logged_values
        self.rows: list[dict[str, Any]] = []
        self._epoch, self._steps_done = 0, 0

    def get_state(self) -> dict[str, Any]:
        """The rows so far."""
        return {"rows": list(self.rows)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from these rows."""
        self.rows = list(state["rows"])

    def on_train_begin(self, logs=None):
        self.run.write_history(self.rows)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self._epoch * self.steps_per_epoch + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        row: dict[str, Any] = {"epoch": epoch + 1}
        if self.steps_mode:
            row["step"] = (epoch + 1) * self.steps_per_epoch
        row.update(ordered_logs(logs))
        row["lr"] = learning_rate_used(self.model, self._steps_done)  # the rate the epoch's last step used
        row.update(self.logged_values(self.model))
        self.rows.append(row)
        self.run.write_history(self.rows)
