"""What tftrain prints to the console: the model summary, data lines, metric tables."""

from __future__ import annotations

from typing import Any

from rich import table as rich_table
from rich.console import Console
from rich.text import Text

from tftrain.schema import printable


def visible(value: Any) -> str:
    """A value from a file or config as the console shows it: whole, with control, bidi and
    zero-width characters made visible (tftrain.schema.printable), so a class name, layer name,
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


def model_table(model) -> Table:
    """Layer, type, output shape and parameter count for each layer, plus the total."""
    table = Table(title=f"model: {model.name}", title_justify="left")
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for layer in model.layers:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        table.add_row(layer.name, type(layer).__name__, str(tuple(shape)) if shape is not None else "?",
                      f"{layer.count_params():,}")
    table.add_section()
    table.add_row("total", "", "", f"{model.count_params():,}")
    return table


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
