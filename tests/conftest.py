"""Shared fixtures: offline settings, tiny datasets in their real on-disk formats, CLI runner.

Tiny constants (a few dozen examples, small batches) keep every training test to seconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

# Set before anything imports TensorFlow or looks for datasets.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TFTRAIN_OFFLINE"] = "1"  # tests never download
# Byte code as installed packages normally have it: where the environment sets
# PYTHONDONTWRITEBYTECODE (the CI machine does), no .pyc is ever written and each of the suite's
# many tftrain subprocesses recompiles TensorFlow's Python source (a 17 s import instead of 9 s).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

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


def write_fashion_idx(folder: Path, n_train: int = 300, n_test: int = 100) -> dict[str, np.ndarray]:
    """Fashion-MNIST's four IDX files (the real format), with images a small model learns: class k
    is a bright band at rows 2k+4..2k+6 over noise; one test label in 11 is wrong on purpose, so
    there are always mistakes to show."""
    import gzip
    import struct

    rng = np.random.default_rng(3)

    def images(labels):
        x = rng.integers(0, 96, (len(labels), 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            x[i, 2 * k + 4:2 * k + 6, :] = 255
        return x

    y_train, y_test = np.arange(n_train, dtype=np.uint8) % 10, np.arange(n_test, dtype=np.uint8) % 10
    arrays = {"x_train": images(y_train), "y_train": y_train, "x_test": images(y_test), "y_test": y_test.copy()}
    flipped = np.arange(3, n_test, 11)  # one test example in 11, of every class
    arrays["y_test"][flipped] = (arrays["y_test"][flipped] + 1) % 10
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        (folder / f"{names[key]}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return arrays


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Runs trained once per session for the commands that read results (evaluate, export, report):
    fashion: a dense classifier on write_fashion_idx data (Fashion-MNIST's class names), fit loop;
    binary: logistic regression with logits, custom loop; regression: y = w*x + b, fit loop.
    Tests that change a run copy it first (shutil.copytree)."""
    from tftrain.cli import app

    root = tmp_path_factory.mktemp("tiny_runs")
    write_fashion_idx(root / "fashion")
    configs = {
        "fashion": {"name": "fashion", "seed": 0, "data": {"dataset": "fashion_mnist", "path": str(root / "fashion"),
                                                           "batch_size": 32},
                    "model": {"type": "dense", "hidden": [16]}, "loss": "sparse_categorical_crossentropy",
                    "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
                    "training": {"loop": "fit", "epochs": 3}},
        "binary": {"name": "binary", "seed": 0,
                   "data": {"dataset": "synthetic_binary", "batch_size": 8, "validation": 0.25,
                            "options": {"num_examples": 64, "std": 2.5}},
                   "model": {"type": "linear", "w_init": 0.0, "output_activation": None},
                   "loss": {"name": "binary_crossentropy", "from_logits": True},
                   "optimizer": {"name": "sgd", "learning_rate": 0.1}, "metrics": ["accuracy"],
                   "training": {"loop": "custom", "epochs": 2}},
        "regression": {"name": "regression", "seed": 0,
                       "data": {"dataset": "synthetic_regression", "batch_size": 8, "validation": 0.25,
                                "options": {"num_examples": 48, "noise": 0.5}},
                       "model": {"type": "linear"}, "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.05},
                       "metrics": ["mae"], "training": {"loop": "fit", "epochs": 3}},
    }
    runs = {}
    for key, config in configs.items():
        path = root / f"{key}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = CliRunner().invoke(app, ["run", str(path), "--runs-dir", str(root / "runs"), "--quiet"])
        assert result.exit_code == 0, result.output
        runs[key] = Path(result.stdout.strip())
    return runs
