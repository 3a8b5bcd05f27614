"""Record files -> tf.data pipelines with bounded memory, in an order that is a pure function of
(seed, step): a resumed run reads exactly the batches it would have read, and no data state is
checkpointed.

Epoch `e` of a split stored as records (TFRecord files, a CSV's lines, a TFDS split):

1. the files are put in a seeded order (seed, e) and read CYCLE at a time, alternating chunks of
   CHUNK records (one tf.data element per chunk, so per-record tf.data overhead is paid once per
   chunk);
2. the records are cut into windows of `data.shuffle_buffer` records; each window is decoded
   whole (one while the window before it is consumed) and permuted by a stateless
   permutation seeded by (seed, e, window): every record of a window can land anywhere in it (a
   tf.data shuffle buffer moves records by about its size too, but its order depends on
   everything read before);
3. batches are cut from the epoch's decoded examples (epochs mode: the last one of an epoch may
   be short, as in memory; steps mode: one stream across epochs).

Decoding a window at once and permuting arrays, not strings, is what brings streaming close to
the in-memory path's speed: tf.data's per-element cost is paid once per chunk and per window, not
per batch (bench/streaming.py). Resuming at step s of epoch e reads the records of epoch e
before s again, without decoding or permuting them (whole windows are passed over): at most one
epoch of reading, and nothing in the checkpoint. A validation fraction holds out the records
whose index i in the split has a seeded position index_shuffle(i) below the held-out count:
exactly that many, at random, the same in every epoch, resume and `tftrain evaluate`.

A multi_worker run reads each worker's own files when there are at least as many files as
workers: worker w reads files w, w + workers, ... as an endless stream of its own epochs (each
in its own seeded order), of which tf.distribute gives each step global_batch / workers records;
else every worker reads every file and keeps its share of each global batch
(tftrain.training.distribute.shard_by_example).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from tftrain.data.base import LoadedData, RecordFiles, StreamedData
from tftrain.data.pipeline.interface import AUTOTUNE, Evaluation, Pipelines, schedule, with_transform
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import Config

CHUNK = 256  # records per tf.data element while reading: amortises tf.data's per-element cost...
CHUNK_BYTES = 1 << 20  # ...up to about this much (large records come a few at a time)
CYCLE = 16  # files read at once (interleaved chunk by chunk), in parallel
READ_BUFFER = 1 << 20  # bytes each open file reads ahead
WINDOW_BYTES = 16 << 20  # `shuffle_buffer: auto`: records that fill this much (stored or decoded)...
WINDOW_RANGE = (1_024, 100_000)  # ...within these bounds
# Salts that keep the seeded streams of one run apart.
FILE_ORDER, WINDOW_ORDER, HOLDOUT = 1, 2, 3
SCAN_SECONDS = 60  # how long explaining a failed read may look for the file at fault


def window_size(config: Config, source: RecordFiles, example_bytes: int = 0) -> int:
    """Records permuted together (`data.shuffle_buffer`; auto: about WINDOW_BYTES of records,
    as stored or decoded (`example_bytes` each), whichever is larger: windows are held decoded)."""
    if config.data.shuffle_buffer != "auto":
        return int(config.data.shuffle_buffer)
    per_record = max(1, source.nbytes // max(1, source.count), example_bytes)
    low, high = WINDOW_RANGE
    return int(min(high, max(low, WINDOW_BYTES // per_record)))


def _seed(seed: int, *parts) -> tf.Tensor:
    """A stateless-RNG seed (shape [2]) for `seed` and the parts (tensors or ints) of a stream."""
    key = tf.constant([seed, 0], tf.int64)
    for part in parts:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(part, tf.int64))
    return key


class Holdout:
    """Which records of a split a validation fraction holds out: index i when its seeded
    position index_shuffle(i) < held (a bijection of 0..total-1, so exactly `held` of them)."""

    def __init__(self, total: int, held: int, seed: int):
        self.total, self.held, self.seed = total, held, seed

    def mask(self, index: tf.Tensor, validation: bool) -> tf.Tensor:
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.constant(HOLDOUT, tf.int64)])
        position = tf.random.experimental.index_shuffle(index, key, tf.constant(self.total - 1, tf.int64))
        return (position < self.held) == validation

    def kept(self, first: int, count: int, validation: bool) -> int:
        """How many of records first..first+count-1 belong to the split (computed in pieces)."""
        kept = 0
        for start in range(first, first + count, 1 << 20):
            index = tf.range(start, min(first + count, start + (1 << 20)), dtype=tf.int64)
            kept += int(tf.reduce_sum(tf.cast(self.mask(index, validation), tf.int64)))
        return kept


# ---------------------------------------------------------------------------------------------
# Reading records


def _file_chunks(source: RecordFiles, i: tf.Tensor) -> tf.data.Dataset:
    """File i's records as chunks of up to CHUNK, each with the records' indices in the split."""
    name = tf.gather(tf.constant(source.files), i)
    if source.kind == "tfrecord":
        records = tf.data.TFRecordDataset(name, compression_type=source.compression, buffer_size=READ_BUFFER)
    else:
        records = tf.data.TextLineDataset(name, compression_type=source.compression, buffer_size=READ_BUFFER)
    if source.skips is not None:
        records = records.skip(tf.gather(tf.constant(source.skips, tf.int64), i))
    if source.blank is not None:  # lines that hold no row (a CSV's blank lines), as csv.reader skips them
        records = records.filter(lambda line: tf.logical_not(tf.strings.regex_full_match(line, source.blank)))
    records = records.take(tf.gather(tf.constant(source.counts, tf.int64), i))
    first = tf.gather(tf.constant(source.first_indices(), tf.int64), i)
    chunk = chunk_size(source)
    return records.batch(chunk).enumerate().map(
        lambda c, records: (records, first + c * chunk + tf.range(tf.size(records, out_type=tf.int64))))


def chunk_size(source: RecordFiles) -> int:
    """Records per element while reading: CHUNK, or fewer where they are large."""
    per_record = max(1, source.nbytes // max(1, source.count))
    return int(max(1, min(CHUNK, CHUNK_BYTES // per_record)))


def _records(source: RecordFiles, order: tf.Tensor, holdout: Holdout | None, validation: bool,
             cycle: int) -> tf.data.Dataset:
    """The records of the files in `order` (a tensor of file indices), in batches of varying size."""
    files = tf.data.Dataset.from_tensor_slices(order)
    parallel = {"num_parallel_calls": cycle, "deterministic": True} if cycle > 1 else {}
    chunks = files.interleave(partial(_file_chunks, source), cycle_length=cycle, block_length=1, **parallel)
    if holdout is None:
        return chunks.map(lambda chunk, index: chunk)
    return chunks.map(lambda chunk, index: tf.boolean_mask(chunk, holdout.mask(index, validation)))


def _epoch(source: RecordFiles, epoch: tf.Tensor, skip: tf.Tensor, seed: int, shuffle: bool, window: int,
           holdout: Holdout | None) -> tf.data.Dataset:
    """Epoch `epoch`'s examples from its record `skip` on, decoded, in windows of up to `window`."""
    n_files = len(source.files)
    order = tf.range(n_files, dtype=tf.int64)
    if shuffle and n_files > 1:
        order = tf.argsort(tf.random.stateless_uniform([n_files], seed=_seed(seed, FILE_ORDER, epoch)))
        order = tf.cast(order, tf.int64)
    windows = _records(source, order, holdout, False, min(n_files, CYCLE)).rebatch(window).enumerate()
    windows = windows.skip(skip // window)  # passed over undecoded and unpermuted: only read
    first = skip % window

    def decode_and_permute(w, records):
        # Decoded first, then permuted: gathering arrays is a copy of memory, gathering strings
        # an allocation per record, and the order is the one permuting the records would give.
        batch = source.decode(records)
        if shuffle:
            keys = tf.random.stateless_uniform(tf.shape(records), seed=_seed(seed, WINDOW_ORDER, epoch, w))
            permutation = tf.argsort(keys)
            batch = tf.nest.map_structure(lambda t: tf.gather(t, permutation), batch)
        start = tf.where(w == skip // window, first, 0)
        return tf.nest.map_structure(lambda t: t[start:], batch)

    # One window decoding while the one before it is cut into batches: bounded memory (a window's
    # decoding holds it about four times over: records, parsed, decoded, permuted).
    return windows.map(decode_and_permute, num_parallel_calls=1, deterministic=True)


def _training_records(source: RecordFiles, config: Config, seed: int, holdout: Holdout | None, n: int,
                      start: int, epochs: int | None, window: int) -> tf.data.Dataset:
    """The batches of `source` (`n` training records an epoch) from record `start` of the run's
    stream, epoch after epoch (`epochs`: up to that one, each batched alone; None: endless, one
    stream cut into batches)."""
    first_epoch, skip = divmod(start, n)
    shuffle, batch_size = config.data.shuffle, config.data.batch_size

    def epoch(e):
        first = tf.where(e == first_epoch, tf.constant(skip, tf.int64), tf.constant(0, tf.int64))
        records = _epoch(source, e, first, seed, shuffle, window, holdout)
        return records.rebatch(batch_size) if epochs is not None else records

    last = epochs if epochs is not None else tf.int64.max
    stream = tf.data.Dataset.range(first_epoch, last).flat_map(epoch)
    return stream if epochs is not None else stream.rebatch(batch_size)


def decoded(source: RecordFiles, chunks: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Read chunks of records (_records) -> decoded batches of `batch_size`, in the same order.
    Decoding chunk by chunk in parallel, then cutting the decoded arrays into batches, pays
    tf.data's per-element cost once a chunk instead of once a batch; decoding is per record, so
    every batch holds the very values decoding it alone would give."""
    return chunks.map(source.decode, num_parallel_calls=AUTOTUNE, deterministic=True).rebatch(batch_size)


def _count_kept(source: RecordFiles, holdout: Holdout | None) -> int:
    """Training records of a subset of a split's files (one worker's share) once a fraction is held out."""
    if holdout is None:
        return source.count
    return sum(holdout.kept(first, count, False) for first, count in zip(source.first_indices(), source.counts))


def worker_files(source: RecordFiles, index: int, workers: int) -> RecordFiles:
    """Worker `index`'s files of `source`: every `workers`-th, from file `index` on."""
    first, mine = source.first_indices(), range(index, len(source.files), workers)
    return replace(source, files=tuple(source.files[i] for i in mine), counts=tuple(source.counts[i] for i in mine),
                   skips=tuple(source.skips[i] for i in mine) if source.skips else None,
                   offsets=tuple(first[i] for i in mine), nbytes=source.nbytes // workers)


# ---------------------------------------------------------------------------------------------
# Pipelines


def build_pipelines(data: StreamedData, config: Config, seed: int, transform=None,
                    workers: tuple[int, int] | None = None) -> Pipelines:
    """The training and validation datasets of streamed record files (see the module's doc)."""
    source, batch_size = data.train, config.data.batch_size
    holdout, validation, validation_name, validation_count = _validation(data, config, seed)
    plan = schedule(config, data.train_count)
    total = plan.epochs * plan.steps_per_epoch
    window = window_size(config, source, data.example_bytes)
    own_files = workers is not None and len(source.files) >= workers[1] > 1
    if own_files:
        source = worker_files(source, *workers)
        # Each step this worker reads batch_size / workers records of its own endless stream.
        n, per_step, epochs = _count_kept(source, holdout), batch_size // workers[1], None
    else:
        n, per_step, epochs = plan.train_examples, batch_size, None if plan.steps_mode else plan.epochs

    def train_from(start_step: int) -> tf.data.Dataset:
        if epochs is not None:  # epochs mode: epoch e starts at record 0 of e, step s at batch s % spe of it
            e, s = divmod(start_step, plan.steps_per_epoch)
            start = e * plan.train_examples + s * batch_size
        else:
            start = start_step * per_step
        batches = _training_records(source, config, seed, holdout, n, start, epochs, window)
        if not own_files:
            batches = batches.take(total - start_step)
        return with_transform(batches.prefetch(AUTOTUNE), start_step, transform)

    return Pipelines(
        validation=validation,
        validation_split=validation_name,
        epochs=plan.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        validation_steps=math.ceil(validation_count / batch_size) if validation is not None else None,
        train_examples=plan.train_examples,
        _train_from=train_from,
        file_sharded=own_files,
        explain=partial(explain, data),
    )


def _validation(data: StreamedData, config: Config, seed: int):
    """(holdout of the training files, validation batches, their name, their count)."""
    choice, batch_size = config.data.validation, config.data.batch_size
    if choice == "none" or (choice == "test" and data.test is None):
        return None, None, None, 0
    if choice == "test":
        return None, in_order(data.test, batch_size), "test", data.test.count
    n = data.train_count
    holdout = Holdout(n, max(1, round(n * choice)), seed)
    batches = in_order(data.train, batch_size, holdout)
    return holdout, batches, f"validation ({choice:g} of train)", holdout.held


def in_order(source: RecordFiles, batch_size: int, holdout: Holdout | None = None) -> tf.data.Dataset:
    """Unshuffled, decoded batches of a split (a held-out fraction of it: `holdout`), file by file."""
    order = tf.range(len(source.files), dtype=tf.int64)
    return decoded(source, _records(source, order, holdout, True, cycle=1), batch_size).prefetch(AUTOTUNE)


def training_in_order(data: StreamedData, config: Config, seed: int, batch_size: int | None = None) -> tf.data.Dataset:
    """The training split's batches (the records a validation fraction leaves), unshuffled,
    file by file: what per-channel statistics, balanced class weights and a typed table's
    vocabularies are computed over (`batch_size`: default data.batch_size)."""
    holdout = _validation(data, config, seed)[0]
    order = tf.range(len(data.train.files), dtype=tf.int64)
    records = _records(data.train, order, holdout, False, cycle=1)
    return decoded(data.train, records, batch_size or config.data.batch_size).prefetch(AUTOTUNE)


def evaluation_batches(data: StreamedData, config: Config, seed: int) -> Evaluation:
    """The test split if there is one, else the validation fraction, else the training files,
    with their batch count declared (Keras warns that a dataset of unknown length "ran out of
    data" at the end of every evaluate and predict)."""
    batch_size = config.data.batch_size
    if data.test is not None:
        name, batches, count = "test", in_order(data.test, batch_size), data.test.count
    else:
        _, batches, name, count = _validation(data, config, seed)
        if batches is None:
            name, batches, count = "train", in_order(data.train, batch_size), data.train_count
    cardinality = tf.data.experimental.assert_cardinality(math.ceil(count / batch_size))
    return Evaluation(name, batches.apply(cardinality), count)


def to_memory(data: StreamedData) -> LoadedData:
    """Read every record into arrays (data small enough for memory): the in-memory pipelines then
    apply, with all their sampling options."""
    arrays = {}
    for split, source in (("train", data.train), ("test", data.test)):
        if source is None:
            continue
        x = np.empty((source.count, *data.input_shape), data.input_dtype)
        y = np.empty((source.count, *data.label_shape), data.label_dtype)
        start = 0
        for inputs, labels in in_order(source, 4096):
            x[start:start + len(labels)] = inputs.numpy()
            y[start:start + len(labels)] = labels.numpy()
            start += len(labels)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return LoadedData(**arrays, input_scale=data.input_scale, num_classes=data.num_classes, source=data.source,
                      class_names=data.class_names, extra=data.extra)


# ---------------------------------------------------------------------------------------------
# Errors while training


def tf_message(exc: BaseException) -> str:
    """A TensorFlow error's message without its graph-node prefix and op suffix, shortened."""
    text = (exc.message if isinstance(exc, tf.errors.OpError) else str(exc)) or exc.__class__.__name__
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith(("Graph execution error", "in user code:")):
        # A traced function's error: its traceback ("Detected at node ..." or "in user code:"),
        # then the cause, then maybe "[[{{node ...}}]]"; the cause is the last line before that.
        before = lines[:next((i for i, line in enumerate(lines) if line.startswith("[[")), len(lines))]
        lines = before[-1:] if len(before) > 1 else lines
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", lines[0] if lines else "")
    return re.sub(r"\s*\[Op:\w+\].*$", "", text)[:300]


def explain(data: StreamedData, exc: BaseException) -> str | None:
    """What a TensorFlow error raised while training says about the data, naming the file at
    fault where reading the files again finds it (a corrupt or truncated record)."""
    if not isinstance(exc, (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError)):
        return None
    sources = [s for s in (data.train, data.test) if isinstance(s, RecordFiles)]
    files = [f for s in sources for f in s.files]
    if isinstance(exc, (tf.errors.DataLossError, tf.errors.NotFoundError)):
        for source in sources:
            found = _unreadable(source)
            if found is not None:
                return found
    where = files[0] if len(files) == 1 else f"one of {len(files)} files ({files[0]} ...)"
    return f"{where}: reading the data failed while training: {tf_message(exc)}"


def _unreadable(source: RecordFiles) -> str | None:
    """The first file of `source` whose records cannot be read, with TensorFlow's reason."""
    deadline = time.monotonic() + SCAN_SECONDS
    for name in source.files:
        if time.monotonic() > deadline:
            return None
        reader = (tf.data.TFRecordDataset(name, compression_type=source.compression) if source.kind == "tfrecord"
                  else tf.data.TextLineDataset(name, compression_type=source.compression))
        try:
            for _ in reader.batch(4096):
                pass
        except tf.errors.OpError as exc:
            return f"{name}: {tf_message(exc)} (a corrupt or truncated file; it changed since the run started?)"
    return None


def raise_read_error(path: str, exc: BaseException) -> None:
    """A file that cannot be read while the data is checked: a one-line DataError."""
    raise DataError(f"{path}: {tf_message(exc)}") from None
