"""Text (issue 28): `text_folder` (one sub-folder per class, one example a file) through
TextVectorization inside the model.

- an embedding + conv1d classifier from YAML reaches >= 0.9 validation accuracy on a folder the
  test writes, and its SavedModel, loaded in another process without tftrain, classifies raw
  strings exactly as `tftrain predict` does on the same texts as .txt files;
- every output mode (multi_hot, count, tf_idf with bigrams) trains a dense model;
- kill -9 mid-epoch and resume: bit-identical, both loops;
- bad input: an empty file, a class folder without texts, bytes that are not the encoding.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.kit import EPOCHS, MID_EPOCH_KILLS, Child, InProcess, assert_identical, child_env, run_refused

_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))
POSITIVE = ["great", "wonderful", "loved", "superb", "delightful", "excellent"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull", "worst"]
FILLER = ["the", "movie", "plot", "actor", "scene", "was", "and", "a", "story", "film", "it", "very"]


def write_text_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    """root/neg/*.txt and root/pos/*.txt: filler words and two words of the class's sentiment,
    one in eight texts with a word of the other class too (so it is not trivially separable)."""
    rng = np.random.default_rng(seed)
    for label, own, other in (("neg", NEGATIVE, POSITIVE), ("pos", POSITIVE, NEGATIVE)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            words = list(rng.choice(FILLER, 8)) + list(rng.choice(own, 2))
            if i % 8 == 0:
                words.append(str(rng.choice(other)))
            rng.shuffle(words)
            (root / label / f"{i:03d}.txt").write_text(" ".join(words).capitalize() + ".\n")
    return root


def cnn_config(folder: Path, loop: str = "fit", **training) -> dict:
    return {
        "name": f"text-{loop}", "seed": 0, "deterministic": True,
        "data": {"dataset": "text_folder", "path": str(folder), "batch_size": 16, "validation": 0.25,
                 "options": {"max_tokens": 64, "output_mode": "int", "sequence_length": 16}},
        "model": {"type": "sequential", "layers": [
            {"embedding": {"input_dim": 64, "output_dim": 8}},
            {"conv1d": {"filters": 8, "kernel_size": 3, "activation": "relu"}},
            "global_max_pooling1d", {"dropout": 0.25}, {"dense": 2}]},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": 12, **training},
    }


SERVE = """
import json, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.loads(sys.argv[2])
out = serve(inputs=tf.constant([[t] for t in texts]))
print(json.dumps({"class": out["class"].numpy().tolist(), "p": out["probabilities"].numpy().max(axis=1).tolist()}))
"""


def test_text_cnn_reaches_090_and_its_saved_model_classifies_raw_strings_as_predict(cli, write_config, tmp_path):
    folder = write_text_folder(tmp_path / "texts", per_class=80)
    result = cli("run", write_config(cnn_config(folder)), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["val_accuracy"] >= 0.9, summary["final"]
    assert summary["data"]["preprocessing"]["columns"]["text"]["type"] == "text"
    texts = ["What a superb, delightful film!", "Dull and boring; the worst plot.", "The actor was very",
             "An unseen zebra word and EXCELLENT"]
    files = []
    for i, text in enumerate(texts):
        files.append(tmp_path / f"t{i}.txt")
        files[-1].write_text(text)
    predicted = cli("predict", run, *files, "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert [r["label"] for r in rows[:2]] == ["pos", "neg"]
    assert cli("export", run, "--format", "saved_model").exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    served = subprocess.run([sys.executable, "-c", SERVE, str(run / "export" / "saved_model"), json.dumps(texts)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["class"] == [r["class"] for r in rows]
    assert answer["p"] == pytest.approx([r["probability"] for r in rows], rel=1e-5)


@pytest.mark.parametrize("mode, ngrams", [("multi_hot", None), ("count", None), ("tf_idf", 2)])
def test_bag_of_words_modes_train_a_dense_model(cli, write_config, tmp_path, mode, ngrams):
    folder = write_text_folder(tmp_path / "texts", per_class=40)
    config = {"seed": 0, "data": {"dataset": "text_folder", "path": str(folder), "batch_size": 16, "validation": 0.25,
                                  "options": {"max_tokens": 200, "output_mode": mode, "ngrams": ngrams}},
              "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
              "optimizer": {"name": "adam", "learning_rate": 0.02}, "metrics": ["accuracy"],
              "training": {"epochs": 8}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((Path(result.output.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["final"]["val_accuracy"] >= 0.85, (mode, summary["final"])


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_text_model_sigkilled_mid_epoch_resumes_bit_identical(tmp_path, loop):
    at = _RNG.choice(MID_EPOCH_KILLS)
    folder = write_text_folder(tmp_path / "texts", per_class=24)  # 48 texts: 36 train, 9 steps of 4
    config = cnn_config(folder, loop, epochs=EPOCHS, checkpoint={"every_steps": 4}, steps_per_execution=1)
    config["data"]["batch_size"] = 4
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = child_env(tmp_path)
    killed = Child(["run", "--runs-dir", "runs", "c.yaml"], tmp_path, env, paced=True, at=at, signal=signal.SIGKILL)
    base = InProcess(["run", "--runs-dir", "base", "c.yaml"], tmp_path)
    assert killed.wait() == -9, killed
    assert base.exit_code == 0, base
    run = killed.run_dir(tmp_path)
    resumed = InProcess(["run", "--resume", run], tmp_path)
    assert resumed.exit_code == 0, resumed
    assert any(line.startswith("resuming from epoch ") and not line.endswith(", step 0") for line in resumed.lines)
    assert_identical(run, base.run_dir(tmp_path))



def test_bad_text_folders_are_one_line_and_write_nothing(cli, write_config, tmp_path):
    folder = write_text_folder(tmp_path / "texts", per_class=4)
    config = write_config({"data": {"dataset": "text_folder", "path": str(folder), "validation": "none"},
                           "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy"})
    (folder / "pos" / "empty.txt").write_text("  \n")
    assert f"{folder / 'pos' / 'empty.txt'}: an empty text file" in run_refused(cli, tmp_path, config)
    (folder / "pos" / "empty.txt").write_bytes(b"caf\xe9 au lait")
    assert f"{folder / 'pos' / 'empty.txt'}: byte 3 (b'\\xe9') is not utf-8 text" in run_refused(cli, tmp_path, config)
    (folder / "pos" / "empty.txt").unlink()
    (folder / "maybe").mkdir()
    assert f"{folder / 'maybe'}: no .txt files in this class folder" in run_refused(cli, tmp_path, config)


def test_sequence_length_needs_int_mode(cli, write_config, tmp_path):
    config = write_config({"data": {"dataset": "text_folder", "path": str(tmp_path),
                                    "options": {"output_mode": "tf_idf", "sequence_length": 10}},
                           "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy"})
    assert "sequence_length applies to output_mode: int" in run_refused(cli, tmp_path, config)
