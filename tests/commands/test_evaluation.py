"""`tftrain evaluate` beyond the compiled metrics (issue 20): per-class table, confusion matrix,
top confusions, ROC/PR curves, regression statistics, the mistakes gallery; the NumPy report
against hand-made prediction sets with known answers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tftrain.commands import evaluation_report as report
from tftrain.data.images.fashion_mnist import CLASS_NAMES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- the report on hand-made predictions -------------------------------------------------------

def test_confusion_matrix_per_class_and_top_confusions_of_a_hand_made_prediction_set():
    true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    predicted = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 1, 1])
    counts = report.confusion_matrix(true, predicted, 3)
    assert counts.tolist() == [[2, 1, 1], [1, 2, 0], [0, 2, 3]]
    np.testing.assert_allclose(report.row_normalized(counts), [[.5, .25, .25], [1 / 3, 2 / 3, 0], [0, .4, .6]])
    table = report.per_class(counts, ("cat", "dog", "fox"))
    by_class = {row["class"]: row for row in table["per_class"]}
    # cat: 2 of 3 predicted cats are cats, 2 of 4 cats found; dog: 2/5 and 2/3; fox: 3/4 and 3/5.
    assert by_class["cat"] == pytest.approx({"class": "cat", "precision": 2 / 3, "recall": 0.5, "f1": 4 / 7,
                                             "support": 4})
    assert by_class["dog"]["precision"] == pytest.approx(0.4) and by_class["dog"]["recall"] == pytest.approx(2 / 3)
    assert by_class["fox"]["f1"] == pytest.approx(2 * .75 * .6 / 1.35) and by_class["fox"]["support"] == 5
    assert table["accuracy"] == pytest.approx(7 / 12)
    assert table["macro_avg"]["recall"] == pytest.approx((0.5 + 2 / 3 + 0.6) / 3)
    assert table["weighted_avg"]["recall"] == pytest.approx(7 / 12)  # weighted recall is accuracy
    top = report.top_confusions(counts, ("cat", "dog", "fox"))
    assert [(c["true"], c["predicted"], c["count"]) for c in top] == [
        ("fox", "dog", 2), ("cat", "dog", 1), ("cat", "fox", 1), ("dog", "cat", 1)]
    assert report.confusion_line(top[0]) == "fox -> dog: 2 (40.0% of fox)"


def test_confusion_matrix_agrees_with_tensorflow():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    expected = tf.math.confusion_matrix(true, predicted, num_classes=7).numpy()
    np.testing.assert_array_equal(report.confusion_matrix(true, predicted, 7), expected)


def test_a_class_never_predicted_has_zero_precision_and_no_division_warning():
    with np.errstate(all="raise"):
        table = report.per_class(report.confusion_matrix([0, 1, 1], [0, 0, 0], 3), ("a", "b", "c"))
    assert [row["precision"] for row in table["per_class"]] == [pytest.approx(1 / 3), 0.0, 0.0]
    assert [row["support"] for row in table["per_class"]] == [1, 2, 0]


def test_roc_and_precision_recall_of_a_hand_made_score_set():
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    roc = report.roc_curve(labels, scores)
    assert roc.area == pytest.approx(0.75)
    np.testing.assert_allclose(roc.x, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(roc.y, [0, 0.5, 0.5, 1, 1])
    pr = report.precision_recall_curve(labels, scores)
    assert pr.area == pytest.approx((1 + 2 / 3) / 2)  # 0.5 * P(0.8) + 0.5 * P(0.35)
    assert report.roc_curve(np.ones(4), scores) is None  # one class only: no ROC
    # Tied scores count together, and a perfect ranking has area 1.
    assert report.roc_curve(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])).area == pytest.approx(0.5)
    assert report.roc_curve(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9])).area == 1.0


def test_binary_predictions_from_logits_and_the_threshold_point():
    logits = np.array([[-2.0], [0.5], [-0.1], [3.0]])
    p = report.read_predictions(logits, np.array([0, 0, 1, 1]), "binary", None, ("no", "yes"))
    assert p.predicted.tolist() == [0, 1, 0, 1] and p.class_names == ("no", "yes")
    np.testing.assert_allclose(p.score, 1 / (1 + np.exp(-logits[:, 0])))
    summary, roc, pr = report.binary_summary(p)
    assert summary["threshold"] == 0.5 and summary["threshold_on"] == "probability"
    assert summary["at_threshold"] == {"true_positive_rate": 0.5, "false_positive_rate": 0.5, "precision": 0.5}
    assert summary["roc_auc"] == pytest.approx(0.75) and roc is not None and pr is not None
    scores = report.read_predictions(np.array([[-1.0], [2.0]]), np.array([-1, 1]), "score", None)
    assert scores.predicted.tolist() == [0, 1] and scores.true.tolist() == [0, 1]
    assert scores.class_names == ("-1", "1")


def test_one_hot_labels_and_logits_of_a_categorical_model():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    p = report.read_predictions(logits, np.eye(3)[[0, 1, 1]], "multiclass", None, ("a", "b", "c"))
    assert p.true.tolist() == [0, 1, 1] and p.predicted.tolist() == [0, 2, 1]
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p.confidence, softmax.max(axis=1))
    assert report.confusion_matrix(p.true, p.predicted, 3).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_regression_statistics_of_a_hand_made_set():
    p = report.read_predictions(np.array([[2.5], [0.0], [2.0], [8.0]]), np.array([3, -0.5, 2, 7]), "regression", None)
    stats = report.regression_summary(p)
    assert stats["mae"] == pytest.approx(0.5)
    assert stats["rmse"] == pytest.approx(np.sqrt(0.375))
    assert stats["r2"] == pytest.approx(0.9486081370449679)  # scikit-learn's r2_score documentation example
    constant = report.read_predictions(np.array([[1.0], [2.0]]), np.array([5.0, 5.0]), "regression", None)
    assert report.regression_summary(constant)["r2"] is None


def test_worst_mistakes_are_the_most_confident_wrong_predictions():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.95, 0.05], [0.3, 0.7]])
    p = report.read_predictions(probabilities, np.array([1, 1, 0, 1, 0]), "multiclass", "softmax")
    assert report.worst_mistakes(p, 2).tolist() == [3, 0]  # 0.95 and 0.9 sure, both wrong
    assert report.worst_mistakes(p, 10).tolist() == [3, 0, 4, 2]


# -- tftrain evaluate on trained runs ---------------------------------------------------------

def _predictions(run, split="test"):
    """The model the run's evaluation used (eval.json's `model`: best.keras by default where the
    run tracked a monitor) on its evaluation data, computed here with Keras directly."""
    import keras

    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import split_for_evaluation
    from tftrain.runs import RunDir

    config = RunDir(run).config()
    data = split_for_evaluation(load_data(config, config.seed), config, config.seed)
    used = json.loads((run / "eval.json").read_text())["model"] if (run / "eval.json").is_file() else "model.keras"
    model = keras.saving.load_model(run / used, compile=False)
    return data, model.predict(data.x.astype(np.float32), verbose=0)


def _png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        return image.size


def test_classifier_gets_per_class_table_and_confusion_matrix_with_fashion_mnist_names(cli, tiny_runs, tmp_path):
    run = shutil.copytree(tiny_runs["fashion"], tmp_path / "run")
    result = cli("evaluate", run)
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run / "eval.json").read_text())
    # eval.json keeps what it had and gains the classification report.
    assert {"checkpoint", "model", "split", "examples", "metrics", "evaluated"} <= set(evaluation)
    assert evaluation["task"] == "multiclass" and evaluation["classes"] == list(CLASS_NAMES)
    data, outputs = _predictions(run)
    counts = evaluation["classification"]["confusion_matrix"]["counts"]
    import tensorflow as tf

    expected = tf.math.confusion_matrix(data.y, outputs.argmax(axis=1), num_classes=10).numpy()
    assert counts == expected.tolist()
    assert evaluation["classification"]["accuracy"] == pytest.approx(evaluation["metrics"]["accuracy"])
    assert [row["class"] for row in evaluation["classification"]["per_class"]] == list(CLASS_NAMES)
    assert [row["support"] for row in evaluation["classification"]["per_class"]] == np.bincount(data.y).tolist()
    normalized = np.array(evaluation["classification"]["confusion_matrix"]["normalized"])
    np.testing.assert_allclose(normalized.sum(axis=1), 1.0, atol=1e-5)
    # The console: the per-class table with the class names, both matrices, the top confusions.
    text = result.stdout
    assert "per class" in text and "Ankle boot" in text and "T-shirt/top" in text
    assert "confusion matrix" in text and "share of each true class" in text and "top confusions:" in text
    top = evaluation["classification"]["top_confusions"][0]
    assert report.confusion_line(top) in text
    assert evaluation["plots"] == {"confusion_matrix": "plots/confusion_matrix.png"}
    width, height = _png(run / "plots" / "confusion_matrix.png")
    assert width > 400 and height > 400


def test_mistakes_gallery_shows_the_most_confident_misclassified_test_images(cli, tiny_runs, tmp_path):
    run = shutil.copytree(tiny_runs["fashion"], tmp_path / "run")
    result = cli("evaluate", run, "--mistakes", "6", "--json")
    assert result.exit_code == 0, result.output
    mistakes = json.loads(result.stdout)["mistakes"]
    data, outputs = _predictions(run)
    wrong = np.flatnonzero(outputs.argmax(axis=1) != data.y)
    assert mistakes["misclassified"] == len(wrong) >= 6  # one test label in 11 is wrong on purpose
    assert mistakes["shown"] == 6 and mistakes["plot"] == "plots/mistakes.png"
    shown = [e["index"] for e in mistakes["examples"]]
    assert set(shown) <= set(wrong.tolist())
    confidence = outputs.max(axis=1)
    assert shown == sorted(wrong.tolist(), key=lambda i: -confidence[i])[:6]
    first = mistakes["examples"][0]
    assert first["true"] == CLASS_NAMES[data.y[first["index"]]]
    assert first["probability"] == pytest.approx(float(confidence[first["index"]]), rel=1e-5)
    _png(run / "plots" / "mistakes.png")
    assert json.loads((run / "eval.json").read_text())["mistakes"] == mistakes


def test_binary_run_gets_roc_and_precision_recall_curves(cli, tiny_runs, tmp_path):
    import keras

    run = shutil.copytree(tiny_runs["binary"], tmp_path / "run")
    result = cli("evaluate", run, "--json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["task"] == "binary" and evaluation["classes"] == ["0", "1"]
    binary = evaluation["binary"]
    assert binary["threshold"] == 0.5 and binary["threshold_on"] == "probability"
    data, logits = _predictions(run)
    auc = keras.metrics.AUC(num_thresholds=10_001, from_logits=True)  # Keras's own, by thresholds
    auc.update_state(data.y, logits)
    assert binary["roc_auc"] == pytest.approx(float(auc.result()), abs=1e-3)
    assert evaluation["classification"]["accuracy"] == pytest.approx(evaluation["metrics"]["accuracy"])
    assert set(evaluation["plots"]) == {"confusion_matrix", "roc", "precision_recall"}
    for name in evaluation["plots"].values():
        _png(run / name)
    table = cli("evaluate", run)
    assert f"ROC AUC {binary['roc_auc']:.4f}" in table.stdout and "threshold 0.5 on the probability" in table.stdout


def test_regression_run_gets_mae_rmse_r2_and_residual_plots(cli, tiny_runs, tmp_path):
    run = shutil.copytree(tiny_runs["regression"], tmp_path / "run")
    result = cli("evaluate", run)
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run / "eval.json").read_text())
    data, predicted = _predictions(run)
    error = predicted.reshape(-1) - data.y.reshape(-1)
    stats = evaluation["regression"]
    assert stats["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-5)
    assert stats["mae"] == pytest.approx(evaluation["metrics"]["mae"], rel=1e-5)
    assert stats["rmse"] == pytest.approx(np.sqrt((error ** 2).mean()), rel=1e-5)
    total = ((data.y - data.y.mean()) ** 2).sum()
    assert stats["r2"] == pytest.approx(1 - (error ** 2).sum() / total, rel=1e-5)
    assert "R²" in result.stdout and "RMSE" in result.stdout
    assert set(evaluation["plots"]) == {"predicted_vs_true", "residuals"}
    for name in evaluation["plots"].values():
        _png(run / name)


def test_mistakes_is_refused_in_one_line_where_nothing_is_misclassified_or_nothing_is_an_image(cli, tiny_runs,
                                                                                               tmp_path):
    run = shutil.copytree(tiny_runs["regression"], tmp_path / "regression")
    result = cli("evaluate", run, "--mistakes", "5")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --mistakes: this run is a regression (loss mean_squared_error), so nothing is misclassified; "
        "plots/predicted_vs_true.png and plots/residuals.png show where it is wrong"]
    assert not (run / "eval.json").exists() and not (run / "plots" / "residuals.png").exists()
    run = shutil.copytree(tiny_runs["binary"], tmp_path / "binary")
    result = cli("evaluate", run, "--mistakes", "5")
    assert result.exit_code == 2 and "have shape (1,), not (height, width[, channels])" in result.stderr
    assert not (run / "eval.json").exists()
    assert cli("evaluate", run, "--mistakes", "0").exit_code == 2  # typer: N >= 1


def test_csv_label_values_name_the_classes(cli, tmp_path, write_config):
    rng = np.random.default_rng(0)
    names = np.array(["fox", "cat", "dog"])
    labels = rng.integers(0, 3, 48)
    rows = ["width,height,animal"] + [f"{k + rng.normal(0, 0.1):.3f},{rng.normal():.3f},{names[k]}" for k in labels]
    (tmp_path / "animals.csv").write_text("\n".join(rows) + "\n")
    config = write_config({"name": "animals", "data": {"dataset": "csv", "path": str(tmp_path / "animals.csv"),
                                                       "batch_size": 8, "validation": 0.25,
                                                       "options": {"label": "animal"}},
                           "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
                           "optimizer": {"name": "adam", "learning_rate": 0.05}, "training": {"epochs": 2}})
    trained = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert trained.exit_code == 0, trained.output
    result = cli("evaluate", trained.stdout.strip(), "--json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["classes"] == ["cat", "dog", "fox"]  # the label values, as the loader numbered them
    assert evaluation["classification"]["confusion_matrix"]["labels"] == ["cat", "dog", "fox"]
    assert sum(row["support"] for row in evaluation["classification"]["per_class"]) == evaluation["examples"] == 12
