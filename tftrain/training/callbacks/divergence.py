"""Stop at the first NaN or infinite loss (the run is then `diverged`)."""

from __future__ import annotations

import keras
import numpy as np


class DivergenceCallback(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and remembers the step."""

    def __init__(self):
        super().__init__()
        self.diverged_at_step: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            # The training step (batch), counted as everywhere in tftrain; optimizer.iterations
            # counts weight updates, fewer under gradient accumulation.
            self.diverged_at_step = self._epoch * self.params["steps"] + batch + 1
            self.model.stop_training = True
