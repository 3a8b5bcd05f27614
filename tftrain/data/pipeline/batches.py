"""NumPy arrays -> tf.data pipelines: validation split, seeded shuffling, batching, prefetch.

Examples are batched by gathering rows of the in-memory arrays with a batch of indices, so
images stay uint8 (the model rescales them) and no per-example Python or tf.data work is done.
A folder of files streams the same way: the arrays hold its paths, and each gathered batch of
paths is decoded (`Split.load`). Record files (TFRecord, CSV lines, TFDS) that do not fit in
memory go to tftrain.data.pipeline.streaming instead, which keeps the same promise below.

The indices of training batch `s` are a pure function of (seed, s): epoch `e` visits the
examples in the stateless permutation `index_shuffle(seed, e)`, and `with_replacement` draws
with `stateless_uniform(seed, s)`. So the stream can start at any step without replaying or
checkpointing data state, and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from tftrain.data.base import FileList, LoadedData, StreamedData
from tftrain.data.pipeline.interface import AUTOTUNE, Evaluation, InGraphBatches, Pipelines, schedule, with_transform
from tftrain.data.pipeline.label_encoding import encode_batches, encoding_first, label_encoder

if TYPE_CHECKING:
    from tftrain.spec.schema import Config



@dataclass(frozen=True)
class Split:
    """One named split's arrays (`load`: x holds file paths, and load(paths) decodes a batch)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    load: Callable | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.x)


def _splits(data: LoadedData | StreamedData) -> tuple[Split, Split | None]:
    """The train and test arrays (or a folder's paths and labels, with their `load`)."""
    if isinstance(data, LoadedData):
        return (Split("train", data.x_train, data.y_train),
                None if data.x_test is None else Split("test", data.x_test, data.y_test))
    if not isinstance(data.train, FileList):
        raise TypeError("record files are split by tftrain.data.pipeline.streaming")
    test = data.test
    return (Split("train", data.train.paths, data.train.labels, data.train.load),
            None if test is None else Split("test", test.paths, test.labels, test.load))


def split_for_training(data: LoadedData | StreamedData, config: Config, seed: int) -> tuple[Split, Split | None]:
    """The training arrays and the validation split chosen by `data.validation`."""
    choice = config.data.validation
    train, test = _splits(data)
    if choice == "none":
        return train, None
    if choice == "test":
        return train, test  # None: the dataset has no test split (synthetic data), nothing to validate on
    n = len(train.x)
    n_val = max(1, round(n * choice))
    if data.extra.get("time_ordered"):  # windows of a series: validation is the last part in time (data.series)
        return (Split("train", train.x[:n - n_val], train.y[:n - n_val]),
                Split(f"validation (the last {choice:g} in time)", train.x[n - n_val:], train.y[n - n_val:]))
    # A fraction: a seeded permutation, so evaluate and resume carve the very same split.
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (Split("train", train.x[train_idx], train.y[train_idx], train.load),
            Split(f"validation ({choice:g} of train)", train.x[val_idx], train.y[val_idx], train.load))


def split_for_evaluation(data: LoadedData | StreamedData, config: Config, seed: int) -> Split:
    """The test split if the dataset has one, else the validation split, else the training data."""
    train, test = _splits(data)
    if test is not None:
        return test
    train, validation = split_for_training(data, config, seed)
    return validation or train


def evaluation_batches(data: LoadedData | StreamedData, config: Config, seed: int) -> Evaluation:
    """Unshuffled batches of the split to evaluate on (split_for_evaluation's choice), with the
    labels the loss takes (tftrain.data.pipeline.label_encoding)."""
    batch_size = config.data.batch_size
    if data.streamed and not isinstance(data.train, FileList):
        from tftrain.data.pipeline import streaming

        evaluation = streaming.evaluation_batches(data, config, seed)
    else:
        split = split_for_evaluation(data, config, seed)
        evaluation = Evaluation(split.name, batched(split, batch_size), len(split.x))
    return replace(evaluation, batches=encode_batches(evaluation.batches, label_encoder(config, data)))


