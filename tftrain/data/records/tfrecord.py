"""`tfrecord`: TFRecord files of tf.train.Example records (`data.path` a glob, a folder or a file;
`options.test_path` the same for the test split), plain or gzip, parsed as `options.features`
says (what tf.io.parse_example needs); `options.label` is the target, the other features the
input (one bytes feature: an image or raw array; or numeric features, joined into one vector).

Before training every record is read once and parsed (not decoded): that counts the records of
each file (the schedule needs them), finds the label range and class count, and turns a missing
key, a wrong type or shape, a raw array of the wrong size or a corrupt file into one line naming
the file and record, before anything is written. The first record of each split is decoded too
(an image of another shape). Files written by `tftrain convert` carry a tftrain-dataset.json
with these facts, which is read instead while every file it lists is unchanged in size.

Data whose decoded size fits `data.in_memory_max_mb` is then read into arrays; larger data
streams (tftrain.data.pipeline.streaming).
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import (
    MAX_DISTINCT,
    LabelSummary,
    LoadedData,
    RecordFiles,
    StreamedData,
    fits_in_memory,
    streaming_reason,
)
from tftrain.data.records.framing import check_framing
from tftrain.errors import DataError
from tftrain.safe_files import describe, is_data_file

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

SIDECAR = "tftrain-dataset.json"  # written by `tftrain convert` beside its shards
SIDECAR_FORMAT = 1
SCAN_CHUNK = 8192  # records parsed per call while checking the files
GZIP_MAGIC = b"\x1f\x8b"


def load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """The records as arrays (small data) or as streamed files."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the tfrecord dataset needs TFRecord files: a glob such as "
                        "data/train-*.tfrecord, a folder or a file")
    records = Records(options)
    train, train_labels, names = records.split(match(cfg.path, "data.path"))
    test = test_labels = None
    if options["test_path"] is not None:
        test, test_labels, _ = records.split(match(options["test_path"], "data.options.test_path"))
    num_classes = records.num_classes([s for s in (train_labels, test_labels) if s is not None])
    data = StreamedData(
        train=train, test=test, input_shape=records.input_shape, input_dtype=records.input_dtype,
        label_shape=records.label_shape, label_dtype=records.label_dtype,
        train_labels=train_labels, test_labels=test_labels,
        input_scale=1 / 255 if records.input_dtype == "uint8" else None,  # pixels: rescaled in the model
        num_classes=num_classes, class_names=names if names and len(names) == num_classes else None,
        source=_describe(cfg.path, train) + (f" (test: {_describe(options['test_path'], test)})" if test else ""),
        extra={"features": list(options["features"]), "label": options["label"]},
    )
    nbytes = data.example_bytes * (train.count + (test.count if test else 0))
    if fits_in_memory(cfg.in_memory_max_mb, nbytes):
        from tftrain.data.pipeline.streaming import to_memory

        return to_memory(data)
    return replace(data, reason=streaming_reason(cfg.in_memory_max_mb, nbytes))


