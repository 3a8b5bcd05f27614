"""Snapshots: checkpoints/last.keras every epoch, checkpoints/best.keras when the monitored
metric improves (the resume state is another thing: tftrain.training.resume)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from tftrain.models.hub_tuning import save_adapters
from tftrain.runs import RunDir
from tftrain.spec.catalog import monitor_mode
from tftrain.training.callbacks.ema import ema_weights
from tftrain.training.schedules import keras_native_learning_rate


def save_atomically(model: keras.Model, path: Path) -> None:
    """model.save to a temp name, then rename: a kill mid-write never corrupts the old file. The
    file holds Keras's own classes only (a warmup is saved as the schedule it leads to)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    with keras_native_learning_rate(getattr(model, "optimizer", None)):
        model.save(tmp)
    tmp.replace(path)
    save_adapters(model, path)  # LoRA: the adapters Keras merged into the saved kernels, kept beside it


class SnapshotCallback(keras.callbacks.Callback):
    """last.keras every epoch, best.keras when `monitor` improves; a diverged epoch (non-finite
    loss) is never saved, so the last good snapshot stays usable.

    Resume state: the best value so far and its epoch.
    """

    state_key = "snapshots"

    def __init__(self, run: RunDir, monitor: str, mode: str, has_validation: bool):
        super().__init__()
        self.run = run
        # Without validation data, `val_loss` falls back to `loss` (and so on for metrics).
        self.monitor = monitor if has_validation or not monitor.startswith("val_") else monitor[4:]
        self.mode = monitor_mode(self.monitor, mode)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def get_state(self) -> dict[str, Any]:
        """The best value so far and its (1-based) epoch."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from this best value."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return
        with ema_weights(self.model):  # with use_ema, the weights that were validated
            save_atomically(self.model, self.run.snapshot("last"))
            value = logs.get(self.monitor)
            if value is not None and math.isfinite(float(value)) and self._improved(float(value)):
                self.best, self.best_epoch = float(value), epoch + 1
                save_atomically(self.model, self.run.snapshot("best"))
