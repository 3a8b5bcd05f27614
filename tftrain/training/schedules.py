"""`optimizer.learning_rate: {schedule: ...}` as Keras learning-rate schedules, with a warmup for
every schedule; and the learning rate a step actually used, for history.csv and TensorBoard.

Keras's optimizer evaluates the schedule itself inside every training step, at its own step
count (the number of batches, also under gradient accumulation), in both loops, so a schedule
changes the rate per step even with several steps per compiled call, and it resumes exactly:
it is a pure function of that count, which the resume state restores.

Warmup: CosineDecay has Keras's own (`warmup_target`, `warmup_steps`). The other schedules get
`LinearWarmup` (Model Garden's): linear from `warmup_learning_rate` to the schedule's value at
`warmup_steps`, then the schedule itself, undelayed. That class is tftrain's, and tftrain loads
.keras files in safe mode, refusing classes that are not Keras's (tftrain.security), as should
anyone loading them without tftrain: so a model is saved with the schedule Keras knows in its
place (`keras_native_learning_rate`), which is exactly the learning rate from the warmup's end on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras

from tftrain.errors import ConfigError
from tftrain.spec.schedules import SCHEDULES, schedule_own_keys
from tftrain.spec.schema import OptimizerConfig


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`after` preceded by a linear warmup from `warmup_learning_rate` over `warmup_steps` steps
    to `after(warmup_steps)` (tf-models-official's LinearWarmup)."""

    def __init__(self, after: keras.optimizers.schedules.LearningRateSchedule, warmup_steps: int,
                 warmup_learning_rate: float = 0.0):
        self.after = after
        self.warmup_steps = warmup_steps
        self.warmup_learning_rate = warmup_learning_rate

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        peak = keras.ops.cast(self.after(self.warmup_steps), "float32")
        start = keras.ops.convert_to_tensor(self.warmup_learning_rate, "float32")
        warm = start + (peak - start) * step / float(self.warmup_steps)
        return keras.ops.where(step < self.warmup_steps, warm, keras.ops.cast(self.after(step), "float32"))

    def get_config(self) -> dict[str, Any]:
        return {"after": keras.optimizers.schedules.serialize(self.after), "warmup_steps": self.warmup_steps,
                "warmup_learning_rate": self.warmup_learning_rate}


def build_learning_rate(cfg: OptimizerConfig, total_steps: int | None, steps_per_epoch: int):
    """The optimizer's `learning_rate`: the number, or the Keras schedule (with its warmup) for a
    run of `total_steps` steps of which `steps_per_epoch` make an epoch (None: length unknown)."""
    rate = cfg.learning_rate
    if not cfg.scheduled:
        return float(rate)
    class_name, _ = SCHEDULES[rate.schedule]
    args = rate.model_dump(exclude=schedule_own_keys(type(rate)))
    warmup = warmup_steps(rate, steps_per_epoch)  # Keras's own (cosine_decay) or LinearWarmup's
    if total_steps is not None and warmup >= total_steps:
        given = (f"warmup_epochs: {rate.warmup_epochs:g} is {warmup} warmup steps" if rate.warmup_epochs is not None
                 else f"warmup_steps: {warmup} warmup steps")
        raise ConfigError(f"optimizer.learning_rate.{given}, but the run trains {total_steps} steps; the warmup "
                          "must end before the run does")
    if rate.schedule == "cosine_decay":
        args["warmup_steps"] = warmup
    if args.get("decay_steps") == "auto":
        if total_steps is None:
            raise ConfigError("optimizer.learning_rate.decay_steps: auto is the run's length in steps, which this "
                              "data does not have; set decay_steps, or training.steps")
        # Keras's CosineDecay decays after its warmup; LinearWarmup does not delay the schedule.
        args["decay_steps"] = total_steps - (warmup if rate.schedule == "cosine_decay" else 0)
    if rate.schedule == "piecewise_constant":
        args["boundaries"] = rate.boundaries or [e * steps_per_epoch for e in rate.boundary_epochs]
    schedule = keras.optimizers.schedules.deserialize({"class_name": class_name, "config": args})
    if rate.schedule == "cosine_decay" or not warmup:
        return schedule
    return LinearWarmup(schedule, warmup, rate.warmup_learning_rate)


def warmup_steps(rate, steps_per_epoch: int) -> int:
    """The warmup's length in steps: `warmup_steps`, or `warmup_epochs` of this run's real epochs
    (rounded, at least one step when there is a warmup), so that `--set training.epochs=1` or a
    smaller `data.limit` shortens the warmup with the run."""
    if rate.warmup_epochs is None:
        return rate.warmup_steps
    return max(1, round(rate.warmup_epochs * steps_per_epoch)) if rate.warmup_epochs > 0 else 0


def _inner(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer itself, through Keras's LossScaleOptimizer wrapper (mixed_float16)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _schedule(optimizer: keras.optimizers.Optimizer):
    """The schedule the optimizer evaluates, or None for a constant (a variable) rate. Keras keeps
    it in `_learning_rate` (base_optimizer._get_current_learning_rate); `learning_rate` only gives
    its value at the optimizer's current step, the rate of the step to come."""
    schedule = getattr(_inner(optimizer), "_learning_rate", None)
    return schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) else None


def learning_rate_used(model: keras.Model, steps_done: int) -> float:
    """The learning rate that step `steps_done` (1-based: the last one done) trained with."""
    schedule = _schedule(model.optimizer)
    if schedule is None:
        return float(keras.ops.convert_to_numpy(_inner(model.optimizer).learning_rate))
    return float(keras.ops.convert_to_numpy(schedule(max(steps_done - 1, 0))))


@contextlib.contextmanager
def keras_native_learning_rate(optimizer: keras.optimizers.Optimizer | None) -> Iterator[None]:
    """While a model is saved: the schedule Keras knows in place of tftrain's LinearWarmup, so
    the .keras file holds only Keras's own classes (what the file is for: evaluate, predict,
    export, or training on in plain Keras, all after the warmup)."""
    schedule = _schedule(optimizer) if optimizer is not None else None
    if not isinstance(schedule, LinearWarmup):
        yield
        return
    inner = _inner(optimizer)
    inner.learning_rate = schedule.after  # Keras's setter takes another schedule as it is
    try:
        yield
    finally:
        inner.learning_rate = schedule
