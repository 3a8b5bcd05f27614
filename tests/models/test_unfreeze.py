"""`training.unfreeze`: the head trains alone, then from the given epoch the backbone too, at
its own learning rate (hub presets and application backbones); kill -9 on either side of the
switch resumes bit-identical in both loops; one-line errors for configs it cannot apply to."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.kit import killed_resumed_and_baseline
from tests.models.test_hub import run_dir, text_config, write_bert_preset, write_reviews

pytest.importorskip("keras_hub")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return write_bert_preset(tmp_path_factory.mktemp("presets") / "bert_tiny")


@pytest.fixture
def reviews(tmp_path):
    return write_reviews(tmp_path / "reviews.npz")


class EpochWeights(keras.callbacks.Callback):
    """Every weight of the model at each epoch's start and at the end, by path."""

    def on_train_begin(self, logs=None):
        self.at = []

    def on_epoch_begin(self, epoch, logs=None):
        self.at.append({w.path: np.array(w) for w in self.model.weights})

    def on_train_end(self, logs=None):
        self.at.append({w.path: np.array(w) for w in self.model.weights})


def changed(before: dict, after: dict) -> set[str]:
    return {path for path in before if not np.array_equal(before[path], after[path])}


def staged(preset, data, loop="fit", trainable=False):
    config = text_config(preset, data, trainable=trainable)
    config["training"] = {"loop": loop, "epochs": 3, "unfreeze": {"epoch": 2, "learning_rate": 0.001}}
    return config


@pytest.mark.parametrize(("loop", "kill_at"), [("fit", 5), ("custom", 9)])
def test_head_trains_first_then_the_backbone_at_its_rate_and_kill_9_either_side_resumes(tmp_path, bert, reviews,
                                                                                        loop, kill_at):
    """The uninterrupted run, watched: epoch 1 trains the head alone, then the backbone too at
    its own rate. 6 steps an epoch, a checkpoint every 2: killed at step 5 resumes in epoch 1 and
    switches after the resume; killed at step 9 resumes in epoch 2, after the switch; either
    ends bit-identical to the uninterrupted run."""
    from tests.kit import assert_identical

    config = staged(bert, reviews, loop)
    config["model"]["sequence_length"] = 8
    config["training"]["checkpoint"] = {"every_steps": 2}
    watch = EpochWeights()
    resumed, baseline = killed_resumed_and_baseline(tmp_path / loop, config, kill_at, callbacks=[watch])
    run = baseline.run_dir(tmp_path / loop)
    assert_identical(resumed, run)
    first, second = changed(watch.at[0], watch.at[1]), changed(watch.at[1], watch.at[2])
    assert first == {"logits/kernel", "logits/bias"}  # epoch 1: the head alone
    assert "logits/kernel" in second
    assert any("embedding" in path for path in second), sorted(second)
    assert any("transformer_layer_0" in path for path in second)
    rates = np.genfromtxt(run / "history.csv", delimiter=",", names=True)["lr"]
    np.testing.assert_allclose(rates, [0.01, 0.001, 0.001], rtol=1e-6)


def test_last_n_layers_then_everything(cli, write_config, tmp_path, bert, reviews):
    watch = EpochWeights()
    run_dir(cli("run", write_config(staged(bert, reviews, trainable=1)), "--runs-dir", tmp_path / "runs",
                callbacks=[watch]))
    first = changed(watch.at[0], watch.at[1])
    assert first == {"logits/kernel", "logits/bias", "pooled_dense/kernel", "pooled_dense/bias"}  # the last layer
    second = changed(watch.at[1], watch.at[2])
    assert any("transformer_layer_1" in path for path in second), sorted(second)


def test_application_backbone_unfreezes_without_its_batch_norm(cli, write_config, tmp_path, tiny_images):
    config = {
        "seed": 1, "data": {"dataset": "npz", "path": str(tiny_images), "batch_size": 8},
        "model": {"type": "application", "name": "mobilenet_v3_small", "weights": None, "trainable": False,
                  "options": {"minimalistic": True}},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 2, "unfreeze": {"epoch": 2, "learning_rate": 0.001}},
    }
    watch = EpochWeights()
    run_dir(cli("run", write_config(config), "--runs-dir", tmp_path / "runs", callbacks=[watch]))
    first, second = changed(watch.at[0], watch.at[1]), changed(watch.at[1], watch.at[2])
    assert first == {"outputs/kernel", "outputs/bias"}
    assert any(path.endswith("conv/kernel") for path in second), sorted(second)[:5]
    assert not any("batch_norm" in path or "/bn" in path.lower() for path in second if "moving" in path)
    assert not any(path.endswith(("gamma", "beta")) for path in second)  # batch norm stays frozen


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "expected"), [
    ({"training.unfreeze.epoch": 4}, "training.unfreeze.epoch: 4 is past the last epoch (3)"),
    ({"training.unfreeze.epoch": 1}, "training.unfreeze.epoch: expected a value >= 2, got 1"),
    ({"model.trainable": True}, "already trains from the start"),
    ({"model.lora": {"rank": 2}, "model.trainable": True}, "cannot be combined with model.lora"),
    ({"optimizer.learning_rate": {"schedule": "cosine_decay", "initial_learning_rate": 0.01}},
     "learning-rate schedule"),
])
def test_unfreeze_that_cannot_apply(cli, write_config, tmp_path, bert, reviews, change, expected):
    config = staged(bert, reviews)
    for key, value in change.items():
        section, name = key.rsplit(".", 1)
        node = config
        for part in section.split("."):
            node = node[part]
        node[name] = value
    result = cli("validate", write_config(config))
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_unfreeze_needs_a_backbone(cli, write_config, tmp_path, reviews):
    config = {"data": {"dataset": "synthetic_binary"}, "model": {"type": "dense"}, "loss": "binary_crossentropy",
              "training": {"epochs": 3, "unfreeze": {"epoch": 2}}}
    result = cli("validate", write_config(config))
    assert result.exit_code == 2 and "model.type dense has no pretrained backbone" in result.output, result.output
