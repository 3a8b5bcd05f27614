"""`training.unfreeze`: the backbone trains from epoch `epoch` on (tftrain.spec.training).

Which variables train is a pure function of the epoch, applied at each epoch's start, so a
resumed run (at any step, before or after the switch) trains exactly what the uninterrupted
one did; the learning rate is set at the switch's own epoch only, and from then on lives in the
optimizer's variables, which the resume state carries. The optimizer was built over every
variable that will ever train (tftrain.training.prepare), so its slots exist from the start
and the resume state has the same shape before and after the switch.
"""

from __future__ import annotations

import keras

from tftrain.spec.training import UnfreezeConfig


class Unfreeze(keras.callbacks.Callback):
    """Switch `model`'s backbone to training at epoch `config.epoch` (1-based)."""

    def __init__(self, config: UnfreezeConfig, set_stage):
        super().__init__()
        self.first = config.epoch - 1  # Keras counts epochs from 0
        self.learning_rate = config.learning_rate
        self.set_stage = set_stage  # (model, unfrozen) -> None: the model type's own
        self.unfrozen = False

    def on_epoch_begin(self, epoch, logs=None):
        unfrozen = epoch >= self.first
        if unfrozen != self.unfrozen:
            self.set_stage(self.model, unfrozen)
            self.unfrozen = unfrozen
            # model.fit traced its step with the variables that trained then: trace it again
            # (the custom loop sees the change itself, tftrain.training.custom).
            self.model.make_train_function(force=True)
        if epoch == self.first and self.learning_rate is not None:
            self.model.optimizer.learning_rate = self.learning_rate
