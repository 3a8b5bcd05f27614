"""What `tftrain evaluate` reports beyond the compiled Keras metrics, computed with NumPy from the
model's predictions on the evaluation split:

- classifiers: precision, recall, F1 and support per class, the confusion matrix (counts and
  row-normalised: the share of each true class that went to each prediction), and the top
  confusions;
- one-unit binary and score models: the ROC and precision-recall curves with their areas (ROC AUC,
  average precision) and the point the decision threshold picks on them;
- regression: MAE, RMSE and R².

Everything here is plain NumPy (no TensorFlow), so a hand-made prediction set can be checked
against known counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tftrain.runs.model import as_probabilities

TOP_CONFUSIONS = 5  # one line each on the console: what a reader looks at first
# Probability (binary) and score (hinge losses) above which an example is class 1, as the
# accuracy metric and `tftrain predict` decide.
THRESHOLDS = {"binary": (0.5, "probability"), "score": (0.0, "score")}


@dataclass(frozen=True)
class Predictions:
    """The evaluation split's labels and what the model made of them.

    Classifiers: `true` and `predicted` are class indices (N,), `confidence` the probability of
    the predicted class (None for scores), `score` what the curves rank by (binary: P(class 1);
    score models: the raw score). Regression: `true` and `predicted` are (N, targets) values.
    """

    task: str  # multiclass | binary | score | regression (tftrain.spec.checks.RunFacts.read_as)
    true: np.ndarray
    predicted: np.ndarray
    class_names: tuple[str, ...] = ()
    confidence: np.ndarray | None = None
    score: np.ndarray | None = None


def read_predictions(outputs: np.ndarray, y: np.ndarray, task: str, output_activation: str | None,
                     class_names: tuple[str, ...] | None = None) -> Predictions:
    """Labels and model outputs of one split as a `Predictions` of the run's task."""
    values = as_probabilities(np.asarray(outputs, dtype=np.float64), task, output_activation)
    labels = np.asarray(y).reshape(len(y), -1)
    if task == "regression":
        return Predictions(task, labels.astype(np.float64), values)
    true = true_classes(y, task)
    if task == "multiclass":
        names = _names(class_names, values.shape[1])
        return Predictions(task, true, values.argmax(axis=1), names, values.max(axis=1), None)
    threshold = THRESHOLDS[task][0]
    score = values[:, 0]
    predicted = (score > threshold if task == "score" else score >= threshold).astype(np.int64)
    if class_names is None or len(class_names) != 2:
        class_names = ("-1", "1") if task == "score" and labels.min() < 0 else ("0", "1")
    confidence = np.where(predicted == 1, score, 1.0 - score) if task == "binary" else None
    return Predictions(task, true, predicted, tuple(class_names), confidence, score)


def true_classes(y: np.ndarray, task: str) -> np.ndarray:
    """Class index per example from a classifier's labels: integers as they are, one-hot rows by
    argmax, binary labels at 0.5 and score labels (-1/1 or 0/1) above 0."""
    labels = np.asarray(y).reshape(len(y), -1)
    if task == "multiclass":
        return labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0].astype(np.int64)
    threshold = THRESHOLDS[task][0]
    return (labels[:, 0] > threshold if task == "score" else labels[:, 0] >= threshold).astype(np.int64)


def _names(class_names: tuple[str, ...] | None, count: int) -> tuple[str, ...]:
    if class_names is not None and len(class_names) == count:
        return tuple(str(name) for name in class_names)
    return tuple(str(i) for i in range(count))


# -- classification ---------------------------------------------------------------------------

def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j]: examples of true class i predicted as class j."""
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(true * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def row_normalized(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the true class's support); empty rows stay 0."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def per_class(counts: np.ndarray, names: tuple[str, ...]) -> dict:
    """Precision, recall, F1 and support per class, with macro and support-weighted averages
    (a class never predicted has precision 0, as scikit-learn reports it)."""
    hits = np.diag(counts).astype(np.float64)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    rows = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)]
    weights = support / support.sum() if support.sum() else np.zeros_like(hits)

    def average(w):
        return {"precision": float(precision @ w), "recall": float(recall @ w), "f1": float(f1 @ w),
                "support": int(support.sum())}

    return {"per_class": rows, "macro_avg": average(np.full(len(names), 1 / len(names))),
            "weighted_avg": average(weights), "accuracy": float(hits.sum() / max(1, counts.sum()))}


def top_confusions(counts: np.ndarray, names: tuple[str, ...], limit: int = TOP_CONFUSIONS) -> list[dict]:
    """The largest off-diagonal cells: which true class went to which prediction, how often, and
    what share of the true class that is."""
    off = counts.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:limit]
    support = counts.sum(axis=1)
    found = []
    for true, predicted in zip(*np.unravel_index(order, off.shape)):
        if off[true, predicted] == 0:
            break
        found.append({"true": names[true], "predicted": names[predicted], "count": int(off[true, predicted]),
                      "share": float(off[true, predicted] / support[true])})
    return found


def confusion_line(confusion: dict) -> str:
    """`Shirt -> T-shirt/top: 112 (11.2% of Shirt)`."""
    return (f"{confusion['true']} -> {confusion['predicted']}: {confusion['count']} "
            f"({confusion['share']:.1%} of {confusion['true']})")


def classification_summary(p: Predictions) -> dict:
    """eval.json's `classification` section: per-class table, confusion matrix, top confusions."""
    counts = confusion_matrix(p.true, p.predicted, len(p.class_names))
    return {**per_class(counts, p.class_names),
            "confusion_matrix": {"labels": list(p.class_names), "counts": counts.tolist(),
                                 "normalized": np.round(row_normalized(counts), 6).tolist()},
            "top_confusions": top_confusions(counts, p.class_names)}


