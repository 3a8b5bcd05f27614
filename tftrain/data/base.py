"""What every dataset loader returns, and helpers the loaders share.

A loader is `load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData`:

- `LoadedData`: NumPy arrays in their natural dtype (uint8 for images: scaling happens in the
  model, so a 60,000-image MNIST never becomes a float copy), for data that fits in memory
  (`data.in_memory_max_mb`);
- `StreamedData`: where the examples are on disk (record files, or one file per example), read
  while training by tftrain.data.pipeline.streaming with bounded memory.

Both say the same about themselves (per-example shapes and dtypes, counts, a `LabelSummary` per
split, classes, the files read), which is all the data checks, the model spec and the plan
read; only the pipelines (tftrain.data.pipeline.batches) tell them apart.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from tftrain.errors import DataError

# Set by tests and offline clusters: never try a download, say which file to place where.
OFFLINE_ENV = "TFTRAIN_OFFLINE"
# Distinct integer labels a LabelSummary keeps (more than this: the range is what is checked).
MAX_DISTINCT = 65_536
# `in_memory_max_mb: auto` is this fraction of the machine's memory (tftrain.spec.schema says why).
AUTO_MEMORY_FRACTION = 4


@dataclass(frozen=True)
class LabelSummary:
    """What the label checks need of one split's labels, whether in memory or streamed."""

    dtype: str
    shape: tuple[int, ...]  # per example
    count: int
    low: float | None = None  # None: not counted (a TFDS ClassLabel is 0..K-1 by construction)
    high: float | None = None
    values: tuple | None = None  # the distinct values of integer labels, when at most MAX_DISTINCT

    @classmethod
    def of(cls, y: np.ndarray) -> LabelSummary:
        """The summary of labels in memory."""
        low = high = values = None
        if y.size:
            low, high = float(y.min()), float(y.max())
            if np.issubdtype(y.dtype, np.integer):
                distinct = np.unique(y)
                values = tuple(distinct.tolist()) if len(distinct) <= MAX_DISTINCT else None
        return cls(str(y.dtype), tuple(y.shape[1:]), len(y), low, high, values)

    @property
    def integer(self) -> bool:
        """Integer labels (class indices)."""
        return bool(np.issubdtype(np.dtype(self.dtype), np.integer))


@dataclass(frozen=True)
class LoadedData:
    """Arrays of one dataset, ready for tftrain.data.pipeline."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    # Multiply inputs by this inside the model (1/255 for uint8 pixels); None leaves them as is.
    input_scale: float | None = None
    # Class count for integer labels; None for regression targets.
    num_classes: int | None = None
    # The file(s) the arrays came from, or a description of how they were generated.
    source: str = ""
    # Names of classes 0..K-1 where the dataset defines them (CIFAR-10, image folders, CSV labels).
    class_names: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)

    streamed = False  # the arrays are in memory

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's input shape."""
        return tuple(self.x_train.shape[1:])

    @property
    def input_dtype(self) -> str:
        return str(self.x_train.dtype)

    @property
    def label_shape(self) -> tuple[int, ...]:
        """One example's label shape (() for a class index)."""
        return tuple(self.y_train.shape[1:])

    @property
    def label_dtype(self) -> str:
        return str(self.y_train.dtype)

    @property
    def train_count(self) -> int:
        return len(self.x_train)

    @property
    def test_count(self) -> int | None:
        """Test examples, None when the dataset has no test split."""
        return None if self.x_test is None else len(self.x_test)

    @functools.cached_property
    def train_labels(self) -> LabelSummary:
        return LabelSummary.of(self.y_train)

    @functools.cached_property
    def test_labels(self) -> LabelSummary | None:
        return None if self.y_test is None else LabelSummary.of(self.y_test)

    def limited(self, limit: int) -> LoadedData:
        """Only the first `limit` training examples (np.array copies, so the rest can be freed)."""
        return replace(self, x_train=np.array(self.x_train[:limit]), y_train=np.array(self.y_train[:limit]))

    def describe(self) -> dict:
        """Shapes, dtypes and source, for the console and summary.json."""
        splits = {"train": (self.x_train, self.y_train), "test": (self.x_test, self.y_test)}
        info: dict = {"source": self.source, "num_classes": self.num_classes, **self.extra}
        if self.class_names is not None:
            info["class_names"] = list(self.class_names)
        for split, (x, y) in splits.items():
            if x is not None:
                info[split] = {"x_shape": list(x.shape), "x_dtype": str(x.dtype),
                               "y_shape": list(y.shape), "y_dtype": str(y.dtype)}
        return info


