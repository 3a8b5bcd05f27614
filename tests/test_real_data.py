"""Integration test on the real Fashion-MNIST, as Debian's `dataset-fashion-mnist` installs it.

CI installs the package (`apt-get install dataset-fashion-mnist`, about 30 MB); elsewhere the test
is skipped, saying why, when the files are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tftrain.data import fashion_mnist, idx

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SYSTEM_DIR = fashion_mnist.SYSTEM_DIR

requires_fashion_mnist = pytest.mark.skipif(
    len(idx.find_files(SYSTEM_DIR)) < len(idx.FILES),
    reason=f"real Fashion-MNIST not installed in {SYSTEM_DIR} (apt-get install dataset-fashion-mnist)")


@requires_fashion_mnist
def test_dense_model_reaches_80_percent_test_accuracy_in_one_epoch(cli, tmp_path):
    result = cli("run", CONFIGS / "fashion_mnist_dense.yaml", "--runs-dir", tmp_path,
                 "--set", f"data.path={SYSTEM_DIR}", "--set", "training.epochs=1",
                 "--set", "data.batch_size=128")  # 469 steps: a few seconds on a CPU
    assert result.exit_code == 0, result.output
    summary = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["data"]["train"] == {"x_shape": [60000, 28, 28], "x_dtype": "uint8",
                                        "y_shape": [60000], "y_dtype": "int32"}
    assert summary["data"]["test"]["x_shape"] == [10000, 28, 28]
    assert summary["data"]["validation"] == "test"  # so val_accuracy is the test accuracy
    assert summary["final"]["val_accuracy"] > 0.80, summary["final"]
