"""What tftrain prints to the console: the model summary, data lines, metric tables."""

from __future__ import annotations

import math
from typing import Any

from rich import table as rich_table
from rich.console import Console
from rich.text import Text

from tftrain.spec.base import printable


def visible(value: Any) -> str:
    """A value from a file or config as the console shows it: whole, with control, bidi and
    zero-width characters made visible (tftrain.spec.base.printable), so a class name, layer name,
    file name or summary field cannot clear the screen, forge a line or reorder one."""
    return printable(str(value), limit=None)


def cell(value: Any):
    """A table cell: text as it is (no rich markup: `[red]` stays `[red]`), escaped; other
    renderables as they are."""
    return Text(visible(value)) if isinstance(value, str) else value


class Table(rich_table.Table):
    """rich's Table whose title, column headers and cells are plain escaped text (never markup).
    Every table tftrain prints is one of these."""

    def __init__(self, *headers, title: Any = None, **kwargs):
        super().__init__(*map(cell, headers), title=cell(title) if title is not None else None, **kwargs)

    def add_column(self, header: Any = "", *args, **kwargs) -> None:
        super().add_column(cell(header), *args, **kwargs)

    def add_row(self, *renderables, **kwargs) -> None:
        super().add_row(*(cell(r) for r in renderables), **kwargs)


def say(console: Console, text: str) -> None:
    """One plain message: no markup, no highlighting, never wrapped (paths stay copyable);
    control characters inside a line are made visible (a message's own line breaks stay)."""
    console.print("\n".join(map(visible, str(text).split("\n"))), markup=False, highlight=False, soft_wrap=True)


def model_layers(model) -> list[dict[str, Any]]:
    """Name, type, output shape and parameter count of each layer (summary.json's `layers`, which
    the report shows without loading the model)."""
    rows = []
    for layer in model.layers:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        rows.append({"name": layer.name, "type": type(layer).__name__,
                     "output_shape": list(shape) if shape is not None else None, "params": layer.count_params()})
    return rows


def model_table(model) -> Table:
    """Layer, type, output shape and parameter count for each layer, plus the total; where some
    weights are frozen (a backbone, LoRA), how many of each layer's parameters train."""
    frozen = bool(model.non_trainable_weights) and any(_count(w) for w in model.non_trainable_weights)
    table = Table(title=f"model: {model.name}", title_justify="left")
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    if frozen:
        table.add_column("trainable", justify="right")
    for layer, row in zip(model.layers, model_layers(model)):
        shape = row["output_shape"]
        cells = [row["name"], row["type"], str(tuple(shape)) if shape is not None else "?", f"{row['params']:,}"]
        table.add_row(*cells, *([f"{sum(_count(w) for w in layer.trainable_weights):,}"] if frozen else []))
    table.add_section()
    trained = sum(_count(w) for w in model.trainable_weights)
    table.add_row("total", "", "", f"{model.count_params():,}", *([f"{trained:,}"] if frozen else []))
    if frozen:
        table.add_row("frozen", "", "", f"{model.count_params() - trained:,}", "")
    return table


def _count(variable) -> int:
    """Values in one variable."""
    return math.prod(variable.shape)


def layers_table(rows: list[tuple[str, str, str, str]], title: str) -> Table:
    """The layers a config lists (groups expanded): index, name, layer, parameters, inputs."""
    table = Table(title=title, title_justify="left")
    for column in ("#", "name", "layer", "parameters", "inputs"):
        table.add_column(column, justify="right" if column == "#" else "left", overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(str(i), *row)
    return table


def data_lines(info: dict[str, Any]) -> str:
    """`data: <files read>` plus one line per split with the array shapes and dtypes."""
    lines = [f"data: {visible(info['source'])}"]
    for split in ("train", "test"):
        if split in info:
            s = info[split]
            lines.append(f"  {split}: x {tuple(s['x_shape'])} {s['x_dtype']}, y {tuple(s['y_shape'])} {s['y_dtype']}")
    if info.get("num_classes"):
        names = info.get("class_names")
        shown = f" ({', '.join(map(visible, names[:10]))}{', ...' if len(names) > 10 else ''})" if names else ""
        lines.append(f"  classes: {info['num_classes']}{shown}")
    if info.get("validation"):
        lines.append(f"  validation: {visible(info['validation'])}")
    if "input" in info:  # the plan's choices, with their reasons (tftrain.training.performance)
        graph = info["input"]
        how = "in-graph (batches gathered inside the compiled step)" if graph["in_graph"] else "tf.data pipeline"
        lines.append(f"  input: {how}: {graph['reason']}")
    if "precision" in info:
        lines.append(f"  precision: {info['precision']['policy']} ({info['precision']['reason']})")
    return "\n".join(lines)


def metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    """A two-column table of metric name and value."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    return table


def results_table(results: dict[str, Any], steps_per_interval: int | None = None) -> Table:
    """The table a run ends with: the final metrics, then the best value of the monitored metric
    and the epoch it came from (in steps mode, `steps_per_interval`: the step), the run's total
    time and its training rate. `results`: what summary.json records (final, best, seconds,
    examples_per_second)."""
    table = metrics_table("final metrics", results.get("final") or {})
    best = results.get("best") or {}
    if best.get("value") is not None and best.get("epoch") is not None:
        at = f"step {best['epoch'] * steps_per_interval}" if steps_per_interval else f"epoch {best['epoch']}"
        table.add_section()
        table.add_row(f"best {best['monitor']}", f"{best['value']:.6g} ({at})")
    seconds = results.get("seconds")
    if seconds is not None:
        whole = int(round(seconds))
        table.add_row("total time", f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}")
    rate = results.get("examples_per_second")
    if rate:
        table.add_row("examples/s (training)", f"{rate:,.0f}")
    return table


def print_table(console: Console, table: Table) -> None:
    """Fitted to a terminal's width, cells folded onto more lines where it is too narrow (a run
    name is what users copy into the next command: never cut to an ellipsis); at its natural
    width in pipes and CI logs, where nothing re-wraps lines and a squeezed or cropped cell
    would only lose information."""
    from rich.measure import Measurement

    width = Measurement.get(console, console.options.update(width=1000), table).maximum
    if console.is_terminal:
        if width > console.width:
            for column in table.columns:
                column.overflow, column.no_wrap = "fold", False
        console.print(table)
        return
    Console(width=max(console.width, width), stderr=console.stderr, quiet=console.quiet,
            file=console.file).print(table)


def print_error(console: Console, error: BaseException) -> None:
    """A tftrain error as `<label>: <line>`, one line each (a config's problems), escaped: a path
    or name the user gave must not send escape sequences to the terminal; a second Ctrl-C as
    `interrupted`."""
    from tftrain.spec.base import printable

    if isinstance(error, KeyboardInterrupt):
        console.print("interrupted", markup=False)
        return
    for line in str(error).splitlines() or [""]:
        console.print(f"{error.label}: {printable(line, limit=2000)}", markup=False, highlight=False, soft_wrap=True)
