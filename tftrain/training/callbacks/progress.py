"""What a run prints while it trains: rich progress bars on a terminal (the epoch's, the
validation's while it runs, the whole run's with its ETA), plain lines elsewhere, and with
--verbose lines inside each epoch too."""

from __future__ import annotations

import time
from typing import Any

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

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


class RunClock:
    """Where the time of a run goes, for its ETA: training steps (from an epoch's start to its
    last step) and validations, each timed as they happen in this session. The whole run's ETA
    is the steps left at the mean step time plus the validations left at the mean validation
    time (training only until the first validation has been timed)."""

    def __init__(self, total_steps: int):
        self.total_steps = total_steps
        self.train_seconds = self.validation_seconds = 0.0
        self.train_steps = self.validations = 0
        self.steps_done = 0

    def trained(self, steps: int, seconds: float, steps_done: int) -> None:
        """`steps` more training steps took `seconds`; the run has now done `steps_done`."""
        self.train_steps += steps
        self.train_seconds += seconds
        self.steps_done = steps_done

    def validated(self, seconds: float) -> None:
        self.validations += 1
        self.validation_seconds += seconds

    def eta(self, validations_left: int, running: tuple[int, float, int] | None = None) -> float | None:
        """Seconds until the run ends, or None before any step has been timed. `running`: the
        epoch under way, not counted yet (its steps, their seconds, the run's steps done)."""
        steps, seconds, done = self.train_steps, self.train_seconds, self.steps_done
        if running is not None:
            steps, seconds, done = steps + running[0], seconds + running[1], running[2]
        if not steps:
            return None
        left = max(0, self.total_steps - done) * seconds / steps
        if self.validations:
            left += validations_left * self.validation_seconds / self.validations
        return left


def clock_text(seconds: float | None) -> str:
    """0:03:07 (h:mm:ss), or -:--:-- while unknown."""
    if seconds is None:
        return "-:--:--"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def rate_text(examples: float, seconds: float) -> str:
    """`1,234 ex/s` (examples a second), empty before anything was timed."""
    return f"{examples / seconds:,.0f} ex/s" if seconds > 0 and examples > 0 else ""


class ProgressCallback(keras.callbacks.Callback):
    """On a terminal: the epoch's bar with live examples/second and metrics, a validation bar of
    its own while validating, and a whole-run line with its ETA; one plain line per epoch (or log
    interval) otherwise, with its time, rate and the run's ETA, so CI logs and pipes get no
    control characters. `clock` is the time source (tests give one of their own)."""

    def __init__(self, console: Console, epochs: int, steps_per_epoch: int, steps_mode: bool,
                 validation_steps: int | None = None, batch_size: int | None = None, clock=time.perf_counter):
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.steps_mode = steps_mode
        self.validation_steps = validation_steps
        self.batch_size = batch_size or 0
        self.live = console.is_terminal or _jupyter_widgets(console)
        self.run_clock = RunClock(epochs * steps_per_epoch)
        self._clock = clock
        self._progress: Progress | None = None
        self._task = self._run_task = self._validation_task = None
        self._started = self._validation_started = 0.0
        self._first_batch: int | None = None
        self._last_batch, self._epoch, self._counted, self._epoch_rate, self._validated = -1, 0, False, "", False
        self._notice: str | None = None

    @property
    def display(self) -> Progress | None:
        """The live display (rich's Progress: its `tasks` are the lines shown), None off a terminal."""
        return self._progress

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

    def _validations_left(self) -> int:
        """Validations still to come, this epoch's included until it has run."""
        return self.epochs - self._epoch - int(self._validated) if self.validation_steps else 0

    def _eta_text(self) -> str:
        return f"run eta {clock_text(self.run_clock.eta(self._validations_left()))}"

    def on_train_begin(self, logs=None):
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[metrics]}"),
                console=self.console, transient=True)
            self._run_task = self._progress.add_task("run", total=self.run_clock.total_steps, rate="",
                                                     metrics=self._eta_text())
            self._progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._epoch = self._clock(), epoch
        self._first_batch, self._last_batch, self._counted, self._epoch_rate = None, -1, False, ""
        self._validated = False
        if self._progress is not None:
            self._task = self._progress.add_task(self._label(epoch), total=self.steps_per_epoch, rate="", metrics="")

    def on_train_batch_begin(self, batch, logs=None):
        if self._first_batch is None:  # an epoch resumed part-way starts at a later batch
            self._first_batch = batch

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = batch
        if self._progress is None or self._task is None:
            return
        steps, seconds = batch + 1 - (self._first_batch or 0), self._clock() - self._started
        done = self._epoch * self.steps_per_epoch + batch + 1
        self._progress.update(self._task, completed=batch + 1, rate=rate_text(steps * self.batch_size, seconds),
                              metrics=format_logs(logs or {}))
        eta = self.run_clock.eta(self._validations_left(), running=(steps, seconds, done))
        self._progress.update(self._run_task, completed=done, metrics=f"run eta {clock_text(eta)}")
        if self._notice is not None:
            self.console.print(self._notice, markup=False, highlight=False, soft_wrap=True)
            self._progress.update(self._task, description="stopping")
            self._notice = None

    def on_test_begin(self, logs=None):
        self._epoch_trained()
        self._validation_started = self._clock()
        if self._progress is not None and self.validation_steps:
            if self._task is not None:
                self._progress.update(self._task, description=f"{self._label(self._epoch)} validating")
            self._validation_task = self._progress.add_task("  validation", total=self.validation_steps,
                                                            rate="", metrics="")

    def on_test_batch_end(self, batch, logs=None):
        if self._progress is not None and self._validation_task is not None:
            seconds = self._clock() - self._validation_started
            self._progress.update(self._validation_task, completed=batch + 1,
                                  rate=rate_text((batch + 1) * self.batch_size, seconds))

    def on_test_end(self, logs=None):
        self.run_clock.validated(self._clock() - self._validation_started)
        self._validated = True
        if self._progress is not None and self._validation_task is not None:
            self._progress.remove_task(self._validation_task)
            self._validation_task = None

    def _epoch_trained(self) -> None:
        """Count the epoch's training steps and their time once (at its validation, else its end)."""
        if self._counted or self._first_batch is None or self._last_batch < self._first_batch:
            return
        steps, seconds = self._last_batch + 1 - self._first_batch, self._clock() - self._started
        self.run_clock.trained(steps, seconds, self._epoch * self.steps_per_epoch + self._last_batch + 1)
        self._epoch_rate, self._counted = rate_text(steps * self.batch_size, seconds), True

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_trained()
        seconds = self._clock() - self._started
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        parts = [f"{seconds:.1f}s", *([self._epoch_rate] if self._epoch_rate else [])]
        if epoch + 1 < self.epochs:
            parts.append(self._eta_text())
        self.console.print(f"{self._label(epoch)}  {format_logs(logs or {})}  ({', '.join(parts)})",
                           markup=False, highlight=False, soft_wrap=True)

    def on_train_end(self, logs=None):
        self.close()


class StepLogCallback(keras.callbacks.Callback):
    """`tftrain run --verbose`: one line about every tenth of an epoch (at most one a compiled
    call), `  step 120/1875  loss=...` (running averages)."""

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


def _jupyter_widgets(console: Console) -> bool:
    """Whether the bars can be drawn live in a Jupyter notebook: rich draws them in an ipywidgets
    output there (its notebook display); without ipywidgets the run prints plain lines."""
    if not console.is_jupyter:
        return False
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None
