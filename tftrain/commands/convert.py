"""`tftrain convert CONFIG --to tfrecord --shards N --output DIR`: write the data a config reads
(any dataset: npz, csv, image folder, mnist, tfds, ...) as TFRecord shards of tf.train.Example
records, and say which `data:` block reads them back.

Each example becomes `input` (its array's raw bytes: exact, and the fastest to decode) and
`label` (int64 class index, or float values). Records go to the shards in turn (record i to
shard i % N), so every shard is a sample of the whole split even when the source is sorted by
class (an image folder), which is what multi_worker file sharding and the streamed file order
need. Everything is written into a temporary folder beside DIR that becomes DIR at the end, with
tftrain-dataset.json (per-file counts and label statistics, the class names), so reading the
shards back needs no pass over them and a failed conversion leaves nothing.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from tftrain.data.base import MAX_DISTINCT, FileList, LoadedData, StreamedData
from tftrain.errors import UserError
from tftrain.spec.schema import Config

SHARD_BYTES = 128 << 20  # `--shards auto`: about this much per shard (TensorFlow's guide: 100 MB+)
INPUT, LABEL = "input", "label"
BATCH = 1024  # examples decoded at a time from a streamed source


@dataclass
class ShardStats:
    """What the sidecar records about one shard while it is written."""

    records: int = 0
    low: float | None = None
    high: float | None = None
    values: set | None = None

    def add(self, y: np.ndarray, classes: bool) -> None:
        self.records += 1
        value = float(y.reshape(-1).min()), float(y.reshape(-1).max())
        self.low = value[0] if self.low is None else min(self.low, value[0])
        self.high = value[1] if self.high is None else max(self.high, value[1])
        if classes:
            self.values = (self.values or set()) | {int(y)}
            if len(self.values) > MAX_DISTINCT:
                self.values = None


def convert(config: Config, output: Path, shards: int | None, gzip: bool = False) -> dict:
    """Write the config's train (and test) split as shards in `output`; returns the data block."""
    from tftrain.data import load_data

    output = Path(output)
    if output.is_symlink():  # renaming onto it would replace the link or write where it points
        raise UserError(f"--output: {output} is a symbolic link; give a new folder")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserError(f"--output: {output} exists and is not an empty folder; give a new folder")
    if output.parent.exists() and not output.parent.is_dir():
        raise UserError(f"--output: {output.parent} is not a folder")
    data = load_data(config, config.seed)
    features = _features(data)
    suffix = ".tfrecord.gz" if gzip else ".tfrecord"
    example_bytes = int(np.prod(data.input_shape)) * np.dtype(data.input_dtype).itemsize
    count = shards or max(1, math.ceil(example_bytes * data.train_count / SHARD_BYTES))
    output.parent.mkdir(parents=True, exist_ok=True)
    # A new, uniquely named folder: a fixed name could be a folder of the user's, which a failed
    # conversion would then delete.
    staging = output.parent / f".{output.name}.converting-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()  # never exist_ok: an existing folder of that name is not ours to fill or remove
    try:
        files = {}
        for split, n in (("train", data.train_count), ("test", data.test_count)):
            if n:
                files.update(_write_split(data, split, staging, count if split == "train" else
                                          max(1, min(count, math.ceil(example_bytes * n / SHARD_BYTES))), suffix, gzip))
        from tftrain.data.records.tfrecord import write_sidecar

        write_sidecar(staging, features, LABEL, files, data.class_names)
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shown = {name: {k: v for k, v in f.items() if v is not None and v != []} for name, f in features.items()}
    options = {"label": LABEL, "features": shown}
    if data.test_count:
        options = {"test_path": str(output / f"test-*{suffix}"), **options}
    return {"data": {"dataset": "tfrecord", "path": str(output / f"train-*{suffix}"), "options": options}}


def _features(data: LoadedData | StreamedData) -> dict:
    """`options.features` of the shards: the input's raw bytes, and the label."""
    dtype = data.input_dtype if data.input_dtype != "bool" else "uint8"
    label = {"type": "int64", "shape": [], "decode": None, "dtype": None} if data.num_classes is not None and \
        np.issubdtype(np.dtype(data.label_dtype), np.integer) else \
        {"type": "float", "shape": list(data.label_shape), "decode": None, "dtype": None}
    return {INPUT: {"type": "bytes", "shape": list(data.input_shape), "decode": "raw", "dtype": dtype},
            LABEL: label}


def _batches(data: LoadedData | StreamedData, split: str):
    """(inputs, labels) of one split as NumPy arrays, a batch at a time, in the source's order."""
    if isinstance(data, LoadedData):
        x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
        for start in range(0, len(x), BATCH):
            yield x[start:start + BATCH], y[start:start + BATCH]
        return
    source = data.train if split == "train" else data.test
    if isinstance(source, FileList):
        import tensorflow as tf

        batches = tf.data.Dataset.from_tensor_slices((source.paths, source.labels)).batch(BATCH).map(
            lambda paths, labels: (source.load(paths), labels))
    else:
        from tftrain.data.pipeline.streaming import in_order

        batches = in_order(source, BATCH)
    for x, y in batches:
        yield x.numpy(), y.numpy()


def _write_split(data, split: str, folder: Path, shards: int, suffix: str, gzip: bool) -> dict[str, dict]:
    """Write one split round-robin into `shards` files; the sidecar's entry of each."""
    import tensorflow as tf

    names = [f"{split}-{i:05d}-of-{shards:05d}{suffix}" for i in range(shards)]
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    writers = [tf.io.TFRecordWriter(str(folder / name), options) for name in names]
    stats = [ShardStats() for _ in names]
    classes = data.num_classes is not None and np.issubdtype(np.dtype(data.label_dtype), np.integer)
    index = 0
    try:
        for x, y in _batches(data, split):
            for xi, yi in zip(x, y):
                shard = index % shards
                writers[shard].write(_example(xi, yi, classes))
                stats[shard].add(np.asarray(yi), classes)
                index += 1
    finally:
        for writer in writers:
            writer.close()
    return {name: {"records": s.records, "bytes": (folder / name).stat().st_size, "low": s.low, "high": s.high,
                   "values": sorted(s.values) if s.values is not None else ([] if not classes else None)}
            for name, s in zip(names, stats)}


def _example(x: np.ndarray, y: np.ndarray, classes: bool) -> bytes:
    import tensorflow as tf

    x = x.astype(np.uint8) if x.dtype == np.bool_ else x
    label = (tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y)])) if classes else
             tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(y, np.float32).reshape(-1).tolist())))
    features = {INPUT: tf.train.Feature(bytes_list=tf.train.BytesList(value=[np.ascontiguousarray(x).tobytes()])),
                LABEL: label}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def data_block(block: dict) -> str:
    """The `data:` block as YAML, ready to paste into a config."""
    return yaml.safe_dump(block, sort_keys=False, default_flow_style=None)
