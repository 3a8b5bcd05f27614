"""What a run prints while it trains: a rich progress bar on a terminal, plain lines elsewhere,
and with --verbose lines inside each epoch too."""

from __future__ import annotations

import time
from typing import Any

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tftrain.training.signals import write_notice

# About this many --verbose lines (and TensorBoard batch points) per epoch.
POINTS_PER_EPOCH = 10


def batch_interval(steps_per_epoch: int) -> int:
    """Steps between lines (or points) within an epoch: about POINTS_PER_EPOCH, at least 1."""
    return max(1, steps_per_epoch // POINTS_PER_EPOCH)


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
        self._notice: str | None = None

    def _label(self, epoch: int) -> str:
        if self.steps_mode:
            end = (epoch + 1) * self.steps_per_epoch
            return f"step {end}/{self.epochs * self.steps_per_epoch}"
        return f"epoch {epoch + 1}/{self.epochs}"

    def notify(self, text: str) -> None:
        """Say `text` (from a signal handler): above the live bar at the next step boundary, so
        the bar is not drawn over it; at once without one."""
        if self._progress is None:
            write_notice(text)
        else:
            self._notice = text

    def close(self) -> None:
        """Stop the live display and give the terminal its cursor back (also when training
        ends in an error or a signal, where Keras calls no on_train_end)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._notice is not None:  # came after this step's update: say it now, on its own line
            self.console.print(self._notice, markup=False, highlight=False, soft_wrap=True)
            self._notice = None

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
            if self._notice is not None:
                self.console.print(self._notice, markup=False, highlight=False, soft_wrap=True)
                self._progress.update(self._task, description="stopping")
                self._notice = None

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
        self.console.print(f"{self._label(epoch)}  {format_logs(logs or {})}  ({seconds:.1f}s)",
                           markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, logs=None):
        self.close()


class StepLogCallback(keras.callbacks.Callback):
    """`tftrain run --verbose`: one line about every tenth of an epoch,
    `  step 120/1875  loss=...` (running averages)."""

    def __init__(self, console: Console, steps_per_epoch: int):
        super().__init__()
        self.console = console
        self.steps_per_epoch = steps_per_epoch
        self.every = batch_interval(steps_per_epoch)
        self._last = 0
        self._epoch_started = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = True

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch_started:  # an epoch resumed part-way starts at a later batch
            self._last, self._epoch_started = batch, False

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        # With steps_per_execution > 1 this is called every few steps: print when a line is due.
        if done // self.every <= self._last // self.every or done == self.steps_per_epoch:
            return  # the epoch's own line reports the last step
        self._last = done
        self.console.print(f"  step {done}/{self.steps_per_epoch}  {format_logs(logs)}",
                           markup=False, highlight=False, soft_wrap=True)
