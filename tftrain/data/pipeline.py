"""NumPy arrays -> tf.data pipelines: validation split, seeded shuffling, batching, prefetch.

Examples are batched by gathering rows of the in-memory arrays with a batch of indices, so
images stay uint8 (the model rescales them) and no per-example Python or tf.data work is done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tftrain.config import Config
from tftrain.data.base import LoadedData

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Split:
    """One named split's arrays."""

    name: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Pipelines:
    """What the trainer iterates: `epochs` rounds of `steps_per_epoch` batches each.

    In steps mode (training.steps) one "epoch" is one log interval, so progress, history,
    checkpoints and early stopping work per interval in exactly the same way.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    validation_split: str | None
    epochs: int
    steps_per_epoch: int
    validation_steps: int | None
    train_examples: int


def split_for_training(data: LoadedData, config: Config, seed: int) -> tuple[Split, Split | None]:
    """The training arrays and the validation split chosen by `data.validation`."""
    choice = config.data.validation
    train = Split("train", data.x_train, data.y_train)
    if choice == "none":
        return train, None
    if choice == "test":
        if data.x_test is None:
            return train, None  # the dataset has no test split (synthetic data): nothing to validate on
        return train, Split("test", data.x_test, data.y_test)
    # A fraction: a seeded permutation, so evaluate and resume carve the very same split.
    n = len(data.x_train)
    n_val = max(1, round(n * choice))
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (Split("train", data.x_train[train_idx], data.y_train[train_idx]),
            Split(f"validation ({choice:g} of train)", data.x_train[val_idx], data.y_train[val_idx]))


def split_for_evaluation(data: LoadedData, config: Config, seed: int) -> Split:
    """The test split if the dataset has one, else the validation split, else the training data."""
    if data.x_test is not None:
        return Split("test", data.x_test, data.y_test)
    train, validation = split_for_training(data, config, seed)
    return validation or train


def log_interval(config: Config) -> int:
    """Steps per history row in steps mode: training.log_every, else a divisor near steps/10."""
    steps = config.training.steps
    if config.training.log_every is not None:
        return config.training.log_every
    target = max(1, steps // 10)
    return max(d for d in range(1, target + 1) if steps % d == 0)


def build_pipelines(data: LoadedData, config: Config, seed: int) -> Pipelines:
    """Build the training and validation datasets for `config`."""
    batch_size = config.data.batch_size
    train, validation = split_for_training(data, config, seed)
    n = len(train.x)
    training = config.training
    if training.steps is None:
        order = _order(n, config.data.shuffle, seed)
        epochs, steps_per_epoch = training.epochs, math.ceil(n / batch_size)
    else:
        interval = log_interval(config)
        if training.sampling == "with_replacement":
            # A uniformly random example index per draw, seeded: reproducible sampling.
            order = tf.data.Dataset.random(seed=seed).map(lambda r: tf.math.floormod(r, n))
        else:
            order = _order(n, config.data.shuffle, seed).repeat()
        epochs, steps_per_epoch = training.steps // interval, interval
    validation_ds = batched(validation, batch_size) if validation is not None else None
    return Pipelines(
        train=_gather(order.batch(batch_size), train),
        validation=validation_ds,
        validation_split=validation.name if validation is not None else None,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=math.ceil(len(validation.x) / batch_size) if validation is not None else None,
        train_examples=n,
    )


def batched(split: Split, batch_size: int) -> tf.data.Dataset:
    """Unshuffled batches of one split (validation, evaluation)."""
    return _gather(tf.data.Dataset.range(len(split.x)).batch(batch_size), split)


def _order(n: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    indices = tf.data.Dataset.range(n)
    if shuffle:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return indices


def _gather(index_batches: tf.data.Dataset, split: Split) -> tf.data.Dataset:
    x, y = tf.constant(split.x), tf.constant(split.y)
    return index_batches.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)),
                             num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
