"""A batch-normalized model keeps the exact-resume promise and runs under `mirrored` (issue 15).

- SIGKILLed at a random mid-epoch step (a real process, paced: the kill lands at that step) and
  resumed: history, weights and resume state bit-identical to an uninterrupted run, batch-norm
  moving statistics included, for both loops;
- the residual graph with synchronized batch normalization on two logical CPUs trains what one
  device trains.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from tests.kit import (
    MID_EPOCH_KILLS,
    STEPS_PER_EPOCH,
    Child,
    InProcess,
    assert_identical,
    child_env,
    mirrored_beside_one_device,
)

EPOCHS = 2
_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))


def _images(root: Path) -> Path:
    """48 random 8x8x3 images (36 train, 12 validation: 9 steps of 4 per epoch, as test_resume)."""
    rng = np.random.default_rng(11)
    path = root / "bn.npz"
    np.savez(path, x_train=rng.integers(0, 256, (48, 8, 8, 3), dtype=np.uint8), y_train=np.arange(48) % 2)
    return path


def _bn_config(data: Path, loop: str) -> dict:
    return {
        "name": f"bn-{loop}", "seed": 7, "deterministic": True,
        "data": {"dataset": "npz", "path": str(data), "batch_size": 4, "validation": 0.25},
        # Batch normalization (moving statistics) and dropout (RNG state): both must resume exactly.
        "model": {"type": "sequential", "layers": [
            {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False}},
            {"batch_normalization": {"momentum": 0.9}}, {"activation": "relu"}, {"dropout": 0.25},
            "global_average_pooling2d", {"dense": 2}]},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": EPOCHS, "checkpoint": {"every_steps": 4},
                     "steps_per_execution": 1},  # killed after a chosen step: one step per call
    }


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_batch_norm_model_sigkilled_mid_epoch_resumes_bit_identical(tmp_path, loop):
    at = _RNG.choice([k for k in MID_EPOCH_KILLS if k < EPOCHS * STEPS_PER_EPOCH])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_bn_config(_images(tmp_path), loop)))
    env = child_env(tmp_path)
    killed = Child(["run", "--runs-dir", "runs", "c.yaml"], tmp_path, env, paced=True, at=at, signal=signal.SIGKILL)
    base = InProcess(["run", "--runs-dir", "base", "c.yaml"], tmp_path)  # meanwhile, the uninterrupted run
    assert killed.wait() == -9, killed
    assert base.exit_code == 0, base
    run = killed.run_dir(tmp_path)
    resumed = InProcess(["run", "--resume", run], tmp_path)
    assert resumed.exit_code == 0, resumed
    assert any(line.startswith("resuming from epoch ") and not line.endswith(", step 0") for line in resumed.lines)
    baseline = base.run_dir(tmp_path)
    assert_identical(run, baseline)
    bn = keras.saving.load_model(run / "model.keras").get_layer("batch_normalization")
    assert not np.allclose(keras.ops.convert_to_numpy(bn.moving_mean), 0.0)  # the statistics did move


def test_residual_graph_with_synchronized_batch_norm_on_two_cpus_matches_one_device(tmp_path, write_config):

    from tftrain.runs import RunDir

    rng = np.random.default_rng(12)
    data = tmp_path / "images.npz"
    np.savez(data, x_train=rng.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8), y_train=np.arange(32) % 4,
             x_test=rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8), y_test=np.arange(8) % 4)
    model = {"type": "graph", "nodes": [
        {"name": "stem", "layer": {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same"}}},
        {"name": "block", "repeat": 2, "nodes": [
            {"name": "conv", "layer": {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False}}},
            {"name": "bn", "layer": {"batch_normalization": {"synchronized": True}}},  # statistics of the global batch
            {"name": "add", "layer": "add", "inputs": ["input", "bn"]}]},
        {"name": "pool", "layer": "global_average_pooling2d"}, {"name": "out", "layer": {"dense": 4}}]}
    config = write_config({"name": "mirrored", "seed": 1, "data": {"dataset": "npz", "path": str(data), "batch_size": 8},
                           "model": model, "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                           "optimizer": {"name": "adam", "learning_rate": 0.01},
                           "training": {"epochs": 2, "loop": "custom"}})
    mirrored, single = mirrored_beside_one_device(config, tmp_path)
    got, want = RunDir.open(mirrored).history(), RunDir.open(single).history()
    assert len(got) == len(want) == 2
    for a, b in zip(got, want):
        assert {k: float(v) for k, v in a.items()} == pytest.approx({k: float(v) for k, v in b.items()}, rel=1e-4)
