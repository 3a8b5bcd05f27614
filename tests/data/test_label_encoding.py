"""Issue 32, item 1: a categorical loss (label smoothing) and mix_up / cut_mix on datasets that
store class indices. The labels are one-hot encoded in the pipeline (the number of classes is
known); evaluate and predict keep the class names; the data as stored keeps its indices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.conftest import write_fashion_idx

FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")


def _config(folder, **extra):
    from tftrain.spec.loading import validate

    raw = {"name": "onehot", "seed": 0,
           "data": {"dataset": "fashion_mnist", "path": str(folder), "batch_size": 16, "limit": 64,
                    "augmentation": [{"mix_up": {}}]},
           "model": {"type": "dense", "hidden": [16]},
           "loss": {"name": "categorical_crossentropy", "label_smoothing": 0.1},
           "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
           "training": {"epochs": 2}, **extra}
    return validate(raw)


def test_integer_labels_are_one_hot_in_every_batch_the_model_sees(tmp_path):
    """Training batches carry mixed one-hot rows (a pure function of seed and step), validation
    and evaluation batches exact one-hot rows of the stored indices; the model gets one output
    per class; the stored labels stay indices."""
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import build_pipelines, evaluation_arrays, evaluation_batches
    from tftrain.data.pipeline.transforms import training_transform
    from tftrain.models import model_spec
    from tftrain.training.data_checks import check_data

    write_fashion_idx(tmp_path / "fashion", n_train=64, n_test=32)
    config = _config(tmp_path / "fashion")
    data = load_data(config, 0)
    check_data(config, data)  # before: "expects one-hot labels of shape (N, classes)"
    assert model_spec(config, data).outputs == 10 and data.y_train.ndim == 1
    transform = training_transform(config, [("MixUp", {})], None, 0)
    pipes = build_pipelines(data, config, 0, transform)
    _, y = next(iter(pipes.train(0)))
    assert y.shape == (16, 10) and np.allclose(y.numpy().sum(axis=1), 1.0)
    assert not set(np.unique(y.numpy())) <= {0.0, 1.0}  # mixed
    _, again = next(iter(pipes.train(0)))
    assert np.array_equal(y.numpy(), again.numpy())
    (_, val), = pipes.validation.take(1)
    assert np.array_equal(val.numpy(), np.eye(10, dtype=np.float32)[data.y_test[:16]])
    (_, evaluated), = evaluation_batches(data, config, 0).batches.take(1)
    assert np.array_equal(evaluated.numpy(), val.numpy())
    assert evaluation_arrays(data, config, 0, 32).y.shape == (32, 10)


def test_streamed_image_folder_labels_are_one_hot_too(tmp_path):
    from tests.data.test_datasets import write_image_folder
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import build_pipelines
    from tftrain.spec.loading import validate
    from tftrain.training.data_checks import check_data

    write_image_folder(tmp_path / "train", classes=("cat", "dog", "fox"))
    config = validate({"data": {"dataset": "image_folder", "path": str(tmp_path / "train"), "batch_size": 4,
                                "validation": 0.25, "in_memory_max_mb": 0, "options": {"image_size": [10, 12]}},
                       "model": {"type": "cnn", "conv": [4]}, "loss": {"name": "categorical_crossentropy", "from_logits": True}})
    data = load_data(config, 0)
    check_data(config, data)
    pipes = build_pipelines(data, config, 0)
    _, y = next(iter(pipes.train(0)))
    assert y.shape[1:] == (3,) and set(np.unique(y.numpy())) == {0.0, 1.0}


def test_label_smoothing_and_mix_up_train_on_fashion_mnist_and_evaluate_keeps_class_names(tmp_path, cli):
    write_fashion_idx(tmp_path / "fashion", n_train=64, n_test=32)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path / "fashion").model_dump(mode="json")))
    result = cli("run", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = result.stdout.strip()
    report = json.loads(cli("evaluate", run, "--json").stdout)
    assert tuple(report["classes"]) == FASHION_NAMES
    assert report["examples"] == 32 and 0.0 <= report["metrics"]["accuracy"] <= 1.0
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), np.uint8))
    predicted = json.loads(cli("predict", run, tmp_path / "x.npy", "--json").stdout)
    assert {p["label"] for p in predicted["predictions"]} <= set(FASHION_NAMES)


@pytest.mark.parametrize("patch, message", [
    ({"loss": "sparse_categorical_crossentropy"},
     "loss sparse_categorical_crossentropy takes class indices: use loss categorical_crossentropy, which one-hot "
     "encodes integer labels in the pipeline"),
    ({"loss": {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1}, "data": {"augmentation": []}},
     "use categorical_crossentropy (integer class labels are then one-hot encoded in the pipeline)"),
])
def test_the_sparse_loss_points_at_the_categorical_one(cli, write_config, tmp_path, patch, message):
    raw = _config(tmp_path).model_dump(mode="json")
    raw.update(patch)
    if "data" in patch:
        raw["data"] = {**_config(tmp_path).model_dump(mode="json")["data"], **patch["data"]}
    result = cli("validate", write_config(raw))
    assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_a_run_mixing_encoded_labels_resumes_bit_identical(tmp_path, loop):
    """SIGTERM mid-epoch (a real signal, after step 5 of 8), resume: the same weights and history
    as a run that never stopped; the one-hot encoding and the mixing are pure functions of the step."""
    import os
    import signal

    from rich.console import Console

    from tests.resume.test_resume import AtStep, assert_identical
    from tftrain.errors import TrainingInterrupted
    from tftrain.spec.loading import validate
    from tftrain.training.session import resume_training, run_training

    write_fashion_idx(tmp_path / "fashion", n_train=64, n_test=32)
    raw = _config(tmp_path / "fashion").model_dump(mode="json")
    raw.update(deterministic=True, training={**raw["training"], "loop": loop, "checkpoint": {"every_steps": 2},
                                                 "steps_per_execution": 1})  # AtStep(5) ends a call
    config, quiet = validate(raw), Console(stderr=True, quiet=True)
    base = run_training(config, tmp_path / "base", console=quiet).path
    with pytest.raises(TrainingInterrupted):
        run_training(config, tmp_path / "stopped", console=quiet,
                     callbacks=[AtStep(5, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    (stopped,) = (tmp_path / "stopped").iterdir()
    resume_training(stopped, console=quiet)
    assert_identical(stopped, base)
