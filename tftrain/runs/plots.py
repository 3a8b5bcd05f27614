"""A run's own plots: plots/<metric>.png (train vs validation) from history.csv and
plots/parameters.png for a linear model, written when a run ends; the curves and PNG helpers
that `tftrain plot` overlays and `tftrain report` inlines are read the same way.

Figures are made with matplotlib's object-oriented API (`matplotlib.figure.Figure` renders PNG
through Agg by itself), so no pyplot, no display and no global backend switch is ever involved.
matplotlib is imported with this module: only once a run has a history to plot.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tftrain.errors import UserError
from tftrain.runs import HISTORY, PLOTS, RunDir, atomic_write

PARAMETERS = "parameters"  # plots/parameters.png: w and b of a linear model
# History columns that are not curves to plot as train-vs-validation pairs.
_NOT_METRICS = {"epoch", "step", "lr", "w", "b"}
_DPI = 100  # 640x400 pixel figures: readable in a browser and small enough to commit


@dataclass(frozen=True)
class Curves:
    """One run's history as float columns, with its x axis (epoch, or step in steps mode)."""

    label: str
    x_name: str
    x: list[float]
    columns: dict[str, list[float]]
    truth: dict[str, float]  # known true values (true w and b of synthetic regression data)
    initial: dict[str, float]  # w and b before training (the linear model's w_init and b_init)

    def metrics(self) -> list[str]:
        """Train-side metric names in history order (loss first); `val_` twins are looked up."""
        names = [c for c in self.columns if c not in _NOT_METRICS and not c.startswith("val_")]
        names += [c[4:] for c in self.columns if c.startswith("val_") and c[4:] not in names]
        return names

    def parameter(self, name: str) -> tuple[list[float], list[float]]:
        """x and values of w or b, starting from the initial value at x = 0 (before training)."""
        if name in self.initial:
            return [0.0, *self.x], [self.initial[name], *self.columns[name]]
        return self.x, self.columns[name]


def read_curves(run: RunDir) -> Curves:
    """Read history.csv (and true parameter values from summary.json) into float columns."""
    rows = run.history()
    summary = run.summary()
    if not rows:
        raise UserError(f"{run.path}: no history.csv rows to plot (has the run trained an epoch yet?)")
    x_name = "step" if "step" in rows[0] else "epoch"
    if x_name not in rows[0]:
        raise UserError(f"{run.file(HISTORY)}: no epoch or step column (columns: {', '.join(rows[0])[:200]}); "
                        "the file is damaged")
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    for row in rows:
        for key, values in columns.items():
            values.append(_number(row.get(key)))
    x = columns.pop(x_name)
    columns.pop("epoch", None)
    data = summary.get("data") if isinstance(summary.get("data"), dict) else {}
    truth = {name: float(data[f"true_{name}"]) for name in ("w", "b")
             if isinstance(data.get(f"true_{name}"), (int, float)) and not isinstance(data.get(f"true_{name}"), bool)}
    initial = run.config().model.initial_values()
    name = summary.get("name") if isinstance(summary.get("name"), str) else run.path.name
    return Curves(run.label() or name, x_name, x, columns, truth, initial)


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def save_png(figure: Figure, path: Path) -> Path:
    """Write the figure as a PNG file, atomically."""
    atomic_write(path, png_bytes(figure))
    return path


def finish_axes(ax, title: str, x_name: str) -> None:
    """Title, axis label, integer ticks, grid and a legend beside the axes."""
    ax.set_title(title)
    ax.set_xlabel(x_name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs and steps are whole numbers
    xs = {x for line in ax.get_lines() for x in line.get_xdata()}
    if len(xs) == 1:  # one epoch: a point in the middle of a unit-wide axis, not a 0.1-wide one
        (x,) = xs
        ax.set_xlim(x - 1, x + 1)
    ax.ticklabel_format(axis="y", useOffset=False)  # values as they are, not offsets from one of them
    ax.grid(True, alpha=0.3)
    # Beside the axes, not on them: a legend inside may cover the very points it names.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def write_run_plots(run_dir: str | Path) -> list[Path]:
    """plots/<metric>.png (train vs validation) for the loss and each metric, and
    plots/parameters.png (w and b against their true values) for a linear model."""
    run = RunDir(Path(run_dir))
    curves = read_curves(run)
    folder = run.path / PLOTS
    written = []
    for metric in curves.metrics():
        written.append(save_png(metric_figure(curves, metric), folder / f"{_file_stem(metric)}.png"))
    if "w" in curves.columns and "b" in curves.columns:
        figure = Figure(figsize=(9.6, 4.0))
        figure.subplots_adjust(**_margins(9.6, 4.0), wspace=0.75)  # room for the left plot's legend
        for ax, name in zip(figure.subplots(1, 2), ("w", "b")):
            ax.plot(*curves.parameter(name), marker=".", label=f"trained {name}")
            if name in curves.truth:
                ax.axhline(curves.truth[name], color="gray", linestyle="--",
                           label=f"true {name} = {curves.truth[name]:g}")
            finish_axes(ax, f"{curves.label}: {name}", curves.x_name)
        written.append(save_png(figure, folder / f"{PARAMETERS}.png"))
    return written


def _margins(width: float, height: float) -> dict[str, float]:
    """subplots_adjust's margins (figure fractions) for a run's own plots of `width` x `height`
    inches, from fixed room in inches: tick labels and axis label left and below, the title
    above, the legend (finish_axes) on the right.
    Every run writes these, so they are laid out once, not measured: matplotlib's constrained
    layout draws a figure twice to measure it, which was a tenth of a small run's time."""
    return {"left": 0.8 / width, "right": 1 - 1.3 / width, "bottom": 0.55 / height, "top": 1 - 0.4 / height}


def metric_figure(curves: Curves, metric: str) -> Figure:
    """One run's train (solid) and validation (dashed) curve of `metric`."""
    figure = Figure(figsize=(6.4, 4.0))
    figure.subplots_adjust(**_margins(6.4, 4.0))
    ax = figure.add_subplot()
    plot_pair(ax, curves, metric, label_prefix="", color=None)
    finish_axes(ax, f"{curves.label}: {metric}", curves.x_name)
    return figure


def plot_pair(ax, curves: Curves, metric: str, label_prefix: str, color) -> None:
    """Train (solid) and validation (dashed) curves of one metric, in one color per run."""
    drawn = None
    if metric in curves.columns:
        (drawn,) = ax.plot(curves.x, curves.columns[metric], marker=".", color=color,
                           label=f"{label_prefix}train")
    if f"val_{metric}" in curves.columns:
        ax.plot(curves.x, curves.columns[f"val_{metric}"], marker=".", linestyle="--",
                color=drawn.get_color() if drawn is not None else color, label=f"{label_prefix}validation")


def _file_stem(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", metric)
