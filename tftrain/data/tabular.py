"""`csv`: a table with a header row; one column is the target, every other column a numeric feature.

The target decides the task: integers (0, 1, 2, ...) are class labels, other numbers are
regression targets, and text ("setosa", "virginica") names classes, numbered in sorted order.
Read with the standard csv module and NumPy (no pandas dependency for one file format).
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tftrain.config import DataConfig
from tftrain.data.base import LoadedData, class_count, first_line
from tftrain.errors import DataError


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Features (N, F) float32, and int32 class labels (N,) or float32 targets (N, 1)."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the csv dataset needs a CSV file with a header row "
                        "(options.label names the target column)")
    train_path = _existing(cfg.path, "data.path")
    test_path = _existing(options["test_path"], "data.options.test_path") if options["test_path"] else None
    label, delimiter = options["label"], options["delimiter"]
    train = read_table(train_path, label, delimiter)
    features, x_train = train.features, train.x
    test = read_table(test_path, label, delimiter) if test_path is not None else None
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


def read_table(path: Path, label: str, delimiter: str) -> Table:
    """Read a CSV file with a header; every column but `label` must be numeric."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: drop Excel's byte-order mark
            reader = csv.reader(f, delimiter=delimiter)
            # Blank lines are skipped; line numbers are kept for messages.
            numbered = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({first_line(exc)})") from None
    if not numbered:
        raise DataError(f"{path}: empty; expected a header row and data rows")
    header = [name.strip() for name in numbered[0][1]]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {', '.join(duplicates)} in the header")
    if label not in header:
        close = difflib.get_close_matches(label, header, n=1)
        raise DataError(f"data.options.label: column '{label}' is not in {path} (columns: "
                        f"{', '.join(header)})" + (f" — did you mean '{close[0]}'?" if close else ""))
    if len(header) < 2:
        raise DataError(f"{path}: only the target column '{label}'; expected at least one feature column")
    body = numbered[1:]
    if not body:
        raise DataError(f"{path}: a header but no data rows")
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields; the header has {len(header)}")
    lines = np.array([line for line, _ in body])
    table = np.char.strip(np.array([row for _, row in body], dtype=str))
    target = header.index(label)
    features = [n for i, n in enumerate(header) if i != target]
    x = _numeric(path, np.delete(table, target, axis=1), features, lines)
    return Table(path, features, x, table[:, target], lines)


def _numeric(path: Path, cells: np.ndarray, names: list[str], lines: np.ndarray) -> np.ndarray:
    """String cells -> float32, or a DataError naming the first bad cell's line and column."""
    try:
        x = cells.astype(np.float64)
    except ValueError:
        x = None
    if x is not None and np.isfinite(x).all():
        return x.astype(np.float32)
    for (row, col), cell in np.ndenumerate(cells):
        try:
            ok = np.isfinite(float(cell))
        except ValueError:
            ok = False
        if not ok:
            what = "an empty value" if cell == "" else f"'{cell}'"
            raise DataError(f"{path}: line {lines[row]}, column '{names[col]}': {what}; every feature "
                            "column must hold finite numbers (encode text and fill missing values first)")
    raise AssertionError("unreachable: astype failed but every cell converted")  # pragma: no cover


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
    if not file.is_file():
        raise DataError(f"{key}: {file} does not exist; expected a CSV file with a header row")
    return file
