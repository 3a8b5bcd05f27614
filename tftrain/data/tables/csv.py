"""`csv`: a table with a header row; one column is the target, every other column a numeric feature.

The target decides the task: integers (0, 1, 2, ...) are class labels, other numbers are
regression targets, and text ("setosa", "virginica") names classes, numbered in sorted order.
Read with the standard csv module and NumPy (no pandas dependency for one file format).

Files larger than `data.in_memory_max_mb` stream (tftrain.data.pipeline.streaming reads their lines,
tf.io.decode_csv parses each batch): they are read once before training, in chunks, with the
same checks and messages (file, line, column) and the same reading of the target.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import (
    MAX_CLASSES,
    MAX_DISTINCT,
    LabelSummary,
    LoadedData,
    RecordFiles,
    StreamedData,
    class_count,
    first_line,
    first_non_number,
    fits_in_memory,
    streaming_reason,
)
from tftrain.errors import DataError
from tftrain.safe_files import describe, is_data_file

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

MAX_COLUMNS = 16_384  # a header's columns: each becomes a feature, a decode_csv default, a table row
CHUNK_ROWS = 65_536  # rows checked at a time when a file streams: bounded memory


def load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """Features (N, F) float32, and int32 class labels (N,) or float32 targets (N, 1)."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the csv dataset needs a CSV file with a header row "
                        "(options.label names the target column)")
    train_path = _existing(cfg.path, "data.path")
    test_path = _existing(options["test_path"], "data.options.test_path") if options["test_path"] else None
    label, delimiter = options["label"], options["delimiter"]
    nbytes = sum(p.stat().st_size for p in (train_path, test_path) if p is not None)
    if not fits_in_memory(cfg.in_memory_max_mb, nbytes):  # the text's size: its arrays are about as large
        return _streamed(train_path, test_path, options, streaming_reason(cfg.in_memory_max_mb, nbytes))
    train = read_table(train_path, label, delimiter, options["encoding"])
    features, x_train = train.features, train.x
    test = read_table(test_path, label, delimiter, options["encoding"]) if test_path is not None else None
    if test is not None and test.features != features:
        raise DataError(f"{test_path}: feature columns {', '.join(test.features)} differ from "
                        f"{train_path}'s {', '.join(features)}")
    x_test = test.x if test is not None else None
    y_train, y_test, class_names = _targets([t for t in (train, test) if t is not None], label, options["task"])
    classification = y_train.dtype == np.int32
    read = str(train_path) + (f" (test: {test_path})" if test_path else "")
    return LoadedData(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=(len(class_names) if class_names else class_count(y_train, y_test)) if classification else None,
        source=f"{read}: {len(features)} feature columns, target '{label}' "
               f"({'classes' if classification else 'regression'})",
        class_names=class_names,
        extra={"features": features, "label": label},
    )


@dataclass(frozen=True)
class Table:
    """One CSV file, split into features and the (still textual) target column."""

    path: Path
    features: list[str]
    x: np.ndarray  # (N, F) float32
    target: np.ndarray  # (N,) stripped strings
    lines: np.ndarray  # (N,) the line each row came from, for error messages


def _rows(path: Path, delimiter: str, encoding: str = "utf-8-sig") -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of each non-blank row (a quoted field may span lines)."""
    try:
        with open(path, newline="", encoding=encoding) as f:  # utf-8-sig: drops Excel's byte-order mark
            reader = csv.reader(f, delimiter=delimiter)
            before = 0
            for row in reader:
                if any(c.strip() for c in row):  # blank lines are skipped; line numbers kept for messages
                    yield before + 1, reader.line_num, row
                before = reader.line_num
    except (OSError, UnicodeDecodeError, LookupError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({first_line(exc)}; data.options.encoding: {encoding})") from None


def _header(path: Path, rows: Iterator, label: str) -> tuple[list[str], int]:
    """The checked header row, and its (last) line."""
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty; expected a header row and data rows")
    if len(first[2]) > MAX_COLUMNS:
        raise DataError(f"{path}: the header has {len(first[2]):,} columns; a table has at most {MAX_COLUMNS:,} "
                        "(store wide rows as an .npz array or TFRecord features)")
    header = [name.strip() for name in first[2]]
    duplicates = sorted(n for n, count in Counter(header).items() if count > 1)
    if duplicates:
        raise DataError(f"{path}: duplicate column names {', '.join(duplicates)} in the header")
    if label not in header:
        close = difflib.get_close_matches(label, header, n=1)
        raise DataError(f"data.options.label: column '{label}' is not in {path} (columns: "
                        f"{', '.join(header)})" + (f" — did you mean '{close[0]}'?" if close else ""))
    if len(header) < 2:
        raise DataError(f"{path}: only the target column '{label}'; expected at least one feature column")
    return header, first[1]


def _table(path: Path, header: list[str], label: str, body: list) -> Table:
    """Rows (first line, last line, cells) under `header` -> a Table (fields counted, features numeric)."""
    for line, _, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields; the header has {len(header)}")
    lines = np.array([line for line, _, _ in body])
    table = np.char.strip(np.array([row for _, _, row in body], dtype=str))
    target = header.index(label)
    features = [n for i, n in enumerate(header) if i != target]
    x = _numeric(path, np.delete(table, target, axis=1), features, lines)
    return Table(path, features, x, table[:, target], lines)


def read_table(path: Path, label: str, delimiter: str, encoding: str = "utf-8-sig") -> Table:
    """Read a CSV file with a header; every column but `label` must be numeric."""
    rows = _rows(path, delimiter, encoding)
    header, _ = _header(path, rows, label)
    body = list(rows)
    if not body:
        raise DataError(f"{path}: a header but no data rows")
    return _table(path, header, label, body)


def _numeric(path: Path, cells: np.ndarray, names: list[str], lines: np.ndarray) -> np.ndarray:
    """String cells -> float32, or a DataError naming the first bad cell's line and column."""
    try:
        x = cells.astype(np.float64)
    except ValueError:
        x = None
    if x is not None and np.isfinite(x).all():
        return x.astype(np.float32)
    row, col, cell = first_non_number(cells)
    what = "an empty value" if cell == "" else f"'{cell}'"
    raise DataError(f"{path}: line {lines[row]}, column '{names[col]}': {what}; every feature "
                    "column must hold finite numbers (encode text and fill missing values first)")


