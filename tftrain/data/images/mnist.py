"""MNIST from the Keras `mnist.npz` file (data.path, the Keras cache, or the Keras download), or
from a data.path folder holding the original four IDX files (train-images-idx3-ubyte.gz, ...)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tftrain.data.base import LoadedData, download, keras_cache_dir
from tftrain.data.images import idx
from tftrain.data.images.npz import read_npz
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

FILE = "mnist.npz"
CLASS_NAMES = tuple(str(digit) for digit in range(10))
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Load MNIST as uint8 28x28 images and integer labels."""
    if cfg.path is not None:
        folder = Path(cfg.path).expanduser()
        found = idx.find_files(folder) if folder.is_dir() and not (folder / FILE).is_file() else {}
        if found:
            if len(found) < len(idx.FILES):
                raise DataError(f"data.path: {folder} lacks {', '.join(idx.missing_names(found))} "
                                f"(the original MNIST IDX files), and holds no {FILE}")
            return idx.load_folder(found, (28, 28), CLASS_NAMES)
    path = locate(cfg.path)
    data = read_npz(path, require_test=True)
    if data.x_train.shape[1:] != (28, 28):
        raise DataError(f"{path}: x_train has shape {data.x_train.shape}; expected (N, 28, 28) images")
    return dataclasses.replace(data, class_names=CLASS_NAMES)


def locate(path: str | None) -> Path:
    """data.path (a file, or a folder holding mnist.npz), else the Keras cache, else download."""
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            candidate = candidate / FILE
        if not candidate.is_file():
            raise DataError(f"data.path: {candidate} does not exist; expected the Keras {FILE} "
                            "file (arrays x_train, y_train, x_test, y_test), a folder holding it, "
                            f"or a folder holding the IDX files {', '.join(idx.GZ_NAMES)}")
        return candidate
    cached = keras_cache_dir() / FILE
    if cached.is_file():
        return cached
    return download(FILE, ORIGIN, SHA256,
                    how_to_place=f"mnist: {cached} not found; put {FILE} (from {ORIGIN}) there "
                                 "or set data.path to it")
