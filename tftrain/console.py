"""What tftrain prints to the console: the model summary, data lines, metric tables."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table


def say(console: Console, text: str) -> None:
    """One plain message: no markup, no highlighting, never wrapped (paths stay copyable)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


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
    for layer in model.layers:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        row = [layer.name, type(layer).__name__, str(tuple(shape)) if shape is not None else "?",
               f"{layer.count_params():,}"]
        table.add_row(*row, *([f"{sum(_count(w) for w in layer.trainable_weights):,}"] if frozen else []))
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
    lines = [f"data: {info['source']}"]
    for split in ("train", "test"):
        if split in info:
            s = info[split]
            lines.append(f"  {split}: x {tuple(s['x_shape'])} {s['x_dtype']}, y {tuple(s['y_shape'])} {s['y_dtype']}")
    if info.get("num_classes"):
        names = info.get("class_names")
        shown = f" ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})" if names else ""
        lines.append(f"  classes: {info['num_classes']}{shown}")
    if info.get("validation"):
        lines.append(f"  validation: {info['validation']}")
    return "\n".join(lines)


def metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    """A two-column table of metric name and value."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    return table


def print_table(console: Console, table: Table) -> None:
    """Fitted to a terminal's width; at its natural width in pipes and CI logs, where nothing
    re-wraps lines and a squeezed or cropped cell would only lose information."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.measure import Measurement

    width = Measurement.get(console, console.options.update(width=1000), table).maximum
    Console(width=max(console.width, width), stderr=console.stderr, quiet=console.quiet,
            file=console.file).print(table)
