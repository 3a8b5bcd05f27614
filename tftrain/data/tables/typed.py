"""`csv` with `options.columns`, and `jsonl`: tables whose inputs are typed columns.

The loader reads the files as text (tftrain.data.tables.rows), checks every cell the model will
parse (a numeric column's cells are numbers or missing markers), reads the target as the csv
dataset does (integers: classes, text: class names in sorted order, other numbers: regression),
and returns the input columns as an (N, columns) array of text cells. What the cells become is
the model's business (tftrain.data.tables.preprocessing), fitted on the training split by the plan.
Files larger than `data.in_memory_max_mb` stream instead (tftrain.data.tables.streamed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import LoadedData, StreamedData, class_count, fits_in_memory, streaming_reason
from tftrain.data.tables.csv import _targets
from tftrain.data.tables.rows import RAW_ROWS, Rows, as_table, check_numbers, present_column, read_rows
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig



def load_csv(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """A CSV file with a header row and typed `columns` (streamed past data.in_memory_max_mb)."""
    return _load(cfg, "csv")


def load_jsonl(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """A JSON Lines file: one object per line, `columns` and `label` naming its keys (streamed
    past data.in_memory_max_mb)."""
    return _load(cfg, "jsonl")


def _load(cfg: DataConfig, fmt: str) -> LoadedData | StreamedData:
    options = cfg.options
    what = "a CSV file with a header row" if fmt == "csv" else "a JSON Lines file (one JSON object per line)"
    if cfg.path is None:
        raise DataError(f"data.path: the {cfg.dataset} dataset needs {what} (options.label names the target)")
    names, label = list(options["columns"]), options["label"]
    paths = [_existing(cfg.path, "data.path", what)]
    if options["test_path"]:
        paths.append(_existing(options["test_path"], "data.options.test_path", what))
    nbytes = sum(p.stat().st_size for p in paths)
    if not fits_in_memory(cfg.in_memory_max_mb, nbytes):
        if isinstance(label, list):  # the streamed decoder reads one label column
            raise DataError(f"data.options.label: several outputs ({', '.join(label)}) are read in memory only, and "
                            f"{paths[0].name} needs streaming ({streaming_reason(cfg.in_memory_max_mb, nbytes)}); "
                            "raise data.in_memory_max_mb or train one output per run")
        from tftrain.data.tables.streamed import load_streamed  # it builds on this module's checks

        return load_streamed(cfg, fmt, paths, streaming_reason(cfg.in_memory_max_mb, nbytes))
    tables = [_read(path, fmt, options) for path in paths]
    if isinstance(label, list):  # several outputs: one label column each
        from tftrain.data.tables.outputs import several_labels

        return several_labels(tables, names, options, as_table, check_numbers, what=f"{len(names)} typed columns")
    y_train, y_test, class_names = _targets([as_table(t, names, label) for t in tables], label, options["task"])
    for table in tables:
        check_numbers(table, names, options)
    x = [np.asarray(t.cells[:, [t.header.index(n) for n in names]], dtype=object) for t in tables]
    classification = y_train.dtype == np.int32
    read = str(tables[0].path) + (f" (test: {tables[1].path})" if len(tables) > 1 else "")
    kinds = {name: options["columns"][name]["type"] for name in names}
    return LoadedData(
        x_train=x[0], y_train=y_train, x_test=x[1] if len(x) > 1 else None, y_test=y_test,
        num_classes=(len(class_names) if class_names else class_count(y_train, y_test)) if classification else None,
        source=f"{read}: {len(names)} typed columns ({', '.join(f'{n}: {k}' for n, k in kinds.items())}), "
               f"target '{label}' ({'classes' if classification else 'regression'})",
        class_names=class_names,
        extra={"features": names, "label": label, "columns": kinds, RAW_ROWS: True},
    )


def _existing(path: str, key: str, what: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{key}: {file} does not exist; expected {what}")
    return file


def _read(path: Path, fmt: str, options: dict) -> Rows:
    """The file's rows, with every named column (and the label) present."""
    labels = options["label"] if isinstance(options["label"], list) else [options["label"]]
    keys = [*options["columns"], *labels]
    rows = read_rows(path, fmt, options["encoding"], options.get("delimiter", ","), keys=keys if fmt == "jsonl" else None)
    for name in options["columns"]:
        present_column(rows, f"data.options.columns.{name}", name)
    for name in labels:
        present_column(rows, "data.options.label", name)
    return rows
