"""Hints a finished run prints when its results look like a known trap, not like a bad model.

Batch normalization on a short run: validation and inference use BatchNormalization's moving
statistics, which start at mean 0 and variance 1 and move towards the data's by `1 - momentum`
per step. With Keras's momentum of 0.99 they need about 460 steps to forget their start, so a
run shorter than that validates through statistics that are not the data's: the training
accuracy climbs while the validation accuracy stays at chance.
"""

from __future__ import annotations

import math
from typing import Any

# The moving statistics count as settled once their start weighs less than this.
SETTLED = 0.01
# The validation value is "collapsed" when it is worse than the training one by this factor.
COLLAPSE = 2.0


def settle_steps(momentum: float) -> int:
    """Steps after which momentum**steps < SETTLED: the moving statistics are the data's."""
    return math.ceil(math.log(SETTLED) / math.log(momentum))


def _collapsed(final: dict[str, Any]) -> tuple[str, float, float] | None:
    """(name, training value, validation value) of a metric whose validation value collapsed:
    an accuracy-like one at most 1/COLLAPSE of the training one, else a loss COLLAPSE times it."""
    pairs = [(name, train, final.get(f"val_{name}")) for name, train in final.items() if not name.startswith("val_")]
    pairs = [(n, float(t), float(v)) for n, t, v in pairs if isinstance(t, (int, float)) and isinstance(v, (int, float))]
    for name, train, val in pairs:
        if "acc" in name and train > 0 and val * COLLAPSE <= train:
            return name, train, val
    for name, train, val in pairs:
        if name == "loss" and val >= COLLAPSE * max(train, 1e-3) + 1.0:
            return name, train, val
    return None


def _layers(layer):
    """A model's layers, those of models nested in it included."""
    for inner in getattr(layer, "layers", ()):
        yield inner
        yield from _layers(inner)


def batch_norm_hint(model, final: dict[str, Any], steps_done: int) -> str | None:
    """The hint for a batch-normalized model whose validation collapsed on a run too short for
    its moving statistics to settle (None: no such trap here)."""
    momenta = [layer.momentum for layer in _layers(model) if layer.__class__.__name__ == "BatchNormalization"]
    collapsed = _collapsed(final)
    if not momenta or collapsed is None:
        return None
    momentum = max(momenta)
    needed = settle_steps(momentum)
    if steps_done >= needed:
        return None
    name, train, val = collapsed
    return (f"hint: val_{name} {val:.4g} against {name} {train:.4g}: validation uses BatchNormalization's moving "
            f"statistics, which at momentum {momentum:g} take about {needed} steps to follow the data, and this "
            f"run trained {steps_done}; train longer, or lower the momentum (type cnn: model.batch_norm_momentum: "
            "0.9; layer lists: batch_normalization: {momentum: 0.9})")