def _targets(tables: list[Table], label: str, task: str):
    """Target columns (train[, test]) as strings -> (y_train, y_test, class_names).

    task auto: integers >= 0 are class labels, other numbers regression targets, text class names.
    """
    columns = [t.target for t in tables]
    joined = np.concatenate(columns)
    origins = [(t.path, line) for t in tables for line in t.lines]

    def where(i: int) -> str:  # file and line of the i-th target across both files
        return f"{origins[i][0]}: line {origins[i][1]}"

    empty = np.flatnonzero(joined == "")
    if empty.size:
        raise DataError(f"{where(int(empty[0]))}, column '{label}': empty target value")
    numbers = np.array([_to_float(cell) for cell in joined])
    numeric = ~np.isnan(numbers)
    if numeric.any() and not numeric.all():
        bad = int(np.flatnonzero(numeric if not numeric[0] else ~numeric)[0])
        raise DataError(f"{where(bad)}, column '{label}': '{joined[bad]}' mixes with "
                        f"{'text' if numeric[bad] else 'numbers'} elsewhere in the column; "
                        "the target must be all numbers or all class names")
    splits = np.cumsum([len(c) for c in columns])[:-1]
    if not numeric.any():  # class names, numbered in sorted order so row order does not matter
        if task == "regression":
            raise DataError(f"{where(0)}, column '{label}': '{joined[0]}' is text; options.task "
                            "regression needs numbers")
        class_names, codes = np.unique(joined, return_inverse=True)
        y = np.split(codes.astype(np.int32), splits)
        return y[0], (y[1] if len(y) > 1 else None), tuple(class_names.tolist())
    whole = np.all(numbers == np.round(numbers)) and numbers.min() >= 0
    if task == "classification" and not whole:
        bad = int(np.flatnonzero((numbers != np.round(numbers)) | (numbers < 0))[0])
        raise DataError(f"{where(bad)}, column '{label}': {joined[bad]} is not a class index (0, 1, 2, ...) "
                        "as options.task classification needs")
    if task == "classification" or (task == "auto" and whole and all(_is_integer(c) for c in columns)):
        if numbers.max() >= MAX_CLASSES:  # checked before the int32 cast, which would wrap it
            bad = int(np.argmax(numbers))
            raise DataError(f"data.options.task: {where(bad)}, column '{label}': class index {joined[bad]} would need "
                            f"{int(numbers[bad]) + 1:,} outputs (at most {MAX_CLASSES:,}); if the target is a "
                            "quantity, set data.options.task: regression")
        y = np.split(numbers.astype(np.int32), splits)  # class labels
    else:
        y = np.split(numbers.astype(np.float32)[:, None], splits)  # (N, 1): one regression output
    return y[0], (y[1] if len(y) > 1 else None), None


def _to_float(cell: str) -> float:
    """A finite number, or NaN for text (and for nan/inf, which are not usable targets)."""
    try:
        value = float(cell)
    except ValueError:
        return float("nan")
    return value if np.isfinite(value) else float("nan")


def _is_integer(column: np.ndarray) -> bool:
    """Every cell is written as an integer ("3", not "3.0")."""
    try:
        column.astype(np.int64)
        return True
    except (ValueError, OverflowError):
        return False


