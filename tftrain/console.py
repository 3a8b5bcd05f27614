"""What tftrain prints to the console: the model summary, data lines, metric tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def say(console: Console, text: str) -> None:
    """One plain message: no markup, no highlighting, never wrapped (paths stay copyable)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


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