def match(pattern: str, key: str) -> list[Path]:
    """The files of a glob (sorted), of a folder (every file in it but the sidecar), or one file."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if is_data_file(p) and p.name != SIDECAR and not p.name.startswith("."))
    else:
        matched = [Path(p) for p in glob.glob(str(path))]
        found = sorted(p for p in matched if is_data_file(p))
        other = next((p for p in matched if not p.is_dir() and not is_data_file(p)), None)
        if other is not None:  # a FIFO or device would block or never end
            raise DataError(f"{key}: {pattern} matches {other}, which {describe(other)}; expected "
                            "TFRecord files only (narrow the glob)")
    if not found:
        where = "is an empty folder" if path.is_dir() else "matches no files"
        raise DataError(f"{key}: {pattern} {where}; expected TFRecord files (a glob such as "
                        "data/train-*.tfrecord, a folder or a file)")
    return found


def _describe(pattern: str, split: RecordFiles) -> str:
    return f"{pattern} ({len(split.files)} file{'s' if len(split.files) > 1 else ''}, {split.count:,} records)"


class Records:
    """The parse and decode functions `options.features` defines, and the checks of the files."""

    def __init__(self, options: dict):
        self.options = options
        self.features = options["features"]
        self.label = options["label"]
        self.inputs = [name for name in self.features if name != self.label]
        first = self.features[self.inputs[0]]
        if first["type"] == "bytes":
            self.input_shape = tuple(first["shape"])
            self.input_dtype = (first["dtype"] or "uint8") if first["decode"] == "raw" else "uint8"
        elif len(self.inputs) == 1:
            self.input_shape, self.input_dtype = tuple(first["shape"]) or (1,), "float32"
        else:
            width = sum(int(np.prod(self.features[n]["shape"])) for n in self.inputs)
            self.input_shape, self.input_dtype = (width,), "float32"
        label = self.features[self.label]
        self.classes = label["type"] == "int64" and not label["shape"]
        self.label_shape = () if self.classes else tuple(label["shape"]) or (1,)
        self.label_dtype = "int32" if self.classes else "float32"
        self._scan = None
        self._decode = None

    # -- parsing and decoding (TensorFlow) -----------------------------------------------------
    def spec(self) -> dict:
        import tensorflow as tf

        kinds = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
        return {name: tf.io.FixedLenFeature([] if f["type"] == "bytes" else f["shape"], kinds[f["type"]])
                for name, f in self.features.items()}

    def decode(self, serialized):
        """A batch of serialized records -> (inputs, labels), in TensorFlow ops."""
        import tensorflow as tf

        parsed = tf.io.parse_example(serialized, self.spec())
        first = self.features[self.inputs[0]]
        if first["type"] == "bytes":
            x = _decode_bytes(parsed[self.inputs[0]], first)
        elif len(self.inputs) == 1:
            x = tf.reshape(tf.cast(parsed[self.inputs[0]], tf.float32), [-1, *self.input_shape])
        else:
            parts = [tf.reshape(tf.cast(parsed[n], tf.float32), [tf.shape(serialized)[0], -1]) for n in self.inputs]
            x = tf.concat(parts, axis=1)
        y = parsed[self.label]
        y = tf.cast(y, tf.int32) if self.classes else tf.reshape(tf.cast(y, tf.float32), [-1, *self.label_shape])
        return x, y

    def _summarize(self, serialized):
        """Per chunk: record count, label min and max, distinct integer labels, the first record
        whose raw array has the wrong size (-1: none) and that size."""
        import tensorflow as tf

        parsed = tf.io.parse_example(serialized, self.spec())
        y = tf.reshape(tf.cast(parsed[self.label], tf.float64), [-1])
        distinct = tf.unique(parsed[self.label]).y if self.classes else tf.zeros([0], tf.int64)
        bad, size = tf.constant(-1, tf.int64), tf.constant(0, tf.int32)
        first = self.features[self.inputs[0]]
        if first["type"] == "bytes" and first["decode"] == "raw":
            lengths = tf.strings.length(parsed[self.inputs[0]])
            wrong = tf.where(lengths != _raw_bytes(first))[:, 0]
            bad = tf.cond(tf.size(wrong) > 0, lambda: wrong[0], lambda: tf.constant(-1, tf.int64))
            size = tf.cond(tf.size(wrong) > 0, lambda: tf.gather(lengths, wrong[0]), lambda: tf.constant(0, tf.int32))
        return tf.size(serialized), tf.reduce_min(y), tf.reduce_max(y), distinct, bad, size

    # -- checking the files --------------------------------------------------------------------
    def split(self, files: list[Path]) -> tuple[RecordFiles, LabelSummary, tuple[str, ...] | None]:
        """One split's files, counted and checked (or described by their sidecar), its label
        summary, and the class names the sidecar records."""
        compression = _compression(files, self.options["compression"])
        framed = {f.name: check_framing(f, compression) for f in files}  # before TensorFlow reads a byte
        sidecar = _sidecar(files, self.features, self.label)
        if sidecar is not None and any(sidecar["files"][f.name].get("records") != framed[f.name] for f in files):
            sidecar = None  # a sidecar that miscounts is not trusted
        if sidecar is not None:
            entries = [sidecar["files"][f.name] for f in files]
            names = sidecar.get("class_names")
        else:
            entries = [self._check_file(f, compression) for f in files]
            names = None
        counts = tuple(int(e["records"]) for e in entries)
        split = RecordFiles(tuple(str(f) for f in files), counts, self.decode, "tfrecord", compression,
                            nbytes=sum(int(e["bytes"]) for e in entries))
        self._check_first(split)
        return split, self._labels(entries), tuple(names) if names else None

    def _check_file(self, path: Path, compression: str) -> dict:
        """Read and parse every record of one file: its counts and label statistics."""
        import tensorflow as tf

        from tftrain.data.pipeline.streaming import raise_read_error

        if self._scan is None:
            self._scan = tf.function(self._summarize, input_signature=[tf.TensorSpec([None], tf.string)])
        entry = {"records": 0, "bytes": path.stat().st_size, "low": None, "high": None, "values": set()}
        chunks = tf.data.TFRecordDataset(str(path), compression_type=compression).batch(SCAN_CHUNK).prefetch(2)
        iterator = iter(chunks)
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except tf.errors.OpError as exc:
                raise_read_error(str(path), exc)
            self._add(entry, path, chunk)
        values = entry["values"]
        entry["values"] = sorted(values) if values is not None and len(values) <= MAX_DISTINCT else None
        return entry

    def _add(self, entry: dict, path: Path, chunk) -> None:
        import tensorflow as tf

        try:
            n, low, high, distinct, bad, size = self._scan(chunk)
        except tf.errors.InvalidArgumentError as exc:
            self._bad_record(path, entry["records"], chunk, exc)
        if int(bad) >= 0:
            first = self.features[self.inputs[0]]
            raise DataError(f"{path}: record {entry['records'] + int(bad)}: feature '{self.inputs[0]}' holds "
                            f"{int(size)} bytes, but decode: raw {first['dtype'] or 'uint8'} of shape {first['shape']} needs "
                            f"{int(_raw_bytes(first))} (data.options.features.{self.inputs[0]})")
        entry["records"] += int(n)
        if int(n):
            entry["low"] = float(low) if entry["low"] is None else min(entry["low"], float(low))
            entry["high"] = float(high) if entry["high"] is None else max(entry["high"], float(high))
        if entry["values"] is not None and self.classes:
            entry["values"].update(int(v) for v in distinct.numpy())
            if len(entry["values"]) > MAX_DISTINCT:
                entry["values"] = None

    def _bad_record(self, path: Path, before: int, chunk, exc) -> None:
        """The first record of `chunk` that does not parse as the features say: a DataError."""
        import tensorflow as tf

        from tftrain.data.pipeline.streaming import tf_message

        message = tf_message(exc)
        for i in range(len(chunk)):
            try:
                self._scan(chunk[i:i + 1])
            except tf.errors.InvalidArgumentError as one:
                message = tf_message(one)
                break
        key = re.search(r"(?:Key|Feature):? (\w+)", message)
        declared = ""
        if key and key.group(1) in self.features:
            f = self.features[key.group(1)]
            declared = f" (data.options.features.{key.group(1)} says {f['type']} of shape {f['shape']})"
        raise DataError(f"{path}: record {before + i}: does not match data.options.features: {message}{declared}")

    def _check_first(self, split: RecordFiles) -> None:
        """Decode the split's first record: an image of another shape is refused before training."""
        import tensorflow as tf

        from tftrain.data.pipeline.streaming import tf_message

        index = next((i for i, c in enumerate(split.counts) if c), None)
        if index is None:
            raise DataError(f"{split.files[0]}: no records (every file of the split is empty)")
        name = split.files[index]
        try:
            record = next(iter(tf.data.TFRecordDataset(name, compression_type=split.compression)))
            self.decode(tf.reshape(record, [1]))
        except tf.errors.OpError as exc:
            raise DataError(f"{name}: record 0: {tf_message(exc)} (data.options.features.{self.inputs[0]}: "
                            f"{self.features[self.inputs[0]]})") from None

    def _labels(self, entries: list[dict]) -> LabelSummary:
        counted = [e for e in entries if e["records"]]
        values = None
        if self.classes and all(e["values"] is not None for e in counted):
            merged = sorted(set().union(*(e["values"] for e in counted)))
            values = tuple(merged) if len(merged) <= MAX_DISTINCT else None
        return LabelSummary(self.label_dtype, self.label_shape, sum(e["records"] for e in entries),
                            min((e["low"] for e in counted), default=None),
                            max((e["high"] for e in counted), default=None), values)

    def num_classes(self, labels: list[LabelSummary]) -> int | None:
        """options.num_classes, else the largest label + 1, for integer class labels."""
        if not self.classes:
            return None
        if self.options["num_classes"] is not None:
            return int(self.options["num_classes"])
        return int(max(s.high for s in labels if s.high is not None)) + 1