def _existing(path: str, key: str) -> Path:
    file = Path(path).expanduser()
    if not is_data_file(file):  # a FIFO would block the reader forever
        raise DataError(f"{key}: {file} {describe(file)}; expected a CSV file with a header row")
    return file


# ---------------------------------------------------------------------------------------------
# Streamed files: read once in chunks (the same checks), then by lines while training


@dataclass
class TargetScan:
    """What the target column of a streamed file holds, gathered chunk by chunk."""

    path: Path
    label: str
    first: tuple[int, bool] | None = None  # the first target's line and whether it is a number
    numbers: int = 0
    low: float = np.inf
    high: float = -np.inf
    whole: bool = True  # every number a whole number >= 0...
    written_as_integers: bool = True  # ...written as one ("3", not "3.0")
    texts: set = field(default_factory=set)
    values: set | None = field(default_factory=set)  # distinct whole numbers, up to MAX_DISTINCT


@dataclass(frozen=True)
class ScannedTable:
    path: Path
    header: list[str]
    header_lines: int  # lines up to the header, skipped when streaming
    rows: int
    target: TargetScan

    @property
    def features(self) -> list[str]:
        return [name for name in self.header if name != self.target_name]

    @property
    def target_name(self) -> str:
        return self.target.label


def scan_table(path: Path, label: str, delimiter: str, task: str) -> ScannedTable:
    """Read a CSV file chunk by chunk with read_table's checks (and its messages), keeping only
    what streaming it needs: the row count and what its target column holds."""
    rows = _rows(path, delimiter)
    header, header_line = _header(path, rows, label)
    target, count, chunk = TargetScan(path, label), 0, []
    for row in rows:
        if row[1] != row[0]:
            raise DataError(f"{path}: line {row[0]}: a quoted field spans lines {row[0]}-{row[1]}, which a "
                            "streamed CSV cannot read (it reads a row per line): raise data.in_memory_max_mb, "
                            "or convert the file to TFRecord (tftrain convert)")
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            _scan_chunk(path, header, label, chunk, target, task)
            count, chunk = count + len(chunk), []
    if chunk:
        _scan_chunk(path, header, label, chunk, target, task)
        count += len(chunk)
    if not count:
        raise DataError(f"{path}: a header but no data rows")
    return ScannedTable(path, header, header_line, count, target)


def _scan_chunk(path: Path, header: list[str], label: str, chunk: list, scan: TargetScan, task: str) -> Table:
    table = _table(path, header, label, chunk)
    scan_targets(table, scan, task)
    return table


def scan_targets(table: Table, scan: TargetScan, task: str) -> None:
    """Add a chunk of a streamed file's target column (`table.target`, `table.lines`) to `scan`,
    with the checks _targets makes in memory (and their messages)."""
    path, label = table.path, scan.label
    for line, cell in zip(table.lines, table.target):
        if cell == "":
            raise DataError(f"{path}: line {line}, column '{label}': empty target value")
    numbers = np.array([_to_float(cell) for cell in table.target])
    numeric = ~np.isnan(numbers)
    if scan.first is None:
        scan.first = (int(table.lines[0]), bool(numeric[0]))
    differ = np.flatnonzero(numeric != scan.first[1])
    if differ.size:
        bad = int(differ[0])
        raise DataError(f"{path}: line {table.lines[bad]}, column '{label}': '{table.target[bad]}' mixes with "
                        f"{'text' if numeric[bad] else 'numbers'} elsewhere in the column; "
                        "the target must be all numbers or all class names")
    if not scan.first[1]:
        if task == "regression":
            raise DataError(f"{path}: line {scan.first[0]}, column '{label}': '{table.target[0]}' is text; "
                            "options.task regression needs numbers")
        scan.texts.update(table.target.tolist())
        if len(scan.texts) > MAX_DISTINCT:
            raise DataError(f"{path}, column '{label}': more than {MAX_DISTINCT:,} class names")
        return
    scan.numbers += len(numbers)
    scan.low, scan.high = min(scan.low, float(numbers.min())), max(scan.high, float(numbers.max()))
    whole = (numbers == np.round(numbers)) & (numbers >= 0)
    if task == "classification" and not whole.all():
        bad = int(np.flatnonzero(~whole)[0])
        raise DataError(f"{path}: line {table.lines[bad]}, column '{label}': {table.target[bad]} is not a class "
                        "index (0, 1, 2, ...) as options.task classification needs")
    scan.whole = scan.whole and bool(whole.all())
    scan.written_as_integers = scan.written_as_integers and _is_integer(table.target)
    if scan.values is not None and scan.whole:
        scan.values.update(int(v) for v in np.unique(numbers))
        scan.values = scan.values if len(scan.values) <= MAX_DISTINCT else None


