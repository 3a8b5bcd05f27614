"""Shared fixtures: offline settings, tiny datasets in their real on-disk formats, CLI runner.

Tiny constants (a few dozen examples, small batches) keep every training test to seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

# Set before anything imports TensorFlow or looks for datasets.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TFTRAIN_OFFLINE"] = "1"  # tests never download

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(autouse=True)
def _isolated_keras_home(tmp_path, monkeypatch):
    """Each test gets its own empty Keras cache, so nothing on this machine leaks in."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A Keras-format mnist.npz: 48 train / 16 test uint8 28x28 images, labels 0..9."""
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path,
             x_train=rng.integers(0, 256, (48, 28, 28), dtype=np.uint8),
             y_train=np.arange(48, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
             y_test=np.arange(16, dtype=np.uint8) % 10)
    return path


@pytest.fixture
def tiny_images(tmp_path) -> Path:
    """An .npz of 32 train / 8 test random 32x32x3 uint8 images with CIFAR-style (N, 1) labels."""
    rng = np.random.default_rng(1)
    path = tmp_path / "images.npz"
    np.savez(path,
             x_train=rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8),
             y_train=(np.arange(32, dtype=np.uint8) % 10)[:, None],
             x_test=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
             y_test=(np.arange(8, dtype=np.uint8) % 10)[:, None])
    return path


@pytest.fixture
def cli():
    """Invoke the tftrain CLI in-process: cli("run", "cfg.yaml", ...) -> click Result;
    `callbacks=[...]`: Keras callbacks every run of that invocation adds (as tftrain.cli.main takes)."""
    from tftrain.cli import app

    runner = CliRunner()

    def invoke(*args: str, callbacks=()):
        return runner.invoke(app, [str(a) for a in args], obj={"callbacks": list(callbacks)})

    return invoke


@pytest.fixture
def write_config(tmp_path):
    """write_config(dict_or_text, name="c.yaml") -> path of a config file in tmp_path."""

    def write(content, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return write
