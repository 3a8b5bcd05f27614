"""`tftrain plot`: the curves of several runs overlaid in one PNG figure (a run's own plots/
are tftrain.runs.plots, which reads the curves this draws)."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from tftrain.errors import UserError
from tftrain.runs import RunDir, check_output
from tftrain.runs.plots import Curves, finish_axes, plot_pair, read_curves, save_png


def _axes_for(figure: Figure, count: int):
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure.set_size_inches(7.0 * columns, 3.6 * rows)  # room for the legend beside each panel
    return [figure.add_subplot(rows, columns, i + 1) for i in range(count)]


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
    finish_axes(ax, "learning rate", drawn[0].x_name)
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
    if not panels:  # a damaged history.csv (only an epoch column): nothing to draw
        raise UserError(f"{', '.join(c.label for c in all_curves)[:200]}: history.csv has no metric columns to plot "
                        "(the file is damaged)")
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
                plot_pair(ax, curves, panel, label_prefix=f"{curves.label} ", color=color)
        finish_axes(ax, panel, x_name)
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