def _task(scans: list[TargetScan], task: str) -> tuple[str, tuple[str, ...] | None]:
    """How the target is read: `names` (text classes, numbered in sorted order), `classes`
    (integers) or `regression`, as _targets reads a column in memory."""
    if not scans[0].first[1]:
        return "names", tuple(sorted(set().union(*(s.texts for s in scans))))
    whole = all(s.whole for s in scans)
    if task == "classification" or (task == "auto" and whole and all(s.written_as_integers for s in scans)):
        return "classes", None
    return "regression", None


def _streamed(train_path: Path, test_path: Path | None, options: dict, reason: str) -> StreamedData:
    """A CSV too large for memory, checked once and described for tftrain.data.pipeline.streaming."""
    label, delimiter, task = options["label"], options["delimiter"], options["task"]
    tables = [scan_table(train_path, label, delimiter, task)]
    if test_path is not None:
        tables.append(scan_table(test_path, label, delimiter, task))
        if tables[1].features != tables[0].features:
            raise DataError(f"{test_path}: feature columns {', '.join(tables[1].features)} differ from "
                            f"{train_path}'s {', '.join(tables[0].features)}")
        if tables[1].target.first[1] != tables[0].target.first[1]:
            raise DataError(f"{test_path}, column '{label}': its targets are {'numbers' if tables[1].target.first[1] else 'text'}"
                            f" but {train_path}'s are {'numbers' if tables[0].target.first[1] else 'text'}")
    kind, class_names = _task([t.target for t in tables], task)
    features = tables[0].features
    decode = _line_decoder(tables[0].header, label, delimiter, kind, class_names)
    splits = [RecordFiles((str(t.path),), (t.rows,), decode, "text", skips=(t.header_lines,),
                          blank=r"[\s" + re.escape(delimiter) + r"]*", nbytes=t.path.stat().st_size) for t in tables]
    summaries = [_summary(t, kind, class_names) for t in tables]
    num_classes = len(class_names) if class_names else (
        int(max(s.high for s in summaries)) + 1 if kind == "classes" else None)
    read = str(train_path) + (f" (test: {test_path})" if test_path else "")
    return StreamedData(
        train=splits[0], test=splits[1] if len(splits) > 1 else None, input_shape=(len(features),),
        input_dtype="float32", label_shape=() if kind != "regression" else (1,),
        label_dtype="int32" if kind != "regression" else "float32",
        train_labels=summaries[0], test_labels=summaries[1] if len(summaries) > 1 else None,
        num_classes=num_classes, class_names=class_names, reason=reason,
        source=f"{read}: {len(features)} feature columns, target '{label}' "
               f"({'regression' if kind == 'regression' else 'classes'}), {tables[0].rows:,} rows",
        extra={"features": features, "label": label},
    )


def _summary(table: ScannedTable, kind: str, class_names) -> LabelSummary:
    scan = table.target
    if kind == "names":
        codes = sorted(class_names.index(t) for t in scan.texts)
        return LabelSummary("int32", (), table.rows, float(codes[0]), float(codes[-1]), tuple(codes))
    values = tuple(sorted(scan.values)) if kind == "classes" and scan.values is not None else None
    return LabelSummary("int32" if kind == "classes" else "float32", () if kind == "classes" else (1,),
                        table.rows, scan.low, scan.high, values)


def _line_decoder(header: list[str], label: str, delimiter: str, kind: str, class_names):
    """A batch of CSV lines -> (features (B, F) float32, targets), in TensorFlow ops."""
    import tensorflow as tf

    targets = target_decoder(kind, class_names)

    def decode(lines):
        cells = csv_cells(lines, len(header), delimiter)
        target = header.index(label)
        x = tf.stack([tf.strings.to_number(c, tf.float32) for i, c in enumerate(cells) if i != target], axis=1)
        return x, targets(cells[target])

    return decode


def csv_cells(lines, columns: int, delimiter: str) -> list:
    """A batch of CSV lines -> its `columns` columns of stripped cells (string tensors)."""
    import tensorflow as tf

    lines = tf.strings.regex_replace(lines, "\r$", "")  # Windows line ends
    cells = tf.io.decode_csv(lines, record_defaults=[tf.constant("", tf.string)] * columns, field_delim=delimiter)
    return [tf.strings.strip(c) for c in cells]


def target_decoder(kind: str, class_names):
    """Target cells (a string tensor) -> labels as _task reads them: class names numbered in
    sorted order, class indices, or (B, 1) regression targets, in TensorFlow ops."""
    import tensorflow as tf

    table = None
    if kind == "names":  # made once, outside the pipeline's functions, which capture it
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(class_names), tf.range(len(class_names), dtype=tf.int32)), default_value=-1)

    def decode(y):
        if table is not None:
            return table.lookup(y)
        if kind == "classes":
            return tf.cast(tf.strings.to_number(y, tf.float64), tf.int32)
        return tf.strings.to_number(y, tf.float32)[:, None]

    return decode
