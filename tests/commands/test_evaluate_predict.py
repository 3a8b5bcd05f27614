"""Issue 32, item 7: evaluate says which model it used and defaults to the best one where the run
tracked a monitor; `evaluate --data CONFIG_OR_PATH` evaluates on other data of the same kind;
`predict --top-k K` and `--probabilities` give more than the top class."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from tests.conftest import write_fashion_idx
from tests.data.test_label_encoding import FASHION_NAMES


@pytest.fixture
def fashion(tiny_runs, tmp_path):
    run = tmp_path / tiny_runs["fashion"].name
    shutil.copytree(tiny_runs["fashion"], run)
    return run


def test_evaluate_defaults_to_the_best_model_and_says_so(cli, fashion):
    best = json.loads((fashion / "summary.json").read_text())["best"]
    result = cli("evaluate", fashion, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "checkpoints/best.keras"
    assert (f"model: checkpoints/best.keras (the best val_loss, {best['value']:.6g} at epoch {best['epoch']}; "
            "--checkpoint last for the last weights)") in result.stderr
    (fashion / "checkpoints" / "best.keras").unlink()  # no best model kept: the last one
    result = cli("evaluate", fashion, "--json")
    assert json.loads(result.stdout)["model"] == "checkpoints/last.keras"
    assert "model: checkpoints/last.keras (the last weights" in result.stderr


def test_evaluate_on_other_data_by_path_or_config_leaves_the_runs_own_evaluation(cli, fashion, tmp_path):
    own = json.loads(cli("evaluate", fashion, "--json").stdout)
    write_fashion_idx(tmp_path / "other", n_train=20, n_test=30)
    result = cli("evaluate", fashion, "--data", tmp_path / "other", "--json")
    assert result.exit_code == 0, result.output
    other = json.loads(result.stdout)
    assert other["examples"] == 30 and other["data"] == str(tmp_path / "other") and other["classes"] == list(FASHION_NAMES)
    assert json.loads((fashion / "eval-other.json").read_text())["examples"] == 30
    assert json.loads((fashion / "eval.json").read_text())["examples"] == own["examples"] == 100
    assert (fashion / "plots" / "other" / "confusion_matrix.png").is_file()
    config = tmp_path / "train-split.yaml"
    config.write_text(yaml.safe_dump({"data": {"dataset": "fashion_mnist", "path": str(tmp_path / "other"),
                                               "validation": 0.5}}))
    by_config = json.loads(cli("evaluate", fashion, "--data", config, "--json").stdout)
    assert by_config["examples"] == 30 and by_config["split"] == "test"


def test_evaluate_refuses_other_data_the_model_cannot_read(cli, fashion, tmp_path, tiny_images):
    config = tmp_path / "cifar-like.yaml"
    config.write_text(yaml.safe_dump({"data": {"dataset": "npz", "path": str(tiny_images)}}))
    result = cli("evaluate", fashion, "--data", config)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(f"--data: {config} has examples of shape (32, 32, 3), but the model takes "
                                          "(28, 28)"), result.stderr
    assert not (fashion / "eval-cifar-like.json").exists()


def test_predict_top_k_and_probabilities(cli, fashion, tiny_runs, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8))
    result = cli("predict", fashion, tmp_path / "x.npy", "--top-k", "3", "--probabilities", "--json")
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["predictions"]:
        top = row["top_k"]
        assert len(top) == 3 and top[0]["class"] == row["class"] and top[0]["label"] == row["label"]
        assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
        assert list(row["probabilities"]) == list(FASHION_NAMES)
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["probabilities"][top[1]["label"]] == pytest.approx(top[1]["probability"])
    table = cli("predict", fashion, tmp_path / "x.npy", "--top-k", "2")
    assert table.exit_code == 0 and "top_k" in table.stdout
    np.save(tmp_path / "v.npy", np.zeros((2, 1), np.float32))
    refused = cli("predict", tiny_runs["regression"], tmp_path / "v.npy", "--top-k", "2")
    assert refused.exit_code == 2
    assert "--top-k: ranks the classes of a classifier; this run's model gives values" in refused.stderr
