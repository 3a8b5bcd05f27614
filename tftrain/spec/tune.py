"""What `tftrain tune` searches, validated without TensorFlow or Optuna: a bad space is refused in
one line before any trial starts.

    objective: {metric: val_accuracy, direction: maximize}
    space:
      optimizer.learning_rate: {loguniform: [1.0e-4, 1.0e-1]}
      data.batch_size: {choice: [32, 64, 128]}
      model.hidden: {choice: [[64], [128], [256, 128]]}
      model.dropout: {uniform: [0.0, 0.5]}
    sampler: tpe            # tpe | random | grid | qmc, or {name: tpe, n_startup_trials: 5}
    pruner: median          # median | hyperband | none, or {name: median, n_startup_trials: 2}
    trials: 20              # and/or timeout: 2h

It comes from `tftrain tune --space FILE` or from the config's `tune:` section. `TuneSpec`
checks its shape; `check_against(spec, base)` checks it against the config it tunes: every key
path and every value against the config schema, the objective against what the runs log.
"""

from __future__ import annotations

import math
import re
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from tftrain.errors import ConfigError
from tftrain.spec.base import Strict, kind_of, show, suggest, unknown
from tftrain.spec.messages import format_validation_error
from tftrain.spec.safe_yaml import MAX_CONFIG_BYTES, parse_yaml

KINDS = ("uniform", "loguniform", "int", "choice")
MAX_CHOICES = 1_000  # values of one choice list
_SHAPES = "{uniform: [low, high]}, {loguniform: [low, high]}, {int: [low, high]} or {choice: [a, b, ...]}"
_KEY_PATH = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


@dataclass(frozen=True)
class Dimension:
    """One searched key: a range (uniform, loguniform, int) or a list of choices."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    def edges(self) -> list[tuple[str, Any]]:
        """The values that bound what a trial may get, each with its name (checked against the schema)."""
        if self.kind == "choice":
            return [(f"choice {show_value(v)}", v) for v in self.choices]
        return [(f"{self.kind} low {self.low!r}", self.low), (f"{self.kind} high {self.high!r}", self.high)]

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this dimension can produce."""
        if self.kind == "choice":
            return any(_same(value, choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        return self.low <= value <= self.high


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def parse_dimension(key: str, spec: Any) -> Dimension:
    """`{loguniform: [1e-4, 0.1]}` -> Dimension; ValueError with a one-line message otherwise."""
    if not re.fullmatch(_KEY_PATH, key):
        raise ValueError(f"{show(key)} is not a key path such as optimizer.learning_rate")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"{key}: expected {_SHAPES}, got {show(spec)}")
    kind, values = next(iter(spec.items()))
    if kind not in KINDS:
        raise ValueError(f"{key}: " + unknown("distribution", kind, KINDS))
    if kind == "choice":
        return _choice(key, values)
    number = int if kind == "int" else (int, float)
    if (not isinstance(values, list) or len(values) != 2
            or any(isinstance(v, bool) or not isinstance(v, number) for v in values)):
        what = "two integers" if kind == "int" else "two numbers"
        raise ValueError(f"{key}: {kind} expects [low, high] ({what}), got {show_value(values)}")
    low, high = values
    if low >= high:
        raise ValueError(f"{key}: {kind} low {low!r} >= high {high!r}; expected low < high")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{key}: loguniform [{low!r}, {high!r}] touches 0; a log range needs 0 < low < high")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"{key}: {kind} bounds must be finite, got {show_value(values)}")
    return Dimension(key, kind, low, high)


def _choice(key: str, values: Any) -> Dimension:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key}: choice expects a non-empty list of values, got {show_value(values)}")
    if len(values) > MAX_CHOICES:  # each is validated as a config; a search over more is no search
        raise ValueError(f"{key}: choice lists {len(values):,} values; at most {MAX_CHOICES:,} (use a range: "
                         "{int: [low, high]} or {uniform: [low, high]})")
    texts = [yaml_text(v) for v in values]
    repeated = sorted(t for t, n in Counter(texts).items() if n > 1)
    if repeated:
        raise ValueError(f"{key}: choice lists {repeated[0]} twice")
    return Dimension(key, "choice", choices=tuple(values))