def _decode_bytes(values, feature: dict):
    """A batch of bytes -> the arrays they hold (raw) or the images they encode."""
    import tensorflow as tf

    shape = feature["shape"]
    if feature["decode"] == "raw":
        return tf.reshape(tf.io.decode_raw(values, tf.dtypes.as_dtype(feature["dtype"] or "uint8")), [-1, *shape])
    channels = shape[2]
    decoders = {"png": lambda b: tf.io.decode_png(b, channels=channels),
                "jpeg": lambda b: tf.io.decode_jpeg(b, channels=channels),
                "image": lambda b: tf.io.decode_image(b, channels=channels, expand_animations=False)}
    decode = decoders[feature["decode"]]
    return tf.map_fn(lambda b: tf.ensure_shape(decode(b), shape), values,
                     fn_output_signature=tf.TensorSpec(shape, tf.uint8))


def _raw_bytes(feature: dict) -> int:
    return int(np.prod(feature["shape"])) * np.dtype(feature["dtype"] or "uint8").itemsize


def _compression(files: list[Path], option: str) -> str:
    """TFRecordDataset's compression_type: GZIP or none, as the option says or the bytes show."""
    if option != "auto":
        return "GZIP" if option == "gzip" else ""
    kinds = {}
    for path in files:
        try:
            with open(path, "rb") as f:
                kinds.setdefault(f.read(2) == GZIP_MAGIC, path)
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(kinds) > 1:
        raise DataError(f"data.path: {kinds[True]} is gzip-compressed but {kinds[False]} is not; the files of a "
                        "split must be written alike")
    return "GZIP" if True in kinds else ""


