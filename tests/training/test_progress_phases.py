"""Issue 32, item 5: progress says what it is doing. During validation a bar of its own (the
epoch's bar no longer looks frozen at 469/469), a whole-run ETA and live examples/second; the
final table shows the best epoch and the total time. A clock of the test's own makes the
numbers exact."""

from __future__ import annotations

import io

import keras
from rich.console import Console

from tests.kit import TINY


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _callback(console, clock):
    from tftrain.training.callbacks.progress import ProgressCallback

    # 2 epochs of 4 steps of 8 examples, 2 validation steps
    return ProgressCallback(console, epochs=2, steps_per_epoch=4, steps_mode=False, validation_steps=2,
                            batch_size=8, clock=clock)


def _train_epoch(callback, clock, epoch, step_seconds=1.0, validation_seconds=None, during=None):
    callback.on_epoch_begin(epoch)
    for batch in range(4):
        callback.on_train_batch_begin(batch)
        clock.now += step_seconds
        callback.on_train_batch_end(batch, {"loss": 0.5})
    if validation_seconds is not None:
        callback.on_test_begin()
        for batch in range(2):
            callback.on_test_batch_begin(batch)
            clock.now += validation_seconds / 2
            callback.on_test_batch_end(batch)
            if during is not None:
                during(batch)
        callback.on_test_end()
    callback.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.6})


def test_a_terminal_shows_a_validation_bar_a_run_eta_and_examples_per_second():
    clock = FakeClock()
    callback = _callback(Console(file=io.StringIO(), force_terminal=True, width=120), clock)
    callback.on_train_begin()
    seen = {}

    def during(batch):
        tasks = {t.description: t for t in callback.display.tasks}
        seen[batch] = {name: (t.completed, t.total, dict(t.fields)) for name, t in tasks.items()}

    _train_epoch(callback, clock, 0, validation_seconds=2.0, during=during)
    # while validating: the epoch says so, and the validation has its own count
    assert seen[0]["  validation"][:2] == (1, 2) and seen[1]["  validation"][:2] == (2, 2)
    assert seen[0]["epoch 1/2 validating"][:2] == (4, 4)
    assert seen[0]["epoch 1/2 validating"][2]["rate"] == "8 ex/s"  # 32 examples in 4 s
    assert seen[0]["  validation"][2]["rate"] == "8 ex/s"  # 8 examples in 1 s
    callback.on_epoch_begin(1)
    callback.on_train_batch_begin(0)
    clock.now += 1.0
    callback.on_train_batch_end(0, {"loss": 0.4})
    run = next(t for t in callback.display.tasks if t.description == "run")
    assert (run.completed, run.total) == (5, 8)
    # 3 steps left at 1 s each, and this epoch's validation at 2 s
    assert run.fields["metrics"] == "run eta 0:00:05"
    callback.on_train_end()


def test_plain_lines_say_each_epochs_time_rate_and_the_runs_eta():
    clock, out = FakeClock(), io.StringIO()
    callback = _callback(Console(file=out, force_terminal=False, width=200), clock)
    callback.on_train_begin()
    _train_epoch(callback, clock, 0, step_seconds=0.5, validation_seconds=1.0)
    _train_epoch(callback, clock, 1, step_seconds=0.5, validation_seconds=1.0)
    callback.on_train_end()
    lines = out.getvalue().splitlines()
    assert lines == ["epoch 1/2  loss=0.5  val_loss=0.6  (3.0s, 16 ex/s, run eta 0:00:03)",
                     "epoch 2/2  loss=0.5  val_loss=0.6  (3.0s, 16 ex/s)"]


class ValidationEvents(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_test_begin(self, logs=None):
        self.events.append("test_begin")

    def on_test_batch_end(self, batch, logs=None):
        self.events.append(batch)


def test_both_loops_send_validation_batch_events_and_the_final_table_has_best_and_time(tmp_path):
    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    events = {}
    for loop in ("fit", "custom"):
        out = io.StringIO()
        recorder = ValidationEvents()
        raw = {**TINY, "training": {**TINY["training"], "loop": loop, "epochs": 2, "steps_per_execution": 1}}
        run_training(validate(raw), tmp_path / loop, console=Console(file=out, width=120), callbacks=[recorder])
        events[loop] = recorder.events
        text = out.getvalue()
        assert "best val_loss" in text and "(epoch " in text and "total time" in text, text
        assert "examples/s (training)" in text
    assert events["fit"] == events["custom"] == ["test_begin", 0, 1, 2] * 2  # 12 validation examples, batch 4