def yaml_text(value: Any) -> str:
    """`value` as one line of YAML, as `--set KEY=VALUE` reads it back (0.001, [64, 32], relu)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("\n...").strip()


def show_value(value: Any) -> str:
    """A value as a message shows it: the YAML the user wrote."""
    return yaml_text(value)


def assignment(key: str, value: Any) -> str:
    """`KEY=VALUE` for `--set`: how a trial's values reach its config."""
    return f"{key}={yaml_text(value)}"


def parse_duration(value: str | int) -> float:
    """`2h`, `30m`, `1h30m`, `45s` or a number of seconds -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"expected a duration such as 2h, 30m, 1h30m, 45s or a number of seconds, "
                         f"got {show(value)}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# ---------------------------------------------------------------------------------------------
# Samplers and pruners: `tpe` or `{name: tpe, <Optuna's arguments>}`, as losses and optimizers are.


class TpeOptions(Strict):
    """optuna.samplers.TPESampler."""

    n_startup_trials: NonNegativeInt = 10  # Optuna's default: random trials before TPE models the results
    multivariate: bool = False  # Optuna's default: one model per parameter
    constant_liar: bool = True  # parallel trials see running ones as bad, so they do not all sample one point


class QmcOptions(Strict):
    """optuna.samplers.QMCSampler."""

    qmc_type: Literal["sobol", "halton", "lhs"] = "sobol"  # Optuna's default low-discrepancy sequence
    scramble: bool = False  # Optuna's default: the plain sequence


class NoOptions(Strict):
    """Takes no options."""


class MedianOptions(Strict):
    """optuna.pruners.MedianPruner: prune a trial whose best value so far is worse than the median
    of the finished trials' values at the same epoch (or log interval)."""

    n_startup_trials: NonNegativeInt = 5  # Optuna's default: finished trials before anything is pruned
    n_warmup_steps: NonNegativeInt = 0  # Optuna's default: prune from the first epoch on
    interval_steps: PositiveInt = 1  # check every epoch
    n_min_trials: PositiveInt = 1  # Optuna's default: trials reporting at a step before it compares


class HyperbandOptions(Strict):
    """optuna.pruners.HyperbandPruner (successive halving in brackets)."""

    min_resource: PositiveInt = 1  # one epoch (or log interval) before the first cut
    max_resource: PositiveInt | None = None  # null: the epochs (or log intervals) the config trains
    reduction_factor: Annotated[int, Field(ge=2)] = 3  # Optuna's default: keep a third at each cut


class _Component(BaseModel):
    """`name` or `{name: ..., <options>}`, the options checked (and filled in) by the name's schema."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, defer_build=True)  # built on first use (see Strict)
    name: str
    kinds: ClassVar[dict[str, type[Strict]]] = {}
    what: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _options(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return value  # pydantic says what is missing or of the wrong type
        name = value["name"]
        if name not in cls.kinds:
            raise ValueError(unknown(cls.what, name, cls.kinds))
        schema = cls.kinds[name]
        options = {k: v for k, v in value.items() if k != "name"}
        try:
            return {"name": name, **schema.model_validate(options).model_dump()}
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] == "extra_forbidden":
                key, valid = str(error["loc"][-1]), list(schema.model_fields)
                raise ValueError(f"unknown option '{key}' for {cls.what} {name}" + suggest(key, valid)
                                 + f"; valid options: {', '.join(valid) or 'none'}") from None
            raise ValueError("." + format_validation_error(exc, options, root=schema)) from None

    @property
    def options(self) -> dict[str, Any]:
        """The options (every one, defaults filled in)."""
        return dict(self.model_extra or {})


class SamplerConfig(_Component):
    """How trials' values are chosen."""

    kinds = {"tpe": TpeOptions, "random": NoOptions, "grid": NoOptions, "qmc": QmcOptions}
    what = "sampler"


class PrunerConfig(_Component):
    """How unpromising trials are stopped early."""

    kinds = {"median": MedianOptions, "hyperband": HyperbandOptions, "none": NoOptions}
    what = "pruner"


