"""`text_folder`: path/<class>/*.txt, one example a file, classes in sorted folder order
(keras.utils.text_dataset_from_directory's layout and order). Read into memory, or past
`data.in_memory_max_mb` streamed: a list of files, each batch's read when it is needed."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import numpy as np

from tftrain.data.base import FileList, LabelSummary, LoadedData, StreamedData, fits_in_memory, streaming_reason
from tftrain.data.tables.rows import RAW_ROWS
from tftrain.errors import DataError
from tftrain.spec.schema import DataConfig

EXTENSION = ".txt"  # the files Keras's text_dataset_from_directory reads
COLUMN = "text"  # the one input column's name


def load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """Every text (N, 1) as an object array of str, int32 labels, the class names; past
    data.in_memory_max_mb the files' paths, each file read when its batch is (`_streamed`)."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the text_folder dataset needs a folder with one sub-folder of .txt files per class")
    folders = [_folder(cfg.path, "data.path")]
    if options["test_path"]:
        folders.append(_folder(options["test_path"], "data.options.test_path"))
    train_files, train_y, names = list_folder(folders[0])
    test_files, test_y = list_folder(folders[1], names)[:2] if options["test_path"] else (None, None)
    if len(names) < 2:
        raise DataError(f"data.path: {cfg.path} holds one class folder ({names[0]}); a classifier needs a sub-folder "
                        "per class, at least two")
    nbytes = sum(os.path.getsize(f) for f in train_files + (test_files or []))
    common = dict(num_classes=len(names), class_names=names,
                  source=f"{cfg.path}: {len(train_files):,} texts in {len(names)} classes",
                  extra={"features": [COLUMN], "label": None, "columns": {COLUMN: "text"}, RAW_ROWS: True})
    if not fits_in_memory(cfg.in_memory_max_mb, nbytes):
        return _streamed(train_files, train_y, test_files, test_y, options["encoding"],
                         streaming_reason(cfg.in_memory_max_mb, nbytes), common)
    texts = [_texts(files, options["encoding"]) if files else None for files in (train_files, test_files)]
    return LoadedData(x_train=texts[0], y_train=train_y, x_test=texts[1], y_test=test_y, **common)


def _texts(files: list[str], encoding: str) -> np.ndarray:
    return np.array([read_text(Path(f), encoding) for f in files], dtype=object)[:, None]


def _streamed(train_files, train_y, test_files, test_y, encoding: str, reason: str, common: dict) -> StreamedData:
    """The folders as lists of files (checked once, one file at a time: none empty, all UTF-8),
    each batch's files read by TensorFlow while training; the split is the in-memory one
    (tftrain.data.pipeline.batches splits the list of files as it splits arrays)."""
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        raise DataError(f"data.options.encoding: unknown encoding {encoding!r}") from None
    if not utf8:
        raise DataError(f"data.options.encoding: a text folder that streams ({reason}) is read as UTF-8, not "
                        f"{encoding}: convert the files (iconv -f {encoding} -t utf-8), or raise data.in_memory_max_mb")
    for path in train_files + (test_files or []):
        read_text(Path(path), encoding)  # checked (empty, undecodable), not kept
    splits = [None if files is None else FileList(np.array(files), labels, _read_files)
              for files, labels in ((train_files, train_y), (test_files, test_y))]
    return StreamedData(train=splits[0], test=splits[1], input_shape=(1,), input_dtype="object", label_shape=(),
                        label_dtype="int32", train_labels=LabelSummary.of(train_y),
                        test_labels=None if test_y is None else LabelSummary.of(test_y), reason=reason, **common)


def _read_files(paths):
    """A batch of paths (a string tensor) -> their texts, (B, 1): what the model takes."""
    import tensorflow as tf

    return tf.map_fn(tf.io.read_file, paths, fn_output_signature=tf.string)[:, None]


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


def list_folder(folder: Path, class_names: tuple[str, ...] | None = None):
    """(the .txt files, int32 labels, class names) of `folder`'s class sub-folders, in Keras's order."""
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    names = class_names if class_names is not None else tuple(found)
    unknown = [d for d in found if d not in names]
    if unknown:
        raise DataError(f"{folder}: class folder '{unknown[0]}' is not one of the training classes ({', '.join(names)})")
    paths, labels = [], []
    for label, name in enumerate(names):
        if name not in found:
            continue
        files = [os.path.join(root, f) for root, _, fs in sorted(os.walk(folder / name)) for f in sorted(fs)
                 if f.lower().endswith(EXTENSION)]
        if not files:
            raise DataError(f"{folder / name}: no {EXTENSION} files in this class folder")
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DataError(f"{folder}: no class sub-folders with {EXTENSION} files")
    return paths, np.array(labels, np.int32), names


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