# -- binary curves ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """Points of a ROC (x = false positive rate, y = true positive rate) or precision-recall
    (x = recall, y = precision) curve, with the score threshold of each point."""

    x: np.ndarray
    y: np.ndarray
    thresholds: np.ndarray
    area: float


def _ranked_counts(labels: np.ndarray, scores: np.ndarray):
    """True and false positives when every score >= each distinct threshold counts as positive."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last example of each distinct score
    tps = np.cumsum(labels)[last]
    return tps, (last + 1) - tps, scores[last]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> Curve | None:
    """ROC curve and its area (trapezoids); None when the split holds one class only."""
    labels = np.asarray(labels, np.int64)
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    if positives == 0 or negatives == 0:
        return None
    tps, fps, thresholds = _ranked_counts(labels, np.asarray(scores, np.float64))
    tpr, fpr = np.r_[0.0, tps / positives], np.r_[0.0, fps / negatives]
    return Curve(fpr, tpr, np.r_[np.inf, thresholds], _trapezoid(fpr, tpr))


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))  # np.trapezoid is NumPy 2 only


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> Curve | None:
    """Precision-recall curve and the average precision, sum((R_n - R_{n-1}) * P_n) (the step
    area, as scikit-learn computes it, not the optimistic trapezoids); None without positives."""
    labels = np.asarray(labels, np.int64)
    positives = int(labels.sum())
    if positives == 0:
        return None
    tps, fps, thresholds = _ranked_counts(labels, np.asarray(scores, np.float64))
    precision, recall = tps / (tps + fps), tps / positives
    area = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return Curve(np.r_[0.0, recall], np.r_[1.0, precision], np.r_[np.inf, thresholds], area)


def binary_summary(p: Predictions) -> tuple[dict, Curve | None, Curve | None]:
    """eval.json's `binary` section (threshold, ROC AUC, average precision, the threshold's point
    on both curves) and the two curves for plotting."""
    threshold, on = THRESHOLDS[p.task]
    roc, pr = roc_curve(p.true, p.score), precision_recall_curve(p.true, p.score)
    tp = int(np.sum((p.predicted == 1) & (p.true == 1)))
    fp = int(np.sum((p.predicted == 1) & (p.true == 0)))
    positives, negatives = int(p.true.sum()), int(len(p.true) - p.true.sum())
    point = {"true_positive_rate": tp / positives if positives else None,
             "false_positive_rate": fp / negatives if negatives else None,
             "precision": tp / (tp + fp) if tp + fp else None}
    summary = {"threshold": threshold, "threshold_on": on, "roc_auc": roc.area if roc else None,
               "average_precision": pr.area if pr else None, "at_threshold": point}
    return summary, roc, pr


def binary_line(binary: dict) -> str:
    """`ROC AUC 0.97, average precision 0.95 (threshold 0.5 on the probability)`."""
    def number(v):
        return "n/a (one class only)" if v is None else f"{v:.4f}"

    return (f"ROC AUC {number(binary['roc_auc'])}, average precision {number(binary['average_precision'])} "
            f"(threshold {binary['threshold']:g} on the {binary['threshold_on']})")


# -- regression -------------------------------------------------------------------------------

def regression_summary(p: Predictions) -> dict:
    """MAE, RMSE and R² over every target value (R²: the mean over targets of 1 - SS_res/SS_tot,
    as scikit-learn's r2_score; None where the targets do not vary)."""
    error = p.predicted - p.true
    spread = np.sum((p.true - p.true.mean(axis=0)) ** 2, axis=0)
    residual = np.sum(error ** 2, axis=0)
    varies = spread > 0
    r2 = float(np.mean(1.0 - residual[varies] / spread[varies])) if varies.any() else None
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))), "r2": r2,
            "targets": int(p.true.shape[1])}


# -- mistakes ---------------------------------------------------------------------------------

def worst_mistakes(p: Predictions, limit: int) -> np.ndarray:
    """Indices of misclassified examples, most confident first (the model was surest and wrong);
    score models, which have no probability, rank by how far the score is past the threshold."""
    wrong = np.flatnonzero(p.predicted != p.true)
    sureness = p.confidence if p.confidence is not None else np.abs(p.score)
    return wrong[np.argsort(-sureness[wrong], kind="stable")][:limit]
