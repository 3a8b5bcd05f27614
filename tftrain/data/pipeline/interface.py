"""What every pipeline hands the loops, whichever family built it: `Pipelines` (the training
stream from any step, the validation batches, the schedule), `InGraphBatches` (the training split
held as tensors), `Evaluation`, the schedule of epochs and steps, and how a training batch's
transform attaches (`with_transform`). In-memory data (tftrain.data.pipeline.batches) and record
files (tftrain.data.pipeline.streaming) both build these, and neither imports the other's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import tensorflow as tf

if TYPE_CHECKING:
    from tftrain.spec.schema import Config

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Pipelines:
    """What the trainer iterates: `epochs` rounds of `steps_per_epoch` batches each.

    In steps mode (training.steps) one "epoch" is one log interval, so progress, history,
    checkpoints and early stopping work per interval in exactly the same way.
    """

    validation: tf.data.Dataset | None
    validation_split: str | None
    epochs: int
    steps_per_epoch: int
    validation_steps: int | None
    train_examples: int
    _train_from: Callable[[int], tf.data.Dataset] = field(repr=False)
    # Each multi_worker worker reads its own files (tftrain.data.pipeline.streaming); else it keeps its
    # share of every global batch (tftrain.training.distribute.shard_by_example).
    file_sharded: bool = False
    # An error raised while reading the data -> a one-line message naming the file (or None).
    explain: Callable[[BaseException], str | None] | None = field(default=None, repr=False)
    # The same batches gathered inside the compiled step (the plan's choice), or None.
    in_graph: InGraphBatches | None = field(default=None, repr=False)

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run."""
        return self.epochs * self.steps_per_epoch

    def train(self, start_step: int = 0) -> tf.data.Dataset:
        """The training batches from global step `start_step` to the end of the run (one
        stream for all epochs: epoch e is batches e*steps_per_epoch ... (e+1)*steps_per_epoch-1)."""
        if not 0 <= start_step <= self.total_steps:
            raise ValueError(f"start_step {start_step} outside 0..{self.total_steps}")
        return self._train_from(start_step)


@dataclass(frozen=True)
class InGraphBatches:
    """The training split held as tensors that the compiled step gathers its batch from, by
    index: `batch(s)` is batch s of `Pipelines.train` (the same indices, the same transform), so
    a loop can run many steps per call with no input pipeline, no iterator and no copy between
    threads. Only for data in memory; the loops take it where the plan chose it."""

    x: tf.Tensor
    y: tf.Tensor
    indices: Callable[[tf.Tensor], tf.Tensor] = field(repr=False)
    transform: Callable | None = field(default=None, repr=False)

    def batch(self, step: tf.Tensor) -> tuple:
        """Training batch `step` (an int64 scalar): (x, y), or (x, y, sample_weight)."""
        idx = self.indices(step)
        x, y = tf.gather(self.x, idx), tf.gather(self.y, idx)
        return (x, y) if self.transform is None else self.transform(x, y, step)


@dataclass(frozen=True)
class Evaluation:
    """The batches `tftrain evaluate` (and --smoke) reads: the test split, else validation, else train."""

    name: str
    batches: tf.data.Dataset
    examples: int


def log_interval(config: Config) -> int:
    """Steps per history row in steps mode: training.log_every, else a divisor near steps/10."""
    steps = config.training.steps
    if config.training.log_every is not None:
        return config.training.log_every
    target = max(1, steps // 10)
    return max(d for d in range(1, target + 1) if steps % d == 0)


@dataclass(frozen=True)
class Schedule:
    """How a run is cut into epochs (in steps mode: log intervals), known before TensorFlow starts."""

    epochs: int
    steps_per_epoch: int
    train_examples: int
    steps_mode: bool = False  # training.steps sets the length: an "epoch" is one log interval


def schedule(config: Config, examples: int) -> Schedule:
    """The schedule for `examples` loaded training examples (before a validation fraction is
    carved out of them)."""
    choice = config.data.validation
    n = examples - max(1, round(examples * choice)) if isinstance(choice, float) else examples
    training = config.training
    if training.steps is None:
        return Schedule(training.epochs, math.ceil(n / config.data.batch_size), n)
    interval = log_interval(config)
    return Schedule(training.steps // interval, interval, n, steps_mode=True)


def with_transform(batches: tf.data.Dataset, start_step: int, transform: Callable | None) -> tf.data.Dataset:
    """The hook: training batch s goes through transform(x, y, s), so it stays a pure function of (seed, s)."""
    if transform is None:
        return batches
    steps = tf.data.Dataset.range(start_step, tf.int64.max)
    transformed = tf.data.Dataset.zip(batches, steps).map(
        lambda batch, step: transform(*batch, step), num_parallel_calls=AUTOTUNE, deterministic=True,
    ).prefetch(AUTOTUNE)
    # The input pipeline's ops on one thread each (a dataset option: it covers the whole pipeline):
    # batches still run in parallel (AUTOTUNE), and the step keeps the intra-op threads. Split
    # across them, augmentation cost the CIFAR CNN 1.06-1.15x the CPU per example of a run
    # without it; on one thread 1.03-1.08x (bench/RESULTS.md, issue 16).
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    return transformed.with_options(options)
