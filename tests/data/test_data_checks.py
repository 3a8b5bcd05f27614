"""Data vs model/loss mismatches are one-line errors naming both sides, raised before any training."""

from __future__ import annotations

import numpy as np
import pytest

from tftrain.data.base import LoadedData
from tftrain.errors import DataError
from tftrain.spec.loading import validate
from tftrain.training.data_checks import check_data

# The output activation each loss is meant for (a mismatch is a config error of its own).
OUTPUT = {"binary_crossentropy": "sigmoid", "hinge": None, "squared_hinge": None}


def config(loss="sparse_categorical_crossentropy", model=None, dataset="npz"):
    model = model or {"type": "dense", "output_activation": OUTPUT.get(loss, "softmax")}
    return validate({"data": {"dataset": dataset, "path": "unused.npz"}, "loss": loss, "model": model})


def images(labels, shape=(28, 28), test_labels=None, x_test_shape=None):
    y = np.asarray(labels)
    integer = np.issubdtype(y.dtype, np.integer)
    y_test = None if test_labels is None else np.asarray(test_labels)
    x_test = None if y_test is None else np.zeros((len(y_test), *(x_test_shape or shape)), np.uint8)
    return LoadedData(x_train=np.zeros((len(y), *shape), np.uint8), y_train=y, x_test=x_test, y_test=y_test,
                      num_classes=int(max(y.max(), -1 if y_test is None else y_test.max())) + 1 if integer else None)


def test_matching_data_passes():
    check_data(config(), images(np.arange(10) % 10))
    check_data(config(), images((np.arange(10) % 10)[:, None]))  # Keras's CIFAR-style (N, 1) labels
    check_data(config("binary_crossentropy"), images(np.array([0.0, 1.0, 1.0])))
    check_data(config("categorical_crossentropy"), images(np.eye(3)[[0, 1, 2, 1]]))
    check_data(config("mse", {"type": "cnn"}), images(np.linspace(0, 1, 4)))
    check_data(config("hinge"), images(np.array([-1, 1, 1])))


@pytest.mark.parametrize("loss,labels,message", [
    ("binary_crossentropy", np.arange(20) % 10,
     r"^loss binary_crossentropy trains one output unit per label on values in \[0, 1\]; the labels of npz range "
     r"over 0\.\.9 \(10 classes\): for several classes use sparse_categorical_crossentropy$"),
    # class indices are one-hot encoded in the pipeline for a categorical loss (issue 32): checked as indices
    ("categorical_crossentropy", np.array([-1, 0, 1, 2]),
     r"^loss categorical_crossentropy: the model has 3 outputs \(one per class\), so labels must lie in \[0, 3\)"),
    ("sparse_categorical_crossentropy", np.linspace(0, 1, 5, dtype=np.float32),
     r"needs integer class labels; the labels of npz are float32 \(0\.\.1\): use a regression loss"),
    ("sparse_categorical_crossentropy", np.eye(4, dtype=np.int32),
     r"needs one class index per example; the labels of npz have shape \(4, 4\) \(one-hot\?\): use categorical"),
    ("sparse_categorical_crossentropy", np.array([-1, 0, 1, 2]),
     r"the model has 3 outputs \(one per class\), so labels must lie in \[0, 3\); the labels of npz range over -1\.\.2"),
    ("hinge", np.array([0, 1, 2]), r"loss hinge trains one output unit per label on values in \[-1, 1\]"),
])
def test_label_and_loss_mismatches(loss, labels, message):
    with pytest.raises(DataError, match=message):
        check_data(config(loss), images(labels))


def test_ignore_class_labels_are_allowed():
    cfg = validate({"data": {"dataset": "npz", "path": "x.npz"},
                    "loss": {"name": "sparse_categorical_crossentropy", "ignore_class": -1}})
    check_data(cfg, LoadedData(x_train=np.zeros((4, 3)), y_train=np.array([-1, 0, 1, 1]), num_classes=2))


def test_cnn_on_vectors_and_on_too_small_images():
    with pytest.raises(DataError, match=r"model.type cnn needs images of shape \(height, width\[, channels\]\); "
                                        r"the examples of npz have shape \(4,\): use model.type dense"):
        check_data(config(model={"type": "cnn", "output_activation": "softmax"}), images(np.arange(3), shape=(4,)))
    with pytest.raises(DataError, match=r"model.conv: 3 conv layers \(kernel_size 3, pool_size 2\) shrink 8x8 "
                                        r"images of npz below one pixel at layer 2"):
        check_data(config(model={"type": "cnn", "output_activation": "softmax"}), images(np.arange(3), shape=(8, 8, 3)))
    check_data(config(model={"type": "cnn", "conv": [8, 8], "output_activation": "softmax"}), images(np.arange(3), shape=(8, 8, 3)))


def test_train_and_test_shapes_and_dtypes_must_agree():
    with pytest.raises(DataError, match=r"npz train inputs have per-example shape \(28, 28\) but test inputs \(32, 32\)"):
        check_data(config(), images(np.arange(4), test_labels=np.arange(2), x_test_shape=(32, 32)))
    text = LoadedData(x_train=np.array([["a"], ["b"]]), y_train=np.array([0, 1]), num_classes=2)
    with pytest.raises(DataError, match=r"the train inputs of npz are <U1; expected numbers"):
        check_data(config(), text)


def test_mismatch_through_the_cli_is_exit_2_and_writes_nothing(cli, tmp_path, tiny_mnist, write_config):
    path = write_config({"data": {"dataset": "mnist", "path": str(tiny_mnist)}, "loss": "binary_crossentropy",
                         "model": {"type": "dense", "output_activation": "sigmoid"}})
    result = cli("run", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output.startswith("error: loss binary_crossentropy trains one output unit per label")
    assert "(10 classes)" in result.output and not (tmp_path / "runs").exists()
