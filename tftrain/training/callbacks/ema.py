"""`optimizer.use_ema`: validation, snapshots and the final model use the exponential moving
average of the weights, as Keras intends (keras.callbacks.SwapEMAWeights for validation,
Optimizer.finalize_variable_values for the final model, called at the end of both loops).

Keras's SwapEMAWeights swaps by arithmetic (a += b; b = a - b; a -= b), which rounds: the
training weights would come back changed in their last bits after every validation. Here the
training weights are copied aside and put back exactly, so a run with EMA resumes bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras


def _optimizer(model: keras.Model):
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)  # through LossScaleOptimizer


def uses_ema(model: keras.Model) -> bool:
    """Whether the model's optimizer keeps a moving average of the weights."""
    return bool(getattr(_optimizer(model), "use_ema", False))


@contextlib.contextmanager
def ema_weights(model: keras.Model) -> Iterator[None]:
    """Within: the model's trainable weights are their moving averages; after: exactly what they
    were. Nothing happens without use_ema."""
    optimizer = _optimizer(model)
    if not uses_ema(model) or not optimizer.built:
        yield
        return
    # The same pairs Keras's SwapEMAWeights swaps (it reads these attributes too).
    pairs = list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))
    saved = [keras.ops.convert_to_numpy(variable) for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, saved):
            variable.assign(value)


class EmaValidation(keras.callbacks.Callback):
    """Validation on the moving-average weights: swapped in when validation begins, the training
    weights put back when it ends (both loops emit on_test_begin/on_test_end around it)."""

    def __init__(self):
        super().__init__()
        self._swapped: contextlib.ExitStack | None = None

    def on_test_begin(self, logs=None):
        self._swapped = contextlib.ExitStack()
        self._swapped.enter_context(ema_weights(self.model))

    def on_test_end(self, logs=None):
        if self._swapped is not None:
            self._swapped.close()
            self._swapped = None
