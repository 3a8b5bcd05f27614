"""Typed tables (csv with `columns`, jsonl) larger than `data.in_memory_max_mb`: read from their
files while training, never whole.

1. The files are checked once, CHUNK_ROWS rows at a time (bounded memory), with the checks and
   messages of the in-memory loader (tftrain.data.tables.typed): every named column present,
   each row's fields, numeric cells, the target (class names, indices or regression values).
2. Each split becomes `RecordFiles` of lines (tftrain.data.pipeline.streaming): a batch of lines
   decodes to the raw rows (B, columns) the model takes, and their labels; the training stream,
   its seeded order and its exact resume are streaming's.
3. The statistics and vocabularies are fitted, as in memory, by one pass over the training
   split's batches (tftrain.data.tables.fit), and built into the model.

What differs from memory, and why: the files are read as UTF-8 (TensorFlow reads bytes: another
encoding is refused, naming the conversion); a CSV row is one line (a quoted field spanning lines
is refused, as for a numeric CSV that streams); `validation: FRACTION` holds out the rows whose
seeded position index_shuffle(row index) falls below the held-out count (streaming's `Holdout`:
exactly that many rows, the same in every epoch, resume and `tftrain evaluate`, without a
permutation of every row in memory), so not the very rows NumPy's permutation holds out in memory.
JSON Lines are parsed by Python's json in the input pipeline (TensorFlow has no JSON op).
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import RecordFiles, StreamedData
from tftrain.data.tables.csv import (
    CHUNK_ROWS,
    ScannedTable,
    TargetScan,
    _rows,
    _summary,
    _task,
    csv_cells,
    scan_targets,
    target_decoder,
)
from tftrain.data.tables.rows import (
    RAW_ROWS,
    Rows,
    _cell,
    _check_decodable,
    _jsonl_rows,
    as_table,
    check_keys_seen,
    check_numbers,
    present_column,
    rows_of,
)
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

BLANK = {"csv": r"[\s{}]*", "jsonl": r"\s*"}  # lines that hold no row, skipped as the in-memory readers skip them


def load_streamed(cfg: DataConfig, fmt: str, paths: list[Path], reason: str) -> StreamedData:
    """The files of a typed table, checked chunk by chunk and described for streaming."""
    options = cfg.options
    _check_utf8(options["encoding"], reason)
    names, label = list(options["columns"]), options["label"]
    scans = [_scan(path, fmt, options) for path in paths]
    kind, class_names = _task([s.target for s in scans], options["task"])
    targets = target_decoder(kind, class_names)
    delimiter = options.get("delimiter", ",")
    splits = [RecordFiles((str(s.path),), (s.rows,), _decoder(fmt, s.header, names, label, delimiter, targets),
                          "text", skips=(s.header_lines,) if s.header_lines else None,
                          blank=BLANK[fmt].format(re.escape(delimiter)), nbytes=s.path.stat().st_size) for s in scans]
    summaries = [_summary(s, kind, class_names) for s in scans]
    num_classes = len(class_names) if class_names else (
        int(max(s.high for s in summaries)) + 1 if kind == "classes" else None)
    kinds = {name: options["columns"][name]["type"] for name in names}
    read = str(paths[0]) + (f" (test: {paths[1]})" if len(paths) > 1 else "")
    return StreamedData(
        train=splits[0], test=splits[1] if len(splits) > 1 else None, input_shape=(len(names),),
        input_dtype="object", label_shape=(1,) if kind == "regression" else (),
        label_dtype="float32" if kind == "regression" else "int32",
        train_labels=summaries[0], test_labels=summaries[1] if len(summaries) > 1 else None,
        num_classes=num_classes, class_names=class_names, reason=reason,
        source=f"{read}: {len(names)} typed columns ({', '.join(f'{n}: {k}' for n, k in kinds.items())}), "
               f"target '{label}' ({'regression' if kind == 'regression' else 'classes'}), {scans[0].rows:,} rows",
        extra={"features": names, "label": label, "columns": kinds, RAW_ROWS: True},
    )


def _check_utf8(encoding: str, reason: str) -> None:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"data.options.encoding: unknown encoding {encoding!r}") from None
    if name not in ("utf-8", "utf-8-sig"):
        raise DataError(f"data.options.encoding: a table that streams ({reason}) is read as UTF-8, not {encoding}: "
                        f"convert the file (iconv -f {encoding} -t utf-8), or raise data.in_memory_max_mb")


def _scan(path: Path, fmt: str, options: dict) -> ScannedTable:
    """One file checked CHUNK_ROWS rows at a time: its header (CSV), its row count and its targets."""
    names, label = list(options["columns"]), options["label"]
    _check_decodable(path, options["encoding"])  # the byte offset of the first undecodable byte
    if fmt == "csv":
        header, header_lines, body = _csv_header(path, options)
    else:
        seen: set = set()
        header, header_lines = [*names, label], 0
        body = ((line, cells) for line, cells in _jsonl_rows(path, options["encoding"], header, seen))
    scan, count, chunk = TargetScan(path, label), 0, []
    for row in body:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            _check_chunk(rows_of(path, header, chunk), names, options, scan)
            count, chunk = count + len(chunk), []
    if chunk:
        _check_chunk(rows_of(path, header, chunk), names, options, scan)
        count += len(chunk)
    if fmt == "jsonl" and count:
        check_keys_seen(path, header, seen)
    if not count:
        raise DataError(f"{path}: no data rows")
    return ScannedTable(path, header, header_lines, count, scan)


def _csv_header(path: Path, options: dict):
    """(the header, the lines up to it, the (line, cells) rows after it, one physical line each)."""
    rows = _rows(path, options["delimiter"], options["encoding"])
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty; expected a header row and data rows")
    header = [name.strip() for name in first[2]]
    duplicates = sorted({n for n in header if header.count(n) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {', '.join(duplicates)} in the header")
    named = Rows(path, header, np.empty((0, len(header)), str), np.empty(0, int))
    for name in options["columns"]:
        present_column(named, f"data.options.columns.{name}", name)
    present_column(named, "data.options.label", options["label"])

    def body():
        for line, last, cells in rows:
            if last != line:
                raise DataError(f"{path}: line {line}: a quoted field spans lines {line}-{last}, which a streamed "
                                "table cannot read (it reads a row per line): raise data.in_memory_max_mb, or "
                                "write the field on one line")
            yield line, cells

    return header, first[1], body()


def _check_chunk(rows: Rows, names: list[str], options: dict, scan: TargetScan) -> None:
    check_numbers(rows, names, options)
    scan_targets(as_table(rows, names, options["label"]), scan, options["task"])


def _decoder(fmt: str, header: list[str], names: list[str], label: str, delimiter: str, targets):
    """A batch of lines -> (raw rows (B, columns) of stripped cells, in `names` order; labels)."""
    import tensorflow as tf

    if fmt == "csv":
        def decode(lines):
            cells = csv_cells(lines, len(header), delimiter)
            return tf.stack([cells[header.index(n)] for n in names], axis=1), targets(cells[header.index(label)])

        return decode

    def parse(lines: np.ndarray) -> np.ndarray:  # the in-memory reader's cells (tftrain.data.tables.rows)
        records = [json.loads(line) for line in lines]
        return np.array([[_cell(r.get(key)).encode() for key in header] for r in records], dtype=object
                        ).reshape(len(records), len(header))

    def decode(lines):
        cells = tf.numpy_function(parse, [lines], tf.string, stateful=False)
        cells = tf.strings.strip(tf.ensure_shape(cells, [None, len(header)]))
        return cells[:, :-1], targets(cells[:, -1])

    return decode
