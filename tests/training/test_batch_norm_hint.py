"""Issue 32, item 8: a batch-normalized model whose validation collapses on a run too short for
BatchNormalization's moving statistics gets a one-line hint, and `type: cnn` exposes their
momentum."""

from __future__ import annotations

import io
import json

import keras
import pytest
from rich.console import Console


def _cnn(momentum=None):
    from tftrain.models import ModelSpec
    from tftrain.spec.loading import validate

    model = {"type": "cnn", "conv": [4], "dense": [], "batch_norm": True}
    if momentum is not None:
        model["batch_norm_momentum"] = momentum
    config = validate({"data": {"dataset": "npz", "path": "unused.npz"}, "model": model,
                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}})
    return config.model.build(ModelSpec((8, 8, 3), 1 / 255, 3, "float32", "npz", "classes"))


def test_cnn_takes_a_batch_norm_momentum():
    momenta = [layer.momentum for layer in _cnn(0.9).layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert momenta == [0.9]
    assert [layer.momentum for layer in _cnn().layers if isinstance(layer, keras.layers.BatchNormalization)] == [0.99]


@pytest.mark.parametrize("final, steps, momentum, hinted", [
    ({"loss": 0.3, "accuracy": 0.9, "val_loss": 2.5, "val_accuracy": 0.1}, 120, None, True),  # collapsed, short
    ({"loss": 0.3, "accuracy": 0.9, "val_loss": 2.5, "val_accuracy": 0.1}, 500, None, False),  # settled by now
    ({"loss": 0.3, "accuracy": 0.9, "val_loss": 2.5, "val_accuracy": 0.1}, 120, 0.9, False),  # 44 steps settle 0.9
    ({"loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.85}, 120, None, False),  # no collapse
])
def test_the_hint_names_the_trap_only_where_it_is_one(final, steps, momentum, hinted):
    from tftrain.training.hints import batch_norm_hint, settle_steps

    assert settle_steps(0.99) == 459 and settle_steps(0.9) == 44
    hint = batch_norm_hint(_cnn(momentum), final, steps)
    if not hinted:
        assert hint is None
        return
    assert hint == ("hint: val_accuracy 0.1 against accuracy 0.9: validation uses BatchNormalization's moving "
                    "statistics, which at momentum 0.99 take about 459 steps to follow the data, and this run "
                    "trained 120; train longer, or lower the momentum (type cnn: model.batch_norm_momentum: 0.9; "
                    "layer lists: batch_normalization: {momentum: 0.9})")


def test_a_short_batch_normalized_run_that_collapses_prints_the_hint(tmp_path):
    """Images whose brightness is the class: after a few steps the training batches (normalized by
    their own statistics) are learned, while validation through the unsettled moving statistics
    is at chance; the run ends with the hint."""
    import numpy as np

    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    rng = np.random.default_rng(0)
    y = np.arange(96) % 2
    x = (rng.integers(0, 40, (96, 8, 8, 3)) + 200 * y[:, None, None, None]).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    raw = {"name": "bn", "seed": 1, "deterministic": True, "data": {"dataset": "npz", "path": str(tmp_path / "d.npz"), "batch_size": 16},
           "model": {"type": "cnn", "conv": [4], "dense": [], "batch_norm": True},
           "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
           "optimizer": {"name": "adam", "learning_rate": 0.05}, "metrics": ["accuracy"], "training": {"epochs": 3}}
    out = io.StringIO()
    run = run_training(validate(raw), tmp_path / "runs", console=Console(file=out, width=200))
    final = json.loads((run.path / "summary.json").read_text())["final"]
    assert final["accuracy"] == 1.0 and final["val_accuracy"] == 0.5  # 12 steps: learned, validated at chance
    assert "hint: val_accuracy 0.5 against accuracy 1: validation uses BatchNormalization's" in out.getvalue()
    raw["model"]["batch_norm_momentum"] = 0.5  # settles in 7 steps: no trap, no hint
    out = io.StringIO()
    run_training(validate(raw), tmp_path / "runs", console=Console(file=out, width=200))
    assert "hint:" not in out.getvalue()
