"""What every dataset loader returns, and helpers the loaders share.

A loader is `load(cfg: DataConfig, seed: int) -> LoadedData`: NumPy arrays in their natural
dtype (uint8 for images: scaling happens in the model, so a 60,000-image MNIST never becomes a
float copy), plus what the model builder and the run summary need to know.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tftrain.errors import DataError

# Set by tests and offline clusters: never try a download, say which file to place where.
OFFLINE_ENV = "TFTRAIN_OFFLINE"


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


def class_count(*labels: np.ndarray | None) -> int:
    """Number of classes for integer labels: max label + 1."""
    return int(max(int(y.max()) for y in labels if y is not None and y.size)) + 1


def check_pairs(path: Path | str, x: np.ndarray, y: np.ndarray, split: str) -> None:
    """x and y of one split must have the same number of examples."""
    if len(x) != len(y):
        raise DataError(f"{path}: {split} has {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{path}: {split} split is empty")
