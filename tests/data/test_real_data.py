"""Integration test on the real Fashion-MNIST, as Debian's `dataset-fashion-mnist` installs it.

CI installs the package (`apt-get install dataset-fashion-mnist`, about 30 MB); elsewhere the test
is skipped, saying why, when the files are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CONFIGS  # noqa: E402
from tftrain.data.images import fashion_mnist, idx

SYSTEM_DIR = fashion_mnist.SYSTEM_DIR

requires_fashion_mnist = pytest.mark.skipif(
    len(idx.find_files(SYSTEM_DIR)) < len(idx.FILES),
    reason=f"real Fashion-MNIST not installed in {SYSTEM_DIR} (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory) -> Path:
    """configs/fashion_mnist_dense.yaml on the real data, one epoch (469 steps: a few seconds on a CPU)."""
    from typer.testing import CliRunner

    from tftrain.cli import app

    result = CliRunner().invoke(app, [
        "run", str(CONFIGS / "fashion_mnist_dense.yaml"), "--runs-dir", str(tmp_path_factory.mktemp("real")),
        "--set", f"data.path={SYSTEM_DIR}", "--set", "training.epochs=1", "--set", "data.batch_size=128"])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@requires_fashion_mnist
def test_dense_model_reaches_80_percent_test_accuracy_in_one_epoch(fashion_run):
    summary = json.loads((fashion_run / "summary.json").read_text())
    assert summary["data"]["train"] == {"x_shape": [60000, 28, 28], "x_dtype": "uint8",
                                        "y_shape": [60000], "y_dtype": "int32"}
    assert summary["data"]["test"]["x_shape"] == [10000, 28, 28]
    assert summary["data"]["validation"] == "test"  # so val_accuracy is the test accuracy
    assert summary["final"]["val_accuracy"] > 0.80, summary["final"]


@requires_fashion_mnist
def test_int8_tflite_stays_within_one_point_of_keras_accuracy(cli, fashion_run, tmp_path):
    """Calibrated on 300 training images, run in LiteRT on all 10,000 test images (issue 20)."""
    result = cli("export", fashion_run, "--format", "tflite", "--quantize", "int8",
                 "--output", tmp_path / "int8.tflite", "--json")
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["verification"]
    assert check["examples"] == 10_000 and check["quality"] == "accuracy"
    assert abs(check["exported_quality"] - check["keras_quality"]) <= 0.01, check
    assert check["exported_bytes"] < check["keras_bytes"] / 4
