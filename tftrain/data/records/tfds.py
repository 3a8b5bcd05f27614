"""`tfds`: a dataset of tensorflow-datasets, read from its prepared files in `options.data_dir`.

The builder comes from the data folder (`tfds.builder`: a registered dataset, or any dataset
prepared there), and never from the network unless `options.download: true`. Its splits' file
instructions (TFDS split syntax: `train[:90%]`, `train+validation`) become record files read by
tftrain.data.pipeline.streaming, each record decoded by the dataset's own features
(`info.features.deserialize_example`); counts, shapes, dtypes and class names come from its
dataset_info.json, so nothing is read before training. Data that fits `data.in_memory_max_mb`
is read into arrays first.

A misspelt name gets a did-you-mean from the registered builders (offline: tfds's own list,
without community datasets, which would go to the network) and the datasets in data_dir; a
dataset not prepared there is one line with the `tfds build` command to run where there is
network; an unknown split names the splits there are.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import (
    LabelSummary,
    LoadedData,
    RecordFiles,
    StreamedData,
    first_line,
    fits_in_memory,
    offline,
    streaming_reason,
)
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

DEFAULT_DATA_DIR = "~/tensorflow_datasets"  # TFDS's own default, where $TFDS_DATA_DIR is not set


def load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """The dataset's supervised (input, label) pairs, streamed or as arrays."""
    options = cfg.options
    builder = _builder(options)
    info = builder.info
    input_key, label_key = _keys(options, info)
    decode, input_shape, input_dtype, label = _decoder(info.features, input_key, label_key, options)
    train = _split(builder, options["split_train"], "data.options.split_train", decode)
    test = _split(builder, options["split_test"], "data.options.split_test", decode) if options["split_test"] else None
    num_classes = getattr(label, "num_classes", None)
    names = tuple(label.names) if num_classes else None
    data = StreamedData(
        train=train, test=test, input_shape=input_shape, input_dtype=input_dtype,
        label_shape=() if num_classes else tuple(label.shape) or (1,), label_dtype="int32" if num_classes else "float32",
        train_labels=_labels(train, label), test_labels=_labels(test, label) if test else None,
        input_scale=1 / 255 if input_dtype == "uint8" else None,  # pixels: rescaled in the model
        num_classes=num_classes, class_names=names,
        source=f"tfds {info.name} {info.version} in {builder.data_dir}: {options['split_train']} "
               f"({train.count:,} examples)" + (f", test {options['split_test']} ({test.count:,})" if test else ""),
        extra={"tfds": {"name": info.name, "version": str(info.version), "input": input_key, "label": label_key}},
    )
    nbytes = data.example_bytes * (train.count + (test.count if test else 0))
    if fits_in_memory(cfg.in_memory_max_mb, nbytes):
        from tftrain.data.pipeline.streaming import to_memory

        return to_memory(data)
    return replace(data, reason=streaming_reason(cfg.in_memory_max_mb, nbytes))


def _import():
    try:
        import tensorflow_datasets
    except ImportError:
        raise DataError("data.dataset: tfds needs tensorflow-datasets: pip install 'tftrain[tfds]'") from None
    return tensorflow_datasets


@contextlib.contextmanager
def _quiet():
    """TFDS logs a warning for every dataset folder it looks into; keep those off the console."""
    from absl import logging

    level = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _builder(options: dict):
    """The dataset's builder from data_dir: prepared there, or downloaded when allowed."""
    tfds = _import()
    name, data_dir = options["name"], options["data_dir"]
    data_dir = str(Path(data_dir).expanduser()) if data_dir else None
    shown = data_dir or os.environ.get("TFDS_DATA_DIR") or DEFAULT_DATA_DIR
    try:
        with _quiet():
            builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(_unknown(tfds, name, data_dir, shown)) from None
    except (ValueError, TypeError, OSError) as exc:  # a bad version or config in the name, an unreadable folder
        raise DataError(f"data.options.name: {name}: {first_line(exc)}") from None
    if builder.is_prepared():
        _check_format(builder, name)
        return builder
    build = f"tfds build {name} --data_dir {shown}"
    if not options["download"]:
        raise DataError(f"data.options.name: tfds {name} is not prepared in {shown} (data.options.download: false); "
                        f"where there is network, run `{build}` (or set data.options.download: true)")
    if offline():
        raise DataError(f"data.options.name: tfds {name} is not prepared in {shown} and downloads are off "
                        f"(TFTRAIN_OFFLINE is set): run `{build}` where there is network")
    tfds.disable_progress_bar()
    try:
        builder.download_and_prepare()
    except Exception as exc:  # noqa: BLE001 (network and extraction errors of any kind)
        raise DataError(f"data.options.name: tfds {name}: download and prepare failed ({first_line(exc)}); "
                        f"run `{build}` where there is network") from None
    return builder