def _sidecar(files: list[Path], features: dict, label: str) -> dict | None:
    """The facts `tftrain convert` recorded about these files, if they hold for them still."""
    path = files[0].parent / SIDECAR
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("files"), dict):
        return None  # an edited or foreign file: the records are checked instead
    listed = info["files"]
    names = info.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return None
    if (info.get("format") != SIDECAR_FORMAT or not isinstance(info.get("features"), dict)
            or _canonical(info["features"]) != _canonical(features) or info.get("label") != label):
        return None
    for f in files:
        entry = listed.get(f.name)
        if (f.parent != path.parent or not isinstance(entry, dict) or entry.get("bytes") != f.stat().st_size
                or not _sidecar_entry_ok(entry)):
            return None
    return info


def _sidecar_entry_ok(entry: dict) -> bool:
    """A file's entry as convert writes it: counts, label bounds and values of the right types."""
    def number(v):
        return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < float("inf"))

    values = entry.get("values")
    return (isinstance(entry.get("records"), int) and number(entry.get("low")) and number(entry.get("high"))
            and (values is None or (isinstance(values, list) and all(isinstance(v, int) for v in values))))


def _canonical(features: dict) -> dict:
    """Features with their defaults spelt out (bytes: dtype null means uint8), so a config that
    leaves a default out describes the same records as the sidecar that wrote it."""
    canonical = {}
    for name, feature in features.items():
        if not isinstance(feature, dict):
            return {}
        feature = dict(feature)
        if feature.get("type") == "bytes" and feature.get("dtype") is None:
            feature["dtype"] = "uint8"
        canonical[name] = feature
    return canonical


def write_sidecar(folder: Path, features: dict, label: str, files: dict[str, dict], class_names) -> Path:
    """Record what checking `files` (name -> records, bytes, label low/high/values) would find.
    Written into `tftrain convert`'s staging folder, which appears under its name in one rename."""
    info = {"format": SIDECAR_FORMAT, "features": features, "label": label,
            "class_names": list(class_names) if class_names else None, "files": files}
    (folder / SIDECAR).write_text(json.dumps(info, indent=1) + "\n")
    return folder / SIDECAR
