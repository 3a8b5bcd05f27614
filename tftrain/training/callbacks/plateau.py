"""training.reduce_lr_on_plateau: Keras's own ReduceLROnPlateau, with its state kept across a resume."""

from __future__ import annotations

from typing import Any

import keras

from tftrain.spec.training import PlateauConfig
from tftrain.training.callbacks.snapshots import monitor_mode


class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """keras.callbacks.ReduceLROnPlateau whose patience used, cooldown and best value survive a
    resume (the learning rate itself is an optimizer variable, in the resume state already).
    Keras resets them when training begins, so a restored state is put back then."""

    state_key = "reduce_lr_on_plateau"
    # It changes the learning rate at an epoch's end after every other callback has logged the
    # rate that epoch trained with (so history and TensorBoard never depend on the order).
    after_others = 1

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._restored: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, config: PlateauConfig) -> ReduceLROnPlateau:
        """The callback for `training.reduce_lr_on_plateau`. `auto` is resolved as for checkpoints:
        Keras's own guess reads the model's compiled metrics, which the custom loop never builds."""
        return cls(**{**config.model_dump(), "mode": monitor_mode(config.monitor, config.mode)})

    def get_state(self) -> dict[str, Any]:
        """Patience used, cooldown left and the best value so far."""
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter),
                "best": None if self.best is None else float(self.best)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from this state once training begins."""
        self._restored = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restored is not None:
            state = self._restored
            self.wait, self.cooldown_counter, self.best = state["wait"], state["cooldown_counter"], state["best"]

    def on_epoch_end(self, epoch, logs=None):
        # Keras adds `learning_rate` to the logs it is given; tftrain logs the rate used as `lr`.
        super().on_epoch_end(epoch, dict(logs or {}))
