"""`timeseries`: a CSV in time order -> windows of `window` rows and the target `horizon` rows on.

Window i holds rows s..s+window-1 of the input columns (s = i * stride) and its target is the
`target` column at row s + window - 1 + horizon: keras.utils.timeseries_dataset_from_array's
windows with its `targets` shifted by window - 1 + horizon, cut here in NumPy so the run's
stateless pipeline can gather them.

`data.validation: FRACTION` is the last part in time: the rows are cut there and each part is
windowed on its own, so no window (inputs or target) crosses the cut; the oldest windows of a
part are dropped where needed so that the validation windows are exactly the last
round(FRACTION * windows) (what tftrain.data.pipeline.split_for_training takes of data in time order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tftrain.data.base import LoadedData, first_non_number, fits_in_memory, streaming_reason
from tftrain.data.tables.rows import Rows, read_rows
from tftrain.errors import DataError
from tftrain.spec.base import suggest
from tftrain.spec.schema import DataConfig

# LoadedData.extra: the examples are windows in time order (a validation fraction is the last part).
TIME_ORDERED = "time_ordered"


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Windows (N, window, columns) float32 and targets (N, 1) float32 of the training file
    (then the validation part, in time order), and of the test file where there is one."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the timeseries dataset needs a CSV file with a header row, one row per time step")
    path = Path(cfg.path).expanduser()
    if path.is_file():
        _check_fits(cfg, path.stat().st_size, options)
    rows = _read(path, "data.path", options)
    names = options["columns"] or [h for h in rows.header if h != options["time_column"]]
    values, target = _numbers(rows, names, options)
    fraction = cfg.validation if isinstance(cfg.validation, float) else None
    x, y = _split_windows(values, target, options, fraction, rows.path) if fraction else windows(values, target, options)
    if not len(x):
        raise DataError(_too_short(rows.path, len(values), options))
    x_test = y_test = None
    if options["test_path"]:
        test = _read(Path(options["test_path"]).expanduser(), "data.options.test_path", options)
        x_test, y_test = windows(*_numbers(test, names, options), options)
        if not len(x_test):
            raise DataError(_too_short(test.path, len(test.cells), options))
    naive = names.index(options["target"]) if options["target"] in names else None
    return LoadedData(
        x_train=x, y_train=y, x_test=x_test, y_test=y_test, num_classes=None,
        source=f"{rows.path}: {len(values):,} time steps of {len(names)} columns, windows of {options['window']} "
               f"-> '{options['target']}' {options['horizon']} step(s) on",
        extra={"features": names, "target": options["target"], TIME_ORDERED: True, "naive_index": naive},
    )


def _check_fits(cfg: DataConfig, nbytes: int, options: dict) -> None:
    """A series' windows are held in memory (each row copied into about window / stride of them;
    they do not stream): more than `data.in_memory_max_mb` is refused, naming what makes them fit."""
    windows_bytes = nbytes * options["window"] // options["stride"]
    if not fits_in_memory(cfg.in_memory_max_mb, windows_bytes):
        raise DataError(f"data.in_memory_max_mb: the windows of a series are held in memory (they do not stream): "
                        f"{streaming_reason(cfg.in_memory_max_mb, windows_bytes)}; raise data.in_memory_max_mb if the "
                        "machine has the memory, or make fewer windows: a larger data.options.stride, a shorter "
                        "window, fewer data.options.columns, or a shorter stretch of the series")


def _read(path: Path, key: str, options: dict) -> Rows:
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; expected a CSV file with a header row")
    rows = read_rows(path, "csv", options["encoding"], options["delimiter"])
    wanted = [("data.options.target", options["target"])]
    wanted += [("data.options.time_column", options["time_column"])] if options["time_column"] else []
    wanted += [(f"data.options.columns.{i}", n) for i, n in enumerate(options["columns"] or [])]
    for where, name in wanted:
        if name not in rows.header:
            raise DataError(f"{where}: column '{name}' is not in {path}" + suggest(name, rows.header)
                            + f" (columns: {', '.join(rows.header)})")
    if options["time_column"]:
        _check_order(rows, options["time_column"])
    return rows


def _check_order(rows: Rows, column: str) -> None:
    """Strictly increasing times: numbers compared as numbers, anything else as text (ISO 8601
    dates and times sort so); the first row out of order or repeated is named."""
    cells = rows.column(column)
    try:
        keys = cells.astype(np.float64)
    except ValueError:
        keys = cells
    bad = np.flatnonzero(keys[1:] <= keys[:-1])
    if bad.size:
        i = int(bad[0]) + 1
        what = "repeats" if keys[i] == keys[i - 1] else "comes before"
        raise DataError(f"{rows.path}: line {rows.lines[i]}, column '{column}': '{cells[i]}' {what} the previous "
                        f"row's '{cells[i - 1]}'; a series must be sorted by time with no duplicates")


def _numbers(rows: Rows, names: list[str], options: dict) -> tuple[np.ndarray, np.ndarray]:
    """The input columns (T, C) and the target (T,) as float32; a cell that is not a finite number is named."""
    wanted = [*names, options["target"]]
    cells = rows.cells[:, [rows.header.index(n) for n in wanted]]
    try:
        numbers = cells.astype(np.float64)
        if np.isfinite(numbers).all():
            return numbers[:, :-1].astype(np.float32), numbers[:, -1].astype(np.float32)
    except ValueError:
        pass
    row, col, cell = first_non_number(cells)
    raise DataError(f"{rows.path}: line {rows.lines[row]}, column '{wanted[col]}': "
                    f"{'an empty value' if cell == '' else repr(cell[:40])}; a series' columns hold "
                    "finite numbers (fill gaps first)")


def window_count(rows: int, options: dict) -> int:
    span = options["window"] + options["horizon"]
    return max(0, (rows - span) // options["stride"] + 1)


def windows(values: np.ndarray, target: np.ndarray, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every window of `values` (N, window, C) and its target (N, 1)."""
    window, horizon, stride = options["window"], options["horizon"], options["stride"]
    n = window_count(len(values), options)
    if not n:
        return np.zeros((0, window, values.shape[1]), np.float32), np.zeros((0, 1), np.float32)
    starts = np.arange(n) * stride
    views = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (T - window + 1, C, window)
    x = np.ascontiguousarray(views[starts].transpose(0, 2, 1))
    return x, target[starts + window - 1 + horizon][:, None].copy()


