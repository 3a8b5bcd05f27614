"""PNG curves from history.csv: one run's plots/ folder, and `tftrain plot` overlays of several runs.

Figures are made with matplotlib's object-oriented API (`matplotlib.figure.Figure` renders PNG
through Agg by itself), so no pyplot, no display and no global backend switch is ever involved.
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
from tftrain.runs import HISTORY, PLOTS, RunDir, atomic_write, check_output
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


def _axes_for(figure: Figure, count: int):
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure.set_size_inches(7.0 * columns, 3.6 * rows)  # room for the legend beside each panel
    return [figure.add_subplot(rows, columns, i + 1) for i in range(count)]


def _finish(ax, title: str, x_name: str) -> None:
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
        figure = Figure(figsize=(9.6, 4.0), layout="constrained")
        for ax, name in zip(figure.subplots(1, 2), ("w", "b")):
            ax.plot(*curves.parameter(name), marker=".", label=f"trained {name}")
            if name in curves.truth:
                ax.axhline(curves.truth[name], color="gray", linestyle="--",
                           label=f"true {name} = {curves.truth[name]:g}")
            _finish(ax, f"{curves.label}: {name}", curves.x_name)
        written.append(save_png(figure, folder / f"{PARAMETERS}.png"))
    return written


def metric_figure(curves: Curves, metric: str) -> Figure:
    """One run's train (solid) and validation (dashed) curve of `metric`."""
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = figure.add_subplot()
    _plot_pair(ax, curves, metric, label_prefix="", color=None)
    _finish(ax, f"{curves.label}: {metric}", curves.x_name)
    return figure


def _plot_pair(ax, curves: Curves, metric: str, label_prefix: str, color) -> None:
    """Train (solid) and validation (dashed) curves of one metric, in one color per run."""
    drawn = None
    if metric in curves.columns:
        (drawn,) = ax.plot(curves.x, curves.columns[metric], marker=".", color=color,
                           label=f"{label_prefix}train")
    if f"val_{metric}" in curves.columns:
        ax.plot(curves.x, curves.columns[f"val_{metric}"], marker=".", linestyle="--",
                color=drawn.get_color() if drawn is not None else color, label=f"{label_prefix}validation")


def overlay_plot(run_dirs: list[str | Path], output: str | Path, force: bool = False) -> Path:
    """One figure, one panel per metric (and for w and b), every run in its own color; a sweep or
    study folder stands for its members (those with a history), each labelled by its values. An
    existing file is replaced only with `force`, a run's own files never."""
    output = check_output(output, force)
    if output.suffix.lower() != ".png":
        raise UserError(f"--output: expected a .png file name, got {str(output)!r}")
    return save_png(overlay_figure(overlay_curves(run_dirs)), output)


def overlay_curves(run_dirs: list[str | Path]) -> list[Curves]:
    """The curves of the runs (and of the members of sweep and study folders) to overlay."""
    from tftrain.commands.runs import group_members, is_group

    all_curves = []
    for path in map(Path, run_dirs):
        if path.is_dir() and is_group(path):
            members = [run for run in group_members(path) if run.history()]
            if not members:
                raise UserError(f"{path}: no member has trained an epoch yet")
            all_curves += [read_curves(run) for run in members]
        else:
            all_curves.append(read_curves(RunDir.open(path)))
    return all_curves


def learning_rate_figure(all_curves: list[Curves]) -> Figure | None:
    """The learning rate each epoch (or log interval) trained with, a line per run (None: no
    run logged one)."""
    drawn = [c for c in all_curves if "lr" in c.columns and any(math.isfinite(v) for v in c.columns["lr"])]
    if not drawn:
        return None
    figure = Figure(figsize=(7.0, 3.0), layout="constrained")
    ax = figure.add_subplot(1, 1, 1)
    for i, curves in enumerate(drawn):
        ax.plot(curves.x, curves.columns["lr"], marker=".", color=f"C{i % 10}", label=curves.label)
    _finish(ax, "learning rate", drawn[0].x_name)
    ax.get_legend().remove()  # under the panel, as the metrics' (overlay_figure's legend_below)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(3, len(drawn)),
                  fontsize="small")
    return figure


def overlay_figure(all_curves: list[Curves], legend_below: bool = False) -> Figure:
    """The figure of `overlay_plot`: a panel per metric (and w, b), a color per run;
    `legend_below`: one legend for the figure under its panels (long run labels then squeeze no
    panel), else one beside each panel."""
    metrics: list[str] = []
    for curves in all_curves:
        metrics += [m for m in curves.metrics() if m not in metrics]
    panels = metrics + [p for p in ("w", "b") if any(p in c.columns for c in all_curves)]
    figure = Figure(layout="constrained")
    axes = _axes_for(figure, len(panels))
    x_names = {c.x_name for c in all_curves}
    x_name = x_names.pop() if len(x_names) == 1 else "epoch / step"
    colors = [f"C{i % 10}" for i in range(len(all_curves))]
    for ax, panel in zip(axes, panels):
        truths_drawn = set()
        for curves, color in zip(all_curves, colors):
            if panel in ("w", "b"):
                if panel in curves.columns:
                    ax.plot(*curves.parameter(panel), marker=".", color=color, label=curves.label)
                truth = curves.truth.get(panel)
                if truth is not None and truth not in truths_drawn:  # runs on the same data share one line
                    truths_drawn.add(truth)
                    ax.axhline(truth, color="gray", linestyle="--", label=f"true {panel} = {truth:g}")
            else:
                _plot_pair(ax, curves, panel, label_prefix=f"{curves.label} ", color=color)
        _finish(ax, panel, x_name)
        if legend_below:
            ax.get_legend().remove()
    if legend_below and axes:
        handles, labels = {}, []
        for ax in axes:  # every panel's entries once (train/validation of each run, true w and b)
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in handles:
                    handles[label] = handle
                    labels.append(label)
        figure.legend([handles[label] for label in labels], labels, loc="outside lower center",
                      ncols=min(3, len(labels)), fontsize="small")
    return figure


def _file_stem(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", metric)
