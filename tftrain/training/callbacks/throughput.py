"""Training throughput, measured the same way for tftrain and for the benchmark's baselines.

examples/second counts only training: the time from the start of each epoch to its last step,
so validation, checkpoints and other end-of-epoch work are left out, and the first compiled call
of the run (tracing, graph optimisation, XLA compilation) is reported on its own rather than
mixed into the rate. `bench/compare.py` times its hand-written baselines with this same meter.
CPU time (all threads of the process) is counted over the same intervals: on a shared machine
it is a steadier measure of the work per example than wall time.
"""

from __future__ import annotations

import time

import keras


class ThroughputMeter:
    """Counts examples and seconds of training, per compiled call.

    Call `epoch_begin()` when an epoch starts and `steps_done(last_step)` after each compiled
    call returns, with the epoch-relative index of the last step it ran (as Keras passes to
    `on_train_batch_end`). Time between an epoch's last step and the next epoch's start is
    not counted.
    """

    def __init__(self, batch_size: int, examples_per_epoch: int | None = None):
        self.batch_size = batch_size
        # None: every batch is full (an endless stream cut into intervals, in steps mode).
        self.examples_per_epoch = examples_per_epoch
        self.first_call_seconds: float | None = None
        self.first_call_examples = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.examples = 0
        self._mark = 0.0
        self._cpu_mark = 0.0
        self._epoch_examples = 0

    def epoch_begin(self, first_step: int = 0) -> None:
        """Start timing an epoch whose training starts at step `first_step` (an epoch resumed
        part-way starts later)."""
        self._mark, self._cpu_mark = time.perf_counter(), time.process_time()
        self._epoch_examples = first_step * self.batch_size

    def steps_done(self, last_step: int) -> None:
        """Record that training reached step `last_step` (0-based, within the epoch)."""
        now, cpu_now = time.perf_counter(), time.process_time()
        reached = (last_step + 1) * self.batch_size
        if self.examples_per_epoch is not None:
            reached = min(reached, self.examples_per_epoch)  # a short last batch, or a chunk past the end
        examples, self._epoch_examples = reached - self._epoch_examples, reached
        if self.first_call_seconds is None:
            self.first_call_seconds, self.first_call_examples = now - self._mark, examples
        else:
            self.seconds += now - self._mark
            self.cpu_seconds += cpu_now - self._cpu_mark
            self.examples += examples
        self._mark, self._cpu_mark = now, cpu_now

    def result(self) -> dict[str, float | int | None]:
        """examples_per_second (after the first call; all calls if there was only one), the
        rate with the first call included, CPU microseconds per example (after the first call),
        the first call's seconds and the counts."""
        first = self.first_call_seconds
        if first is None:
            return {"examples_per_second": None, "examples_per_second_with_first_call": None,
                    "cpu_us_per_example": None, "first_call_seconds": None, "train_seconds": 0.0,
                    "examples": 0}
        total_seconds = first + self.seconds
        total_examples = self.first_call_examples + self.examples
        overall = total_examples / total_seconds if total_seconds > 0 else None
        steady = self.examples / self.seconds if self.examples and self.seconds > 0 else overall
        return {
            "examples_per_second": _round(steady),
            "examples_per_second_with_first_call": _round(overall),
            "cpu_us_per_example": _round(1e6 * self.cpu_seconds / self.examples) if self.examples else None,
            "first_call_seconds": round(first, 3),
            "train_seconds": round(total_seconds, 3),
            "examples": total_examples,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class ThroughputCallback(keras.callbacks.Callback):
    """A ThroughputMeter driven by the Keras callback events (both loops emit them).

    It runs after the other callbacks (`after_others`), so each interval also covers their
    per-call work (progress, divergence checks), which the user pays for too.
    """

    after_others = 2

    def __init__(self, batch_size: int, examples_per_epoch: int | None = None):
        super().__init__()
        self.meter = ThroughputMeter(batch_size, examples_per_epoch)
        self._epoch_started = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = True

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch_started:
            self.meter.epoch_begin(first_step=batch)
            self._epoch_started = False

    def on_train_batch_end(self, batch, logs=None):
        self.meter.steps_done(batch)

    def result(self) -> dict[str, float | int | None]:
        """See ThroughputMeter.result."""
        return self.meter.result()