@dataclass(frozen=True)
class RecordFiles:
    """One split stored as records in files (TFRecord, a CSV's lines), read as a stream."""

    files: tuple[str, ...]
    counts: tuple[int, ...]  # records read from each file
    # A batch of records (a 1-D tf.string tensor) -> the (inputs, labels) batch, in TensorFlow ops.
    decode: Callable = field(repr=False, compare=False)
    kind: Literal["tfrecord", "text"] = "tfrecord"
    compression: str = ""  # TFRecordDataset's compression_type: "" or "GZIP"
    blank: str | None = None  # text: a regular expression of lines that hold no record (skipped)
    skips: tuple[int, ...] | None = None  # records (lines) to pass over at each file's start: a TFDS slice, a header
    offsets: tuple[int, ...] | None = None  # each file's first record's index in the split (None: counts' sums)
    nbytes: int = 0  # the records' size on disk, which sizes the shuffle window

    @property
    def count(self) -> int:
        return sum(self.counts)

    def first_indices(self) -> tuple[int, ...]:
        """Each file's first record's index in the whole split."""
        if self.offsets is not None:
            return self.offsets
        return tuple(int(v) for v in np.concatenate([[0], np.cumsum(self.counts)[:-1]]))

    def first(self, limit: int) -> RecordFiles:
        """Only the first `limit` records, in file order."""
        kept = np.minimum(self.counts, np.maximum(0, limit - (np.cumsum(self.counts) - self.counts)))
        n = int(np.count_nonzero(kept))
        return replace(self, files=self.files[:n], counts=tuple(int(c) for c in kept[:n]),
                       skips=self.skips[:n] if self.skips else None,
                       offsets=self.first_indices()[:n], nbytes=int(self.nbytes * min(1.0, limit / max(1, self.count))))


@dataclass(frozen=True)
class FileList:
    """One split as one file per example (an image folder): random access by index."""

    paths: np.ndarray  # str
    labels: np.ndarray
    # A batch of paths (a 1-D tf.string tensor) -> the batch of examples, in TensorFlow ops.
    load: Callable = field(repr=False, compare=False)
    # An error raised while reading -> a one-line message naming the file at fault (or None).
    explain: Callable[[BaseException], str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.paths)

    def first(self, limit: int) -> FileList:
        return replace(self, paths=self.paths[:limit], labels=self.labels[:limit])


@dataclass(frozen=True)
class StreamedData:
    """A dataset read from disk while training (tftrain.data.pipeline.streaming), with what every
    consumer needs to know of it without reading it again."""

    train: RecordFiles | FileList
    test: RecordFiles | FileList | None
    input_shape: tuple[int, ...]
    input_dtype: str
    label_shape: tuple[int, ...]
    label_dtype: str
    train_labels: LabelSummary
    test_labels: LabelSummary | None = None
    input_scale: float | None = None  # as LoadedData
    num_classes: int | None = None
    source: str = ""
    class_names: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)
    # Why it streams, e.g. "1,953 MiB > data.in_memory_max_mb 1,024": shown with the data lines.
    reason: str = ""

    streamed = True

    @property
    def train_count(self) -> int:
        return self.train.count

    @property
    def test_count(self) -> int | None:
        return None if self.test is None else self.test.count

    @property
    def example_bytes(self) -> int:
        """One decoded example's size in memory (inputs and label)."""
        return int(np.prod(self.input_shape) * np.dtype(self.input_dtype).itemsize
                   + np.prod(self.label_shape) * np.dtype(self.label_dtype).itemsize)

    def limited(self, limit: int) -> StreamedData:
        """Only the first `limit` training examples (in file order)."""
        return replace(self, train=self.train.first(limit),
                       train_labels=replace(self.train_labels, count=min(limit, self.train_labels.count)))

    def describe(self) -> dict:
        """Shapes (first dimension: the example count), dtypes, source and files, as LoadedData's."""
        info: dict = {"source": self.source, "num_classes": self.num_classes, **self.extra}
        if self.class_names is not None:
            info["class_names"] = list(self.class_names)
        for split, source in (("train", self.train), ("test", self.test)):
            if source is not None:
                info[split] = {"x_shape": [source.count, *self.input_shape], "x_dtype": self.input_dtype,
                               "y_shape": [source.count, *self.label_shape], "y_dtype": self.label_dtype}
        info["streamed"] = {"reason": self.reason, "files": {
            split: _files_read(source) for split, source in (("train", self.train), ("test", self.test))
            if source is not None}}
        return info


