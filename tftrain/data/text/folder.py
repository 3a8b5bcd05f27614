"""`text_folder`: path/<class>/*.txt, one example a file, classes in sorted folder order
(keras.utils.text_dataset_from_directory's layout and order)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tftrain.data.base import LoadedData
from tftrain.data.tables.rows import check_fits
from tftrain.data.tables.typed import RAW_ROWS
from tftrain.errors import DataError
from tftrain.spec.schema import DataConfig

EXTENSION = ".txt"  # the files Keras's text_dataset_from_directory reads
COLUMN = "text"  # the one input column's name


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Every text (N, 1) as an object array of str, int32 labels, the class names."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the text_folder dataset needs a folder with one sub-folder of .txt files per class")
    folders = [_folder(cfg.path, "data.path")]
    if options["test_path"]:
        folders.append(_folder(options["test_path"], "data.options.test_path"))
    check_fits(cfg, sum(os.path.getsize(os.path.join(root, f)) for folder in folders for root, _, files in os.walk(folder)
                        for f in files if f.lower().endswith(EXTENSION)), "text folders")
    train_x, train_y, names = read_folder(folders[0], options["encoding"])
    test_x = test_y = None
    if options["test_path"]:
        test_x, test_y, _ = read_folder(folders[1], options["encoding"], names)
    if len(names) < 2:
        raise DataError(f"data.path: {cfg.path} holds one class folder ({names[0]}); a classifier needs a sub-folder "
                        "per class, at least two")
    return LoadedData(x_train=train_x, y_train=train_y, x_test=test_x, y_test=test_y, num_classes=len(names),
                      class_names=names, source=f"{cfg.path}: {len(train_x):,} texts in {len(names)} classes",
                      extra={"features": [COLUMN], "label": None, "columns": {COLUMN: "text"}, RAW_ROWS: True})


def table_options(options: dict) -> dict:
    """The options of the one text column, as a typed table's (tftrain.data.tables.preprocessing)."""
    column = {"type": "text", "embedding": None, **{k: options[k] for k in
                                                    ("max_tokens", "output_mode", "sequence_length", "ngrams")}}
    return {"columns": {COLUMN: column}, "crosses": [], "missing": []}


def _folder(path: str, key: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{key}: {folder} is not a folder; expected one sub-folder of .txt files per class")
    return folder


def read_folder(folder: Path, encoding: str, class_names: tuple[str, ...] | None = None):
    """(texts (N, 1) object, int32 labels, class names) of `folder`'s class sub-folders."""
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    names = class_names if class_names is not None else tuple(found)
    unknown = [d for d in found if d not in names]
    if unknown:
        raise DataError(f"{folder}: class folder '{unknown[0]}' is not one of the training classes ({', '.join(names)})")
    texts, labels = [], []
    for label, name in enumerate(names):
        if name not in found:
            continue
        files = [os.path.join(root, f) for root, _, fs in sorted(os.walk(folder / name)) for f in sorted(fs)
                 if f.lower().endswith(EXTENSION)]
        if not files:
            raise DataError(f"{folder / name}: no {EXTENSION} files in this class folder")
        texts += [read_text(Path(f), encoding) for f in files]
        labels += [label] * len(files)
    if not texts:
        raise DataError(f"{folder}: no class sub-folders with {EXTENSION} files")
    return np.array(texts, dtype=object)[:, None], np.array(labels, np.int32), names


def read_text(path: Path, encoding: str) -> str:
    """A file's text; an empty file, or bytes that are not `encoding`, is a one-line error."""
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: an empty text file; every file is one example")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: byte {exc.start} ({data[exc.start:exc.start + 1]!r}) is not {encoding} text; set "
                        "data.options.encoding to the files' encoding (e.g. latin-1)") from None
    except LookupError:
        raise DataError(f"data.options.encoding: unknown encoding {encoding!r}") from None
