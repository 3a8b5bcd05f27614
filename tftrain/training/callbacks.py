"""Keras callbacks shared by both loops: progress, history, checkpoints, divergence.

Both loops (`fit` and `custom`) drive these through the same Keras callback events with the same
flat logs (`loss`, metrics, `val_*`), so everything here works unchanged in both.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tftrain.runs import CHECKPOINTS, RunDir


def ordered_logs(logs: dict[str, Any] | None) -> dict[str, float]:
    """Logs as floats in one order for both loops: loss, metrics, val_loss, val_ metrics."""
    logs = logs or {}

    def rank(key: str) -> tuple:
        is_val = key.startswith("val_")
        return (is_val, key.removeprefix("val_") != "loss")

    return {k: float(logs[k]) for k in sorted(logs, key=rank)}


def format_logs(logs: dict[str, Any] | None) -> str:
    """`loss=0.1234  accuracy=0.95  val_loss=...` for progress lines."""
    return "  ".join(f"{k}={v:.4g}" for k, v in ordered_logs(logs).items())


class ProgressCallback(keras.callbacks.Callback):
    """Rich progress bar with ETA and live metrics on a terminal; one plain line per epoch (or
    log interval) otherwise, so CI logs and pipes get no control characters."""

    def __init__(self, console: Console, epochs: int, steps_per_epoch: int, steps_mode: bool):
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.steps_mode = steps_mode
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._started = 0.0

    def _label(self, epoch: int) -> str:
        if self.steps_mode:
            end = (epoch + 1) * self.steps_per_epoch
            return f"step {end}/{self.epochs * self.steps_per_epoch}"
        return f"epoch {epoch + 1}/{self.epochs}"

    def on_train_begin(self, logs=None):
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                console=self.console, transient=True)
            self._progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if self._progress is not None:
            self._task = self._progress.add_task(self._label(epoch), total=self.steps_per_epoch, metrics="")

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=batch + 1, metrics=format_logs(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
        self.console.print(f"{self._label(epoch)}  {format_logs(logs or {})}  ({seconds:.1f}s)",
                           markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()


class HistoryCallback(keras.callbacks.Callback):
    """One history.csv row per epoch (or log interval): metrics, learning rate, and w and b for
    a one-input linear model. Rewritten atomically after every row."""

    def __init__(self, run: RunDir, steps_per_epoch: int, steps_mode: bool, rows: list | None = None):
        super().__init__()
        self.run = run
        self.steps_per_epoch = steps_per_epoch
        self.steps_mode = steps_mode
        self.rows: list[dict[str, Any]] = list(rows or [])

    def on_epoch_end(self, epoch, logs=None):
        row: dict[str, Any] = {"epoch": epoch + 1}
        if self.steps_mode:
            row["step"] = (epoch + 1) * self.steps_per_epoch
        row.update(ordered_logs(logs))
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row.update(linear_parameters(self.model))
        self.rows.append(row)
        self.run.write_history(self.rows)


def linear_parameters(model: keras.Model) -> dict[str, float]:
    """w and b of a `linear` model with one input and one output, else {}."""
    try:
        layer = model.get_layer("linear")
    except ValueError:
        return {}
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in layer.weights)
    if kernel.size != 1:
        return {}
    return {"w": float(kernel.reshape(())), "b": float(bias.reshape(()))}


class CheckpointCallback(keras.callbacks.Callback):
    """checkpoints/last.keras every epoch, checkpoints/best.keras when `monitor` improves.

    A diverged epoch (non-finite loss) is never saved, so the last good checkpoint stays usable.
    """

    def __init__(self, run: RunDir, monitor: str, mode: str, has_validation: bool):
        super().__init__()
        self.folder = run.path / CHECKPOINTS
        # Without validation data, `val_loss` falls back to `loss` (and so on for metrics).
        self.monitor = monitor if has_validation or not monitor.startswith("val_") else monitor[4:]
        if mode == "auto":
            mode = "max" if any(s in self.monitor for s in ("acc", "auc", "precision", "recall")) else "min"
        self.mode = mode
        self.best: float | None = None
        self.best_epoch: int | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return
        self.folder.mkdir(exist_ok=True)
        save_atomically(self.model, self.folder / "last.keras")
        value = logs.get(self.monitor)
        if value is not None and math.isfinite(float(value)) and self._improved(float(value)):
            self.best, self.best_epoch = float(value), epoch + 1
            save_atomically(self.model, self.folder / "best.keras")


def save_atomically(model: keras.Model, path) -> None:
    """model.save to a temp name, then rename: a kill mid-write never corrupts the old file."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


class DivergenceCallback(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and remembers the step."""

    def __init__(self):
        super().__init__()
        self.diverged_at_step: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged_at_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            self.model.stop_training = True