def _unknown(tfds, name: str, data_dir: str | None, shown: str) -> str:
    """`unknown tfds dataset "mnsit" — did you mean 'mnist'?`, from the registered builders and
    the datasets prepared in data_dir."""
    base = name.split(":")[0].split("/")[0]
    names = set(tfds.list_builders(with_community_datasets=False))  # offline: the list in the package
    folder = Path(data_dir or os.path.expanduser(shown))
    if folder.is_dir():
        names |= {d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")}
    close = difflib.get_close_matches(base, sorted(names), n=3, cutoff=0.6)
    hint = f" — did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"data.options.name: unknown tfds dataset \"{name}\"{hint} (neither a registered TFDS dataset nor "
            f"prepared in {shown}; `tfds build --help` lists how to prepare one)")


def _check_format(builder, name: str) -> None:
    from tensorflow_datasets.core import file_adapters

    if builder.info.file_format != file_adapters.FileFormat.TFRECORD:
        raise DataError(f"data.options.name: tfds {name} in {builder.data_dir} is prepared as "
                        f"{builder.info.file_format.value}; tftrain reads TFDS's tfrecord files: prepare it with "
                        f"`tfds build {name} --file_format=tfrecord`")


def _keys(options: dict, info) -> tuple[str, str]:
    """The input and label feature names: the options', else the dataset's supervised keys."""
    supervised = info.supervised_keys or (None, None)
    names = list(info.features.keys())
    keys = []
    for role, given, default in (("input", options["input"], supervised[0]), ("label", options["label"], supervised[1])):
        key = given or default
        if key is None:
            raise DataError(f"data.options.{role}: tfds {info.name} has no supervised keys; name its {role} feature "
                            f"(one of {', '.join(names)})")
        if not isinstance(key, str) or key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            raise DataError(f"data.options.{role}: tfds {info.name} has no feature {key!r}"
                            + (f" — did you mean '{close[0]}'?" if close else "") + f"; features: {', '.join(names)}")
        keys.append(key)
    return keys[0], keys[1]


def _decoder(features, input_key: str, label_key: str, options: dict):
    """(decode a batch of records, input shape, input dtype, the label feature)."""
    feature, label = features[input_key], features[label_key]
    shape, dtype = tuple(feature.shape), np.dtype(feature.np_dtype).name
    size = options["image_size"]
    if size is not None:
        if len(shape) != 3:
            raise DataError(f"data.options.image_size: resizes images; tfds feature '{input_key}' has shape {shape}")
        shape, dtype = (*size, shape[2]), "uint8"
    if any(d is None for d in shape):
        raise DataError(f"data.options.image_size: tfds feature '{input_key}' has shape {shape} (varying sizes); "
                        "set image_size: [height, width] to resize every image to one size")
    if not label.shape == () and getattr(label, "num_classes", None):
        raise DataError(f"data.options.label: tfds feature '{label_key}' holds {label.shape} class labels per example")
    classes = getattr(label, "num_classes", None) is not None
    label_shape = tuple(label.shape) or (1,)

    def decode(serialized):
        import tensorflow as tf

        def one(record):
            example = features.deserialize_example(record)
            x = example[input_key]
            if size is not None:
                x = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(x, size)), 0, 255), tf.uint8)
            x = tf.ensure_shape(tf.cast(x, dtype), shape)
            y = example[label_key]
            return x, tf.cast(y, tf.int32) if classes else tf.reshape(tf.cast(y, tf.float32), label_shape)

        label_spec = tf.TensorSpec((), tf.int32) if classes else tf.TensorSpec(label_shape, tf.float32)
        return tf.map_fn(one, serialized, fn_output_signature=(tf.TensorSpec(shape, dtype), label_spec))

    return decode, shape, dtype, label


def _split(builder, spec: str, key: str, decode) -> RecordFiles:
    """The files, skips and counts of one split (TFDS split syntax) as record files."""
    try:
        with _quiet():
            instructions = builder.info.splits[spec].file_instructions
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{key}: {first_line(exc).strip(chr(34))} (tfds {builder.info.name})") from None
    instructions = [i for i in instructions if (i.take if i.take >= 0 else i.examples_in_shard - i.skip)]
    if not instructions:
        raise DataError(f"{key}: the split {spec} of tfds {builder.info.name} is empty")
    counts = tuple(int(i.take if i.take >= 0 else i.examples_in_shard - i.skip) for i in instructions)
    nbytes = sum(int(os.path.getsize(i.filename) * c / max(1, i.examples_in_shard))
                 for i, c in zip(instructions, counts))
    return RecordFiles(tuple(str(i.filename) for i in instructions), counts, decode, "tfrecord",
                       skips=tuple(int(i.skip) for i in instructions), nbytes=nbytes)


def _labels(split: RecordFiles, label) -> LabelSummary:
    """Class labels lie in 0..K-1 by construction (a ClassLabel); other labels are not counted."""
    classes = getattr(label, "num_classes", None)
    if classes:
        return LabelSummary("int32", (), split.count, 0.0, float(classes - 1))
    return LabelSummary("float32", tuple(label.shape) or (1,), split.count)