def _split_windows(values, target, options: dict, fraction: float, path: Path):
    """The training part's windows, then exactly the last round(fraction * all) validation windows."""
    cut = round(len(values) * (1 - fraction))
    x_train, y_train = windows(values[:cut], target[:cut], options)
    x_val, y_val = windows(values[cut:], target[cut:], options)
    n_train, n_val = len(x_train), len(x_val)
    if not n_val or not n_train:
        part = "validation" if not n_val else "training"
        raise DataError(f"data.validation: the {part} part of {path} ({len(values) - cut if not n_val else cut} of "
                        f"{len(values)} rows) is shorter than a window and its horizon "
                        f"({options['window']} + {options['horizon']} rows); use a "
                        f"{'larger' if not n_val else 'smaller'} fraction or a shorter window")
    while n_train and max(1, round((n_train + n_val) * fraction)) > n_val:
        n_train -= 1  # the oldest training windows go
    while max(1, round((n_train + n_val) * fraction)) < n_val:
        n_val -= 1  # the earliest validation windows go
    return (np.concatenate([x_train[len(x_train) - n_train:], x_val[len(x_val) - n_val:]]),
            np.concatenate([y_train[len(y_train) - n_train:], y_val[len(y_val) - n_val:]]))


def _too_short(path: Path, rows: int, options: dict) -> str:
    return (f"data.options.window: {path} has {rows} rows, fewer than a window and its horizon "
            f"({options['window']} + {options['horizon']}); use a shorter window or horizon")