def evaluation_arrays(data: LoadedData | StreamedData, config: Config, seed: int, limit: int) -> Split:
    """The split to evaluate on as arrays (split_for_evaluation's choice); streamed data (files,
    records): only its first `limit` examples are read (what export verifies a model on)."""
    if data.streamed:
        evaluation = evaluation_batches(data, config, seed)  # labels already encoded
        return Split(evaluation.name, *first_examples(evaluation.batches, limit))
    split, encoder = split_for_evaluation(data, config, seed), label_encoder(config, data)
    return split if encoder is None else replace(split, y=encoder.array(split.y))


def training_sample(data: LoadedData | StreamedData, config: Config, seed: int, limit: int) -> np.ndarray:
    """Up to `limit` training inputs drawn with the run's seed, in the data's own dtype (int8
    calibration): in memory a seeded choice, streamed the first examples of the seeded stream."""
    if data.streamed:
        return first_examples(build_pipelines(data, config, seed).train(0), limit)[0]
    x = split_for_training(data, config, seed)[0].x
    chosen = np.random.default_rng(seed).permutation(len(x))[:limit]
    return np.ascontiguousarray(x[np.sort(chosen)])


def first_examples(batches: tf.data.Dataset, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs and labels of the first `limit` examples of (x, y) batches."""
    xs, ys, count = [], [], 0
    for x, y in batches:
        xs.append(x.numpy())
        ys.append(y.numpy())
        count += len(xs[-1])
        if count >= limit:
            break
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


def training_in_order(data: LoadedData | StreamedData, config: Config, seed: int,
                      batch_size: int | None = None) -> tf.data.Dataset:
    """The training split's batches (split_for_training's), unshuffled and untransformed, of
    `batch_size` examples (default: data.batch_size)."""
    batch_size = batch_size or config.data.batch_size
    if data.streamed and not isinstance(data.train, FileList):
        from tftrain.data.pipeline import streaming

        return streaming.training_in_order(data, config, seed, batch_size)
    return batched(split_for_training(data, config, seed)[0], batch_size)


def build_pipelines(data: LoadedData | StreamedData, config: Config, seed: int, transform: Callable | None = None,
                    workers: tuple[int, int] | None = None, in_graph: bool = False) -> Pipelines:
    """Build the training and validation datasets for `config`. `transform(x, y, step)`: what each
    training batch goes through once gathered (tftrain.data.pipeline.transforms: class weights,
    augmentation), a pure function of the batch and its step;
    validation batches never do. `workers` (this worker's index, their number): a multi_worker
    run, whose workers may each read their own files (tftrain.data.pipeline.streaming). `in_graph`
    (arrays in memory only): also hold the training split as tensors for the loops to gather from.
    Labels reach the transform and the model as the loss takes them (tftrain.data.pipeline.label_encoding)."""
    encoder = label_encoder(config, data)
    transform = encoding_first(transform, encoder)
    if data.streamed and not isinstance(data.train, FileList):
        from tftrain.data.pipeline import streaming

        pipelines = streaming.build_pipelines(data, config, seed, transform, workers)
    else:
        pipelines = _in_memory_pipelines(data, config, seed, transform, in_graph)
    return replace(pipelines, validation=encode_batches(pipelines.validation, encoder))


def _in_memory_pipelines(data: LoadedData | StreamedData, config: Config, seed: int,
                         transform: Callable | None, in_graph: bool = False) -> Pipelines:
    """build_pipelines for arrays in memory and one file per example (gathered by index)."""
    batch_size = config.data.batch_size
    train, validation = split_for_training(data, config, seed)
    n = len(train.x)
    training = config.training
    plan = schedule(config, data.train_count)
    epochs, steps_per_epoch = plan.epochs, plan.steps_per_epoch
    if training.steps is None:
        indices = _epoch_indices(n, batch_size, steps_per_epoch, config.data.shuffle, seed)
    elif training.sampling == "with_replacement":
        indices = _drawn_indices(n, batch_size, seed)
    else:
        indices = _stream_indices(n, batch_size, config.data.shuffle, seed)
    total = epochs * steps_per_epoch

    def train_from(start_step: int) -> tf.data.Dataset:
        steps = tf.data.Dataset.range(start_step, total)
        batches = _gather(steps.map(indices, num_parallel_calls=AUTOTUNE, deterministic=True), train)
        return with_transform(batches, start_step, transform)

    validation_ds = batched(validation, batch_size) if validation is not None else None
    graph = InGraphBatches(tf.constant(train.x), tf.constant(train.y), indices, transform) if in_graph else None
    return Pipelines(
        validation=validation_ds,
        validation_split=validation.name if validation is not None else None,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=math.ceil(len(validation.x) / batch_size) if validation is not None else None,
        train_examples=n,
        _train_from=train_from,
        explain=data.train.explain if data.streamed else None,
        in_graph=graph,
    )


def batched(split: Split, batch_size: int) -> tf.data.Dataset:
    """Unshuffled batches of one split (validation, evaluation)."""
    return _gather(tf.data.Dataset.range(len(split.x)).batch(batch_size), split)


def _order(i: tf.Tensor, epoch: tf.Tensor, n: int, seed: int) -> tf.Tensor:
    """Positions i of epoch `epoch`'s order (a scalar epoch): a stateless permutation seeded by
    (seed, epoch)."""
    return tf.random.experimental.index_shuffle(i, tf.stack([tf.constant(seed, tf.int64), epoch]),
                                                tf.constant(n - 1, tf.int64))


def _permuted(i: tf.Tensor, epoch: tf.Tensor, n: int, shuffle: bool, seed: int) -> tf.Tensor:
    """Position i of epoch `epoch`'s order, `epoch` given per index (steps mode).

    A batch spans at most two epochs while batch_size <= n, so two permutations and a select
    cover it (index_shuffle takes one seed per call). A batch larger than the data reuses the
    second order for later epochs: still deterministic.
    """
    if not shuffle:
        return i
    first = epoch[0]
    return tf.where(epoch == first, _order(i, first, n, seed), _order(i, first + 1, n, seed))


def _epoch_indices(n: int, batch_size: int, steps_per_epoch: int, shuffle: bool, seed: int):
    """Epochs mode: batch b of epoch e holds positions b*batch_size.. of that epoch's order (the
    last batch of an epoch may be short). A batch lies in one epoch: one permutation call (in
    the compiled step of in-graph data, every op counts)."""

    def indices(step):
        epoch, first = step // steps_per_epoch, (step % steps_per_epoch) * batch_size
        i = tf.range(first, tf.minimum(first + batch_size, n), dtype=tf.int64)
        return _order(i, epoch, n, seed) if shuffle else i

    return indices


def _stream_indices(n: int, batch_size: int, shuffle: bool, seed: int):
    """Steps mode, sequential: one endless walk through epoch after epoch, cut into full batches."""

    def indices(step):
        j = tf.range(step * batch_size, (step + 1) * batch_size, dtype=tf.int64)
        return _permuted(j % n, j // n, n, shuffle, seed)

    return indices


def _drawn_indices(n: int, batch_size: int, seed: int):
    """Steps mode, with_replacement: uniformly random examples, drawn statelessly per step."""

    def indices(step):
        return tf.random.stateless_uniform([batch_size], seed=tf.stack([tf.constant(seed, tf.int64), step]),
                                           minval=0, maxval=n, dtype=tf.int64)

    return indices


def _gather(index_batches: tf.data.Dataset, split: Split) -> tf.data.Dataset:
    x, y = tf.constant(split.x), tf.constant(split.y)
    load = split.load

    def gather(idx):
        inputs = tf.gather(x, idx)
        return (load(inputs) if load is not None else inputs), tf.gather(y, idx)

    return index_batches.map(gather, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