class Objective(Strict):
    """The metric a study optimizes: the best value of a history.csv column over a trial's epochs."""

    metric: str | None = None  # null: the config's checkpoint monitor (what best.keras is chosen by)
    direction: Literal["minimize", "maximize", "auto"] = "auto"  # auto: maximize accuracy-like names


class TuneSpec(Strict):
    """A study: what to optimize, over which values, how to sample and prune, for how long."""

    objective: Objective = Field(default_factory=Objective)  # the checkpoint monitor, in its direction
    space: dict[str, Any]  # no default: only the user knows what to search
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig(name="tpe"))  # Optuna's default
    pruner: PrunerConfig = Field(default_factory=lambda: PrunerConfig(name="median"))  # Optuna's default pruner
    trials: PositiveInt | None = 20  # enough for TPE to learn past its 10 random start-up trials
    timeout: str | PositiveInt | None = None  # no time limit: the trial count ends the study
    seed: NonNegativeInt | None = None  # null: the config's seed, so a study samples the same trials again
    enqueue: list[dict[str, Any]] = Field(default_factory=list)  # none: the sampler picks every trial

    @field_validator("space")
    @classmethod
    def _dimensions(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("expected at least one key to search, such as optimizer.learning_rate: "
                             "{loguniform: [1.0e-4, 1.0e-1]}")
        for key, spec in value.items():
            parse_dimension(str(key), spec)
        return value

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TuneSpec:
        if self.trials is None and self.timeout is None:
            raise ValueError("trials: null and no timeout: the study would never end; set trials, timeout or both")
        dims = {d.key: d for d in self.dimensions()}
        if self.sampler.name == "grid":
            ranges = [d.key for d in dims.values() if d.kind != "choice"]
            if ranges:
                raise ValueError(f"space: {ranges[0]}: the grid sampler needs a choice list for every key "
                                 f"(it is {dims[ranges[0]].kind}); use sampler tpe, random or qmc for ranges")
        for i, point in enumerate(self.enqueue):
            _check_point(point, dims, f"enqueue[{i}]")
        return self

    def dimensions(self) -> list[Dimension]:
        """The space, one Dimension per key, in the order written."""
        return [parse_dimension(key, spec) for key, spec in self.space.items()]

    def timeout_seconds(self) -> float | None:
        """The time limit in seconds, or None."""
        return None if self.timeout is None else parse_duration(self.timeout)

    def grid_size(self) -> int | None:
        """How many points the grid sampler has (None for other samplers)."""
        return math.prod(len(d.choices) for d in self.dimensions()) if self.sampler.name == "grid" else None


def _check_point(point: Any, dims: dict[str, Dimension], where: str) -> None:
    if not isinstance(point, dict) or not point:
        raise ValueError(f"{where}: expected a mapping of space keys to values, got {show(point)}")
    for key, value in point.items():
        if key not in dims:
            raise ValueError(f"{where}: {show(key)} is not a key of the space" + suggest(str(key), dims)
                             + f"; keys: {', '.join(dims)}")
        if not dims[key].contains(value):
            dim = dims[key]
            allowed = (", ".join(show_value(c) for c in dim.choices) if dim.kind == "choice"
                       else f"{dim.kind} [{dim.low!r}, {dim.high!r}]")
            raise ValueError(f"{where}: {key}: {show_value(value)} is outside the space ({allowed})")


# ---------------------------------------------------------------------------------------------
# Reading a spec, and checking it against the config it tunes


def read_spec(raw: Any, source: str) -> TuneSpec:
    """Validate a spec (a --space file's contents or the config's `tune:` section); ConfigError
    with `source: key: message` otherwise."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with space, objective, sampler, ..., got {kind_of(raw)}")
    try:
        return TuneSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc, raw, root=TuneSpec)}") from None


def load_spec(path: str | Path) -> TuneSpec:
    """Read and validate a --space file."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would be read forever, /dev/zero without end
            raise ConfigError(f"{path}: cannot read the space file (not a regular file)")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {info.st_size} bytes; a space file is at most {MAX_CONFIG_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such space file") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ConfigError(f"{path}: cannot read the space file ({exc.__class__.__name__})") from None
    return read_spec(parse_yaml(text, source=str(path)), str(path))
