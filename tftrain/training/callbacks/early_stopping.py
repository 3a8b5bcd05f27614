"""training.early_stopping: Keras's own EarlyStopping, with its state kept across a resume."""

from __future__ import annotations

from typing import Any

import keras

from tftrain.spec.catalog import monitor_mode
from tftrain.training.callbacks.ema import ema_weights


class EarlyStopping(keras.callbacks.EarlyStopping):
    """keras.callbacks.EarlyStopping whose patience used, best value and best weights survive
    a resume. Keras resets them when training begins, so a restored state is put back then."""

    state_key = "early_stopping"

    def __init__(self, **kwargs: Any):
        # mode auto: tftrain's reading of the name (the checkpoint's too), which also knows a
        # several-output run's names (val_species_accuracy) that Keras cannot tell a direction for.
        kwargs["mode"] = monitor_mode(kwargs["monitor"], kwargs.get("mode", "auto"))
        super().__init__(**kwargs)
        self._restored: dict[str, Any] | None = None

    def get_state(self) -> dict[str, Any]:
        """Patience used, best value and epoch, the stopping epoch and the best weights."""
        return {"wait": int(self.wait), "best": None if self.best is None else float(self.best),
                "best_epoch": int(self.best_epoch), "stopped_epoch": int(self.stopped_epoch),
                "best_weights": None if self.best_weights is None else list(self.best_weights)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from this state once training begins."""
        self._restored = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restored is not None:
            state = self._restored
            self.wait, self.best, self.best_epoch, self.stopped_epoch = (
                state["wait"], state["best"], state["best_epoch"], state["stopped_epoch"])
            self.best_weights = state["best_weights"]

    def on_epoch_end(self, epoch, logs=None):
        with ema_weights(self.model):  # with use_ema, the best weights kept are the averaged ones
            super().on_epoch_end(epoch, logs)
