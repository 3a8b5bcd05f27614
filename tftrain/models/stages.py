"""`training.unfreeze`: train the head first (the backbone frozen by `model.trainable`), then,
from epoch `epoch` on, the whole backbone too at `learning_rate` (Keras's transfer-learning
guide: train the new head, then fine-tune everything at a low rate).

The schema and its cross-key checks, TF-free (`tftrain validate` runs them); the callback that
switches the stage is tftrain.training.callbacks.unfreeze.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, PositiveFloat

from tftrain.schema import MAX_EPOCHS, Strict, show

if TYPE_CHECKING:
    from tftrain.config import Config


class UnfreezeConfig(Strict):
    """From epoch `epoch` (counted from 1, as the progress shows) the backbone trains too."""

    epoch: int = Field(ge=2, le=MAX_EPOCHS)  # no default: how long the head trains alone is the user's choice
    learning_rate: PositiveFloat | None = None  # null: the optimizer's rate goes on; fine-tuning usually wants ~10x less


def unfreeze_problem(config: Config) -> str | None:
    """training.unfreeze against the rest of the config: a frozen backbone to unfreeze, an epoch
    the run reaches, a learning rate that no schedule also sets."""
    unfreeze, model = config.training.unfreeze, config.model
    if unfreeze is None:
        return None
    trainable = getattr(model, "trainable", None)
    if model.type not in ("application", "hub"):
        return (f"training.unfreeze: model.type {model.type} has no pretrained backbone to unfreeze "
                "(application and hub do)")
    if getattr(model, "lora", None) is not None:
        return ("training.unfreeze: cannot be combined with model.lora, which keeps the backbone frozen "
                "and trains adapters instead")
    if trainable is True:
        return ("training.unfreeze: the backbone already trains from the start (model.trainable: true); set "
                "model.trainable: false (or N, its last N layers) to train the head first")
    if config.training.steps is not None:
        return "training.unfreeze: counts epochs; the run trains training.steps (use training.epochs)"
    if unfreeze.epoch > config.training.epochs:
        return (f"training.unfreeze.epoch: {unfreeze.epoch} is past the last epoch ({config.training.epochs}): "
                "the backbone would never train")
    if unfreeze.learning_rate is not None and config.optimizer.scheduled:
        return (f"training.unfreeze.learning_rate: {show(unfreeze.learning_rate)} cannot be combined with a "
                f"learning-rate schedule ({config.optimizer.learning_rate.schedule}): both would set the rate")
    return None
