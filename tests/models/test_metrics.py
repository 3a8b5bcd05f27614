"""Every Keras metric by name: each trains in a tiny run of the task it reads and is logged as
one number per epoch; the parameters Keras needs are checked (or filled from the data) before
anything is built, and a metric that cannot read what the loss trains on is one line."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from tftrain.spec import catalog

CASES = {
    "one_hot": ("categorical_crossentropy", [
        "f1_score", {"name": "fbeta_score", "beta": 0.5, "average": "micro"},
        {"name": "top_k_categorical_accuracy", "k": 2}, "mean_iou", {"name": "one_hot_iou", "target_class_ids": [0]},
        "one_hot_mean_iou", {"name": "precision_at_recall", "recall": 0.5}, "categorical_crossentropy",
        "cosine_similarity", "kl_divergence", "categorical_hinge"]),
    "classes": ("sparse_categorical_crossentropy", [
        "mean_iou", {"name": "iou", "target_class_ids": [1, 2]}, {"name": "sparse_top_k_categorical_accuracy", "k": 2},
        "sparse_categorical_crossentropy"]),
    "binary": ("binary_crossentropy", [
        "f1_score", "binary_iou", {"name": "recall_at_precision", "precision": 0.8}, "true_positives",
        "false_negatives", "true_negatives", "false_positives",
        {"name": "sensitivity_at_specificity", "specificity": 0.5},
        {"name": "specificity_at_sensitivity", "sensitivity": 0.5}, "binary_crossentropy"]),
    "regression": ("mse", [
        "r2_score", "pearson_correlation", "concordance_correlation", "log_cosh_error",
        "mean_absolute_percentage_error", "mean_squared_logarithmic_error"]),  # poisson needs positive outputs
    "score": ("hinge", ["hinge", "squared_hinge"]),
}


def _data(tmp_path, task: str):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    if task in ("one_hot", "classes"):
        y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
        y = np.eye(3, dtype="float32")[y] if task == "one_hot" else y
    elif task == "binary":
        y = (x[:, :1] > 0).astype("float32")
    elif task == "score":
        y = np.where(x[:, :1] > 0, 1.0, -1.0).astype("float32")
    else:
        y = (x[:, :1] * 2 + 5).astype("float32")  # positive: Poisson and MAPE read counts and ratios
    np.savez(tmp_path / "d.npz", x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:])
    return tmp_path / "d.npz"


def _config(path, task, loss, metrics):
    activation = {"one_hot": "softmax", "classes": "softmax", "binary": "sigmoid"}.get(task)
    return {"name": task, "seed": 0, "data": {"dataset": "npz", "path": str(path), "batch_size": 8},
            "model": {"type": "dense", "hidden": [8], "output_activation": activation},
            "loss": loss, "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": metrics,
            "training": {"epochs": 1}}


@pytest.mark.parametrize("task", list(CASES))
def test_every_metric_trains_and_logs_one_number(cli, write_config, tmp_path, task):
    loss, metrics = CASES[task]
    config = write_config(_config(_data(tmp_path, task), task, loss, metrics))
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = result.output.strip().splitlines()[-1]
    with open(f"{run}/history.csv", newline="") as f:
        row = next(csv.DictReader(f))
    for metric in metrics:
        name = metric if isinstance(metric, str) else metric["name"]
        for logged in (name, f"val_{name}"):
            assert math.isfinite(float(row[logged])), (logged, row)
    if task == "one_hot":  # evaluate builds the metrics again, num_classes from the saved model
        result = cli("evaluate", run, "--json")
        assert result.exit_code == 0, result.output


def test_every_keras_metric_is_in_the_catalog():
    import inspect

    import keras

    classes = {cls for name in dir(keras.metrics) if inspect.isclass(cls := getattr(keras.metrics, name))
               and issubclass(cls, keras.metrics.Metric)}
    # Not label/prediction metrics: Mean and Sum average any values; the wrapper and the base take functions.
    classes -= {keras.metrics.Metric, keras.metrics.Mean, keras.metrics.Sum, keras.metrics.MeanMetricWrapper}
    named = {class_name for class_name, _ in catalog.METRICS.values()}
    assert {cls.__name__ for cls in classes} - named == set()
    for name, required in catalog.METRIC_REQUIRED.items():
        cls = getattr(keras.metrics, catalog.METRICS[name][0])
        needed = {p.name for p in inspect.signature(cls.__init__).parameters.values()
                  if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
        assert needed - {"num_classes"} == set(required), name


@pytest.mark.parametrize("loss, metric, expected", [
    ("sparse_categorical_crossentropy", "f1_score",
     "metrics.0: f1_score reads binary labels (0 or 1) or one-hot labels, but loss sparse_categorical_crossentropy "
     "trains integer class labels (one-hot labels with categorical_crossentropy"),
    ("sparse_categorical_crossentropy", "r2_score", "metrics.0: r2_score reads real-valued targets"),
    ("sparse_categorical_crossentropy", {"name": "precision_at_recall"},
     "metrics.0: metric precision_at_recall: required parameter 'recall' is missing"),
    ("sparse_categorical_crossentropy", {"name": "f1_score", "average": None}, "metrics.0.average: expected one of"),
    ({"name": "categorical_crossentropy", "from_logits": True}, "f1_score",
     "metrics.0: f1_score thresholds probabilities, but the model outputs logits"),
    ("sparse_categorical_crossentropy", "f1score", "did you mean 'f1_score'?"),
    ("sparse_categorical_crossentropy", {"name": "iou", "target_class_ids": [-1]},
     "expected a list of integers >= 0"),
])
def test_metric_mistakes_are_one_line_without_tensorflow(cli, write_config, tmp_path, loss, metric, expected):
    softmax = not (isinstance(loss, dict) and loss.get("from_logits"))
    config = _config(tmp_path / "d.npz", "one_hot", loss, [metric])
    if not softmax:
        config["model"]["output_activation"] = None  # logits
    result = cli("validate", write_config(config))
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_monitor_mode_knows_the_new_metrics():
    assert {catalog.monitor_mode(m) for m in ("val_f1_score", "val_mean_iou", "r2_score", "val_true_positives",
                                              "val_precision_at_recall", "pearson_correlation")} == {"max"}
    assert {catalog.monitor_mode(m) for m in ("val_false_negatives", "val_log_cosh_error", "val_previous")} == {"min"}
