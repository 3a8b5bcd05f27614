"""The figures `tftrain evaluate` draws: the confusion matrix, ROC and precision-recall curves,
predicted-vs-true and residual plots, and the gallery of the worst mistakes.

matplotlib's object-oriented API only (no pyplot, no display), as in tftrain.runs.plots.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from tftrain.commands.evaluation_report import Curve, row_normalized

ANNOTATE_UP_TO = 20  # classes: beyond this, numbers in the cells no longer fit
SCATTER_POINTS = 5000  # points drawn in a scatter plot: more only hides the shape


def confusion_matrix_figure(counts: np.ndarray, names: tuple[str, ...], title: str) -> Figure:
    """Cells coloured by the row-normalised share, each with its count and share."""
    k = len(names)
    side = max(4.5, 0.55 * k + 2.5)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = figure.add_subplot()
    shares = row_normalized(counts)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k), labels=names, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= ANNOTATE_UP_TO:
        size = "small" if k <= 10 else "x-small"
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=size,
                        color="white" if shares[i, j] > 0.5 else "black")
    return figure


def roc_figure(curve: Curve, point: tuple[float, float] | None, threshold_label: str, title: str) -> Figure:
    """The ROC curve, the chance diagonal and the point the threshold picks."""
    figure = Figure(figsize=(5.2, 4.8), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(curve.x, curve.y, label=f"ROC (AUC = {curve.area:.4f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="chance")
    if point is not None:
        ax.plot(*point, "o", color="C3", label=threshold_label)
    _finish(ax, "false positive rate", "true positive rate", title)
    return figure


def precision_recall_figure(curve: Curve, point: tuple[float, float] | None, threshold_label: str,
                            base_rate: float, title: str) -> Figure:
    """The precision-recall curve, the no-skill line (the positive rate) and the threshold's point."""
    figure = Figure(figsize=(5.2, 4.8), layout="constrained")
    ax = figure.add_subplot()
    ax.step(curve.x, curve.y, where="post", label=f"average precision = {curve.area:.4f}")
    ax.axhline(base_rate, color="gray", linestyle="--", linewidth=1, label=f"no skill ({base_rate:.2f})")
    if point is not None:
        ax.plot(*point, "o", color="C3", label=threshold_label)
    _finish(ax, "recall", "precision", title)
    return figure


def _finish(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right" if xlabel != "recall" else "lower left")


def _sample(n: int) -> np.ndarray:
    """Indices of at most SCATTER_POINTS examples, evenly spread (deterministic)."""
    return np.linspace(0, n - 1, min(n, SCATTER_POINTS)).astype(np.int64)


def predicted_vs_true_figure(true: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Every target value against its prediction, with the diagonal a perfect model sits on."""
    true, predicted = true.reshape(-1), predicted.reshape(-1)
    keep = _sample(len(true))
    figure = Figure(figsize=(5.2, 4.8), layout="constrained")
    ax = figure.add_subplot()
    ax.scatter(true[keep], predicted[keep], s=8, alpha=0.5, label="examples")
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def residuals_figure(true: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Residuals (predicted - true) against the prediction, and their histogram."""
    true, predicted = true.reshape(-1), predicted.reshape(-1)
    residuals = predicted - true
    keep = _sample(len(true))
    figure = Figure(figsize=(9.6, 4.0), layout="constrained")
    scatter, histogram = figure.subplots(1, 2)
    scatter.scatter(predicted[keep], residuals[keep], s=8, alpha=0.5)
    scatter.axhline(0.0, color="gray", linestyle="--", linewidth=1)
    scatter.set_xlabel("predicted")
    scatter.set_ylabel("residual (predicted - true)")
    scatter.set_title(title)
    histogram.hist(residuals, bins=min(50, max(5, len(residuals) // 10)))
    histogram.axvline(0.0, color="gray", linestyle="--", linewidth=1)
    histogram.set_xlabel("residual")
    histogram.set_ylabel("examples")
    for ax in (scatter, histogram):
        ax.grid(True, alpha=0.3)
    return figure


def mistakes_figure(images: np.ndarray, captions: list[str], title: str) -> Figure:
    """A grid of images, each captioned (true, predicted, probability)."""
    columns = min(len(images), max(1, math.ceil(math.sqrt(len(images)))))
    rows = math.ceil(len(images) / columns)
    figure = Figure(figsize=(1.9 * columns, 2.2 * rows + 0.4), layout="constrained")
    figure.suptitle(title)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).reshape(-1)
    for ax in axes[len(images):]:
        ax.axis("off")
    for ax, image, caption in zip(axes, images, captions):
        ax.imshow(**_displayable(image), interpolation="nearest")
        ax.set_xticks([])  # a frame without ticks: white pixels stay visible against the page
        ax.set_yticks([])
        ax.set_title(caption, fontsize="x-small")
    return figure


def _displayable(image: np.ndarray) -> dict:
    """imshow's X, cmap, vmin and vmax: grayscale squeezed, uint8 shown as is, other
    values stretched to [0, 1]."""
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    top = 255 if image.dtype == np.uint8 else 1.0
    return {"X": image, "cmap": None if image.ndim == 3 else "gray", "vmin": 0, "vmax": top}
