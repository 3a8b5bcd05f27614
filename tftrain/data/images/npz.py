"""NumPy `.npz` files: the user's own arrays (`npz` dataset) and the Keras `mnist.npz`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import LoadedData, check_pairs, class_count
from tftrain.data.safe_arrays import load_npz, npz_names
from tftrain.errors import DataError
from tftrain.safe_files import describe

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

TRAIN_KEYS = ("x_train", "y_train")
TEST_KEYS = ("x_test", "y_test")


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """A user file with x_train/y_train and optionally x_test/y_test."""
    if cfg.path is None:
        raise DataError("data.path: the npz dataset needs a file with arrays x_train, y_train "
                        "(and optionally x_test, y_test)")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path: {path} {describe(path)}; expected an .npz file with arrays "
                        "x_train, y_train (and optionally x_test, y_test)")
    return read_npz(path, require_test=False)


def read_npz(path: Path, require_test: bool) -> LoadedData:
    """Read x/y arrays from an .npz without allowing pickled objects (allow_pickle=False)."""
    wanted = TRAIN_KEYS + TEST_KEYS if require_test else TRAIN_KEYS
    files = npz_names(path)
    missing = [k for k in wanted if k not in files]
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)} (found "
                        f"{', '.join(files) or 'none'}); expected {', '.join(wanted)}")
    arrays = load_npz(path, [k for k in TRAIN_KEYS + TEST_KEYS if k in files])  # sizes checked before allocating
    for key, array in arrays.items():
        text = key.startswith("x") and array.dtype.kind == "U"  # raw strings: for models that tokenize (checked later)
        if array.dtype.kind not in "biuf" and not text:
            hint = " (class labels as integers 0..N-1)" if key.startswith("y") else ""
            raise DataError(f"{path}: array '{key}' holds {array.dtype} values; expected numbers{hint}")
    has_test = all(k in arrays for k in TEST_KEYS)
    for split in ("train", "test") if has_test else ("train",):
        check_pairs(path, arrays[f"x_{split}"], arrays[f"y_{split}"], split)
    y_train, y_test = arrays["y_train"], arrays.get("y_test") if has_test else None
    integer_labels = np.issubdtype(y_train.dtype, np.integer)
    if integer_labels:
        y_train = y_train.astype(np.int32)
        y_test = y_test.astype(np.int32) if y_test is not None else None
    x_train = arrays["x_train"]
    return LoadedData(
        x_train=x_train, y_train=y_train,
        x_test=arrays.get("x_test") if has_test else None, y_test=y_test,
        # uint8 arrays are pixels: scale them to [0, 1] inside the model.
        input_scale=1 / 255 if x_train.dtype == np.uint8 else None,
        num_classes=class_count(y_train, y_test) if integer_labels else None,
        source=str(path),
    )
