"""Learning-rate schedules (keras.optimizers.schedules) and their arguments, written as
`optimizer.learning_rate: {schedule: NAME, <Keras's own argument names>}`; tftrain adds a linear
warmup to those Keras gives none. Built by tftrain.training.schedules.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tftrain.spec.base import Strict as _Options

# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (keras.optimizers.schedules), written as
# `optimizer.learning_rate: {schedule: NAME, <Keras's own argument names>}`.

NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
# `auto`: the run's total number of training steps (tftrain.training.schedules).
# Step counts as TensorFlow holds them: a boundary of 10**30 would fail inside TensorFlow mid-run.
ScheduleSteps = Annotated[int, Field(gt=0, le=2**31 - 1)]
ScheduleSteps0 = Annotated[int, Field(ge=0, le=2**31 - 1)]
StepsOrAuto = ScheduleSteps | Literal["auto"]


class _LinearWarmup(_Options):
    """tftrain's warmup for the schedules Keras gives none: the learning rate rises linearly from
    `warmup_learning_rate` to the schedule's own value at `warmup_steps`, then follows the schedule
    (Model Garden's LinearWarmup: the schedule is not delayed, only its start is replaced)."""

    warmup_steps: ScheduleSteps0 = 0  # no warmup unless asked for
    # Or in epochs of the run's real length (fractions allowed), resolved like decay_steps: auto.
    warmup_epochs: NonNegativeFloat | None = None
    warmup_learning_rate: NonNegativeFloat = 0.0  # warm up from zero, the usual start

    @model_validator(mode="after")
    def _one_warmup_length(self):
        return _one_warmup_length(self)


def _one_warmup_length(schedule):
    """warmup_steps and warmup_epochs say the same thing two ways: at most one of them."""
    if schedule.warmup_steps and schedule.warmup_epochs is not None:
        raise ValueError(".warmup_epochs: give the warmup in steps (warmup_steps) or in epochs (warmup_epochs), "
                         "not both")
    return schedule


def warmup_given(schedule) -> bool:
    """Whether a schedule warms up (in steps or in epochs)."""
    return bool(schedule.warmup_steps or schedule.warmup_epochs)


class CosineDecaySchedule(_Options):
    """keras.optimizers.schedules.CosineDecay, with Keras's own warmup: linear from
    `initial_learning_rate` to `warmup_target` over `warmup_steps`, then cosine decay to
    `alpha * warmup_target` over `decay_steps`."""

    schedule: Literal["cosine_decay"]
    initial_learning_rate: NonNegativeFloat  # required: no value suits every model (0.0 with a warmup)
    decay_steps: StepsOrAuto = "auto"  # the rest of the run after the warmup: decays exactly to the end
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0  # Keras's default: decays to zero
    warmup_target: PositiveFloat | None = None  # Keras's default: no warmup
    warmup_steps: ScheduleSteps0 = 0  # Keras's default: no warmup
    warmup_epochs: NonNegativeFloat | None = None  # or in epochs (fractions allowed), as _LinearWarmup's

    @model_validator(mode="after")
    def _warmup_has_a_target(self):
        _one_warmup_length(self)
        if warmup_given(self) and self.warmup_target is None:
            key = "warmup_steps" if self.warmup_steps else "warmup_epochs"
            raise ValueError(f".warmup_target: required with {key} (the learning rate the warmup "
                             "rises to from initial_learning_rate, as Keras's CosineDecay takes it)")
        if self.warmup_target is None and self.initial_learning_rate == 0:
            raise ValueError(".initial_learning_rate: 0.0 without a warmup would train nothing; give a "
                             "positive value, or warmup_target and warmup_steps to warm up from 0.0")
        return self


class ExponentialDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.ExponentialDecay: lr * decay_rate ** (step / decay_steps)."""

    schedule: Literal["exponential_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # decay_rate is reached at the end of the run
    decay_rate: PositiveFloat  # required: how far to decay is the user's choice
    staircase: bool = False  # Keras's default: a smooth decay


class PiecewiseConstantSchedule(_LinearWarmup):
    """keras.optimizers.schedules.PiecewiseConstantDecay: `values[i]` until `boundaries[i]`, given
    in steps (`boundaries`, Keras's key) or in epochs (`boundary_epochs`)."""

    schedule: Literal["piecewise_constant"]
    boundaries: list[ScheduleSteps] | None = None  # in steps; or boundary_epochs
    boundary_epochs: list[Annotated[int, Field(gt=0, le=1_000_000)]] | None = None  # in epochs (times the steps per epoch)
    values: Annotated[list[NonNegativeFloat], Field(min_length=1)]  # required: one more than boundaries

    @model_validator(mode="after")
    def _boundaries_match_values(self):
        given = [key for key in ("boundaries", "boundary_epochs") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of boundaries (in steps) and boundary_epochs (in epochs), "
                             f"got {' and '.join(given) or 'neither'}")
        key = given[0]
        bounds = getattr(self, key)
        if any(b >= c for b, c in zip(bounds, bounds[1:])):
            raise ValueError(f".{key}: expected strictly increasing values, got {bounds}")
        if len(self.values) != len(bounds) + 1:
            raise ValueError(f".values: expected {len(bounds) + 1} values (one more than the {len(bounds)} "
                             f"{key}), got {len(self.values)}")
        return self


class PolynomialDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.PolynomialDecay: from initial_learning_rate to end_learning_rate."""

    schedule: Literal["polynomial_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # end_learning_rate is reached at the end of the run
    end_learning_rate: NonNegativeFloat = 0.0001  # Keras's default
    power: PositiveFloat = 1.0  # Keras's default: linear decay
    cycle: bool = False  # Keras's default: stay at end_learning_rate


class InverseTimeDecaySchedule(_LinearWarmup):
    """keras.optimizers.schedules.InverseTimeDecay: lr / (1 + decay_rate * step / decay_steps)."""

    schedule: Literal["inverse_time_decay"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    decay_steps: StepsOrAuto = "auto"  # lr / (1 + decay_rate) at the end of the run
    decay_rate: PositiveFloat  # required: how far to decay is the user's choice
    staircase: bool = False  # Keras's default: a smooth decay


class CosineDecayRestartsSchedule(_LinearWarmup):
    """keras.optimizers.schedules.CosineDecayRestarts (SGDR): cosine periods, restarted."""

    schedule: Literal["cosine_decay_restarts"]
    initial_learning_rate: PositiveFloat  # required: no value suits every model
    first_decay_steps: ScheduleSteps  # required: the first period's length sets the rhythm
    t_mul: PositiveFloat = 2.0  # Keras's default: each period twice as long as the one before
    m_mul: PositiveFloat = 1.0  # Keras's default: every restart at the initial learning rate
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0  # Keras's default: each period decays to zero


# Config name -> (Keras class in keras.optimizers.schedules, the schema of its arguments).
SCHEDULES: dict[str, tuple[str, type[_Options]]] = {
    "cosine_decay": ("CosineDecay", CosineDecaySchedule),
    "exponential_decay": ("ExponentialDecay", ExponentialDecaySchedule),
    "piecewise_constant": ("PiecewiseConstantDecay", PiecewiseConstantSchedule),
    "polynomial_decay": ("PolynomialDecay", PolynomialDecaySchedule),
    "inverse_time_decay": ("InverseTimeDecay", InverseTimeDecaySchedule),
    "cosine_decay_restarts": ("CosineDecayRestarts", CosineDecayRestartsSchedule),
}


def schedule_own_keys(schema: type[_Options]) -> frozenset[str]:
    """Keys of a schedule's schema that are tftrain's, not arguments of its Keras class."""
    warmup = set(_LinearWarmup.model_fields) if issubclass(schema, _LinearWarmup) else set()
    return frozenset({"schedule", "boundary_epochs", "warmup_epochs", *warmup})