def _files_read(source: RecordFiles | FileList) -> dict:
    """How many files a split reads, how big they are, and the first and last of them."""
    files = list(source.files) if isinstance(source, RecordFiles) else [str(p) for p in source.paths[[0, -1]]]
    count = len(source.files) if isinstance(source, RecordFiles) else source.count
    info = {"count": count, "first": files[0], "last": files[-1]}
    if isinstance(source, RecordFiles):
        info["bytes"] = source.nbytes
    return info


def in_memory_limit_mb(value: int | str) -> int:
    """`data.in_memory_max_mb` in MiB: the number, or for `auto` a quarter of this machine's
    memory (its cgroup's limit when that is lower, as in a container)."""
    if value != "auto":
        return int(value)
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return int(total // AUTO_MEMORY_FRACTION // 2**20)


def fits_in_memory(limit_mb: int | str, nbytes: int) -> bool:
    """Whether data of `nbytes` (decoded) is read into memory under `data.in_memory_max_mb`."""
    limit = in_memory_limit_mb(limit_mb)
    return limit > 0 and nbytes <= limit * 2**20


def streaming_reason(limit_mb: int | str, nbytes: int) -> str:
    """Why data of `nbytes` streams, in words."""
    limit = in_memory_limit_mb(limit_mb)
    if limit == 0:
        return "data.in_memory_max_mb: 0"
    return f"{nbytes / 2**20:,.0f} MiB > data.in_memory_max_mb {limit:,}"


def keras_cache_dir() -> Path:
    """Where Keras caches downloads: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def offline() -> bool:
    """True when downloads must not be attempted (TFTRAIN_OFFLINE=1)."""
    return os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")


def download(fname: str, origin: str, file_hash: str | None, how_to_place: str, **get_file_args) -> Path:
    """Fetch a file into the Keras cache with keras.utils.get_file, or explain how to place it.

    `get_file_args` go to get_file unchanged (extract=True, cache_subdir=...), so a download lands
    exactly where Keras's own dataset loaders would put it and the two share one cache.
    """
    if offline():
        raise DataError(f"{how_to_place} (downloads are off: {OFFLINE_ENV} is set)")
    import keras  # deferred: loaders run before TensorFlow is otherwise needed

    try:
        # Keras reports download progress on stdout, which tftrain keeps for results only.
        with contextlib.redirect_stdout(sys.stderr):
            return Path(keras.utils.get_file(fname, origin=origin, file_hash=file_hash, **get_file_args))
    except Exception as exc:  # get_file raises bare Exception subclasses for network errors
        reason = str(exc).splitlines()[0][-160:] if str(exc) else exc.__class__.__name__
        raise DataError(f"{how_to_place} (download from {origin} failed: {reason})") from None


def first_line(exc: BaseException) -> str:
    """An exception's first line, shortened, for one-line error messages."""
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:160]


# One output unit per class: a label of two billion would ask for a layer of two billion units.
MAX_CLASSES = 100_000


def class_count(*labels: np.ndarray | None) -> int:
    """Number of classes for integer labels: max label + 1."""
    return int(max(int(y.max()) for y in labels if y is not None and y.size)) + 1


def first_non_number(cells: np.ndarray) -> tuple[int, int, str] | None:
    """(row, column, cell) of the first cell of a string matrix that is not a finite number, or
    None when every cell is one (a CSV's or a series' numeric columns)."""
    for (row, col), cell in np.ndenumerate(cells):
        try:
            ok = np.isfinite(float(cell))
        except ValueError:
            ok = False
        if not ok:
            return row, col, str(cell)
    return None


def check_pairs(path: Path | str, x: np.ndarray, y: np.ndarray, split: str) -> None:
    """x and y of one split must have the same number of examples."""
    if len(x) != len(y):
        raise DataError(f"{path}: {split} has {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{path}: {split} split is empty")
