"""Reading table files (CSV with a header, JSON Lines) into rows of text cells.

Every cell stays text: typed columns are parsed by the model (tftrain.data.tables.layers), so
what trains is exactly what `predict` and the SavedModel are later given. Each row keeps its
line in the file, for messages that name file, line and column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tftrain.data.base import first_line
from tftrain.data.tables.csv import Table
from tftrain.errors import DataError
from tftrain.spec.base import suggest

# What a typed table's LoadedData.extra carries: the model takes raw rows of these columns.
RAW_ROWS = "raw_rows"


@dataclass(frozen=True)
class Rows:
    """One file's rows: the column names and an (N, C) array of stripped text cells."""

    path: Path
    header: list[str]
    cells: np.ndarray  # (N, C) str
    lines: np.ndarray  # (N,) the line each row starts on

    def column(self, name: str) -> np.ndarray:
        return self.cells[:, self.header.index(name)]


def read_rows(path: Path, fmt: str, encoding: str, delimiter: str = ",", keys: list[str] | None = None) -> Rows:
    """A CSV (header row) or JSON Lines (`keys`: the keys to keep, in order) file as Rows."""
    seen: set[str] = set()
    body = list(_csv_rows(path, delimiter, encoding) if fmt == "csv" else _jsonl_rows(path, encoding, keys, seen))
    if fmt == "csv":
        if not body:
            raise DataError(f"{path}: empty; expected a header row and data rows")
        (_, header), body = body[0], body[1:]
        header = [name.strip() for name in header]
        duplicates = sorted({n for n in header if header.count(n) > 1})
        if duplicates:
            raise DataError(f"{path}: duplicate column names {', '.join(duplicates)} in the header")
    else:
        header = list(keys)
        if body:
            check_keys_seen(path, keys, seen)
    if not body:
        raise DataError(f"{path}: no data rows")
    return rows_of(path, header, body)


def rows_of(path: Path, header: list[str], body: list[tuple[int, list[str]]]) -> Rows:
    """(line, cells) rows under `header` -> Rows (each with the header's number of fields)."""
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields; the header has {len(header)}")
    cells = np.char.strip(np.array([row for _, row in body], dtype=str).reshape(len(body), len(header)))
    return Rows(path, header, cells, np.array([line for line, _ in body]))


def check_keys_seen(path: Path, keys: list[str], seen: set) -> None:
    """Every key a JSON Lines table names is in at least one of its records (`seen`)."""
    never = [key for key in keys if key not in seen]
    if never:
        from tftrain.spec.base import suggest

        raise DataError(f"data.options.columns: '{never[0]}' is in no record of {path}"
                        + suggest(never[0], sorted(seen)) + f" (keys: {', '.join(sorted(seen)[:20])})")


def _decode_error(path: Path, exc: UnicodeDecodeError, offset: int, encoding: str) -> DataError:
    return DataError(f"{path}: byte {offset + exc.start} ({exc.object[exc.start:exc.start + 1]!r}) is not "
                     f"{encoding} text; set data.options.encoding to the file's encoding (e.g. latin-1)")


def _csv_rows(path: Path, delimiter: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each non-blank row (a quoted field may span lines)."""
    _check_decodable(path, encoding)
    try:
        with open(path, newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=delimiter)
            before = 0
            for row in reader:
                if any(c.strip() for c in row):
                    yield before + 1, row
                before = reader.line_num
    except (OSError, LookupError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({first_line(exc)})") from None


def _check_decodable(path: Path, encoding: str) -> None:
    """The whole file decodes, else the byte offset of the first that does not (read in blocks)."""
    import codecs

    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise DataError(f"data.options.encoding: unknown encoding {encoding!r}") from None
    offset = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise _decode_error(path, exc, offset, encoding) from None
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc, offset, encoding) from None


def _jsonl_rows(path: Path, encoding: str, keys: list[str], seen: set) -> Iterator[tuple[int, list[str]]]:
    """(line, cells of `keys`) of each non-blank line; a key a line lacks (or null) is a blank
    cell. `seen` collects every key the records have."""
    _check_decodable(path, encoding)
    try:
        with open(path, encoding=encoding) as f:
            for number, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {number}: not a JSON object ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
                seen.update(record)
                yield number, [_cell(record.get(key)) for key in keys]
    except OSError as exc:
        raise DataError(f"{path}: not readable ({first_line(exc)})") from None


def _cell(value) -> str:
    """A JSON value as the text a CSV cell would hold: null -> '', true -> 'true', lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def raw_rows(path: Path, options: dict, names: list[str]) -> np.ndarray:
    """The input columns `names` of a CSV (header row) or JSON Lines file, as the (N, columns)
    text cells a typed table's model takes (`tftrain predict`); a label column is ignored."""
    fmt = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    encoding = options.get("encoding", "utf-8-sig" if fmt == "csv" else "utf-8")
    rows = read_rows(path, fmt, encoding, options.get("delimiter", ","), keys=names if fmt == "jsonl" else None)
    absent = [name for name in names if name not in rows.header]
    if absent:
        from tftrain.spec.base import suggest

        raise DataError(f"{path}: no column '{absent[0]}', which the model takes" + suggest(absent[0], rows.header)
                        + f" (it takes: {', '.join(names)})")
    return np.asarray(rows.cells[:, [rows.header.index(n) for n in names]], dtype=object)


def present_column(rows: Rows, key: str, name: str) -> None:
    if name not in rows.header:
        raise DataError(f"{key}: column '{name}' is not in {rows.path}" + suggest(name, rows.header)
                        + f" (columns: {', '.join(rows.header)})")


def as_table(rows: Rows, names: list[str], label: str) -> Table:
    """What tftrain.data.tables.csv's target reading takes (it needs the target, file and lines)."""
    return Table(rows.path, names, rows.cells, rows.column(label), rows.lines)


def check_numbers(rows: Rows, names: list[str], options: dict) -> None:
    """Every cell of a numeric column is a number or a missing marker, else the first that is not
    (file, line, column, value)."""
    missing = options["missing"]
    for name in names:
        if options["columns"][name]["type"] != "numeric":
            continue
        try:
            np.where(np.isin(rows.column(name), missing), "nan", rows.column(name)).astype(np.float64)
            continue  # all well: one vectorized pass
        except ValueError:
            pass
        for cell, line in zip(rows.column(name), rows.lines):
            if cell in missing:
                continue
            try:
                float(cell)
            except ValueError:
                raise DataError(f"{rows.path}: line {line}, column '{name}': '{cell[:40]}' is not a number; a numeric "
                                f"column holds numbers or a missing marker ({', '.join(repr(m) for m in missing)}); "
                                "for text use type: category, hashed or text") from None
