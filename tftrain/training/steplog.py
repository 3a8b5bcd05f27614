"""`tftrain run --verbose`: plain progress lines inside each epoch (or log interval) too."""

from __future__ import annotations

import keras
from rich.console import Console

from tftrain.training.callbacks import format_logs
from tftrain.training.tensorboard import batch_interval


class StepLogCallback(keras.callbacks.Callback):
    """One line about every tenth of an epoch: `  step 120/1875  loss=...` (running averages)."""

    def __init__(self, console: Console, steps_per_epoch: int):
        super().__init__()
        self.console = console
        self.steps_per_epoch = steps_per_epoch
        self.every = batch_interval(steps_per_epoch)
        self._last = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._last = 0

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        # With steps_per_execution > 1 this is called every few steps: print when a line is due.
        if done // self.every <= self._last // self.every or done == self.steps_per_epoch:
            return  # the epoch's own line reports the last step
        self._last = done
        self.console.print(f"  step {done}/{self.steps_per_epoch}  {format_logs(logs)}",
                           markup=False, highlight=False, soft_wrap=True)
