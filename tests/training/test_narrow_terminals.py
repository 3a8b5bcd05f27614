"""Issue 32, item 8: a table wider than the terminal folds its cells onto more lines instead of
cutting run names to an ellipsis (they are what users copy into the next command)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table


def test_a_wide_table_folds_on_a_narrow_terminal_and_keeps_its_natural_width_in_a_pipe():
    from tftrain.console import print_table

    name = "fashion-mnist-cnn-3-learning_rate-0.001_batch_size-128-20261206-180102"

    def table():
        t = Table()
        t.add_column("run", no_wrap=True)
        for column in ("status", "progress", "best", "took"):
            t.add_column(column)
        t.add_row(name, "completed", "15/15 epochs", "val_loss=0.2391 @12", "5m 31s")
        return t

    out = io.StringIO()
    print_table(Console(file=out, force_terminal=True, width=60, color_system=None), table())
    text = out.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 60
    cells = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.count("│") > 2)
    assert name in cells  # every character of the name is there, folded over several lines
    piped = io.StringIO()
    print_table(Console(file=piped, force_terminal=False, width=60), table())
    assert any(name in line for line in piped.getvalue().splitlines())
