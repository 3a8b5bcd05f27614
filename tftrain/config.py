"""The YAML schema as pydantic v2 models, and `load_config(path, overrides) -> Config`.

The config is validated once, in strict mode (no silent coercion: `epochs: "3"` is an error),
and frozen. Every default carries a comment saying why. Nothing here imports TensorFlow or
NumPy: `tftrain validate` and `tftrain show` must stay instant.

Adding to the schema without slowing `validate` down (issue 21). Every process that validates
pays for building the validators of every class reachable from `Config`, whatever the config
uses (60 fields in 11 classes took ~20 ms of every validate on a loaded 2-core machine); a table
read by lookup costs nothing until a value is checked.
- A table of names (layers, schedules, augmentations, search spaces) is plain data in
  tftrain.catalog or the module that owns it, checked by lookup: `NameCheck(kind, table)` or a
  `_Named` subclass (name + Keras parameters). Never a `Literal`, Enum or union with one member
  (or one class) per entry: pydantic compiles each member into the config's validator.
- A large table only some configs use lives in a module of its own, imported on first use:
  `NameCheck(kind, loader)` with a `functools.cache` function that imports and returns it (the
  checker calls it only when the field has a value); `tftrain schema` still lists every name.
- Parameters that depend on a chosen name (like `data.options`) are one class per name,
  validated inside a field validator (`DataConfig._dataset_options`): only the named class is
  built, since every schema class defers its build (`Strict`, `_Named`) to first use.
- Validators are built inside `building_validators()` (in `validate`, `compose_config` and
  `tftrain schema`), which skips pydantic's plugin lookup.
- bench/compare.py --cases cli measures validate on the smallest and the largest config, and
  tests/test_cli_conventions.py checks that these commands import no TensorFlow, Keras, NumPy
  or rich.markdown.
"""

from __future__ import annotations

import functools
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tftrain import catalog
from tftrain.compose import Composed, Source, compose, escape
from tftrain.errors import ConfigError
from tftrain.models import BY_TAG, MODEL_TYPES, TAGS, DenseModel
from tftrain.plugins import check_entry, check_module_name, is_registered_name, snake_name, validating
from tftrain.plugins import import_plugins as import_modules
from tftrain.schema import MAX_EPOCHS, BatchSize, Epochs, Seed, Steps, Threads
from tftrain.schema import NameCheck, Strict, building_validators, kind_of, show, suggest, unknown
from tftrain.tune_spec import TuneSpec

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
# `gpu:0`, `/gpu:0`, `/device:GPU:0`, `CPU:1`: the local device names tf.distribute accepts.
DEVICE_PATTERN = r"(/?device:|/)?(cpu|gpu):(\d+)"
# A YAML file needs a handful of aliases at most; thousands are an alias ("billion laughs") bomb.
MAX_YAML_ALIASES = 100
# A config has tens of values; counted with aliases expanded, the classic bomb (9 levels of 9-10
# aliases, under the alias limit) has hundreds of millions. Refused before anything is built.
MAX_YAML_VALUES = 100_000
# A config's mappings nest a few levels; hundreds would only exhaust the parser's recursion.
MAX_YAML_DEPTH = 50
# A config file is kilobytes; reading megabytes would only be slow on the way to an error.
MAX_CONFIG_BYTES = 1_000_000
# data.in_memory_max_mb above a petabyte is a typo (the value is in MiB), not a machine.
MAX_MEMORY_MB = 2**30
# A permuted window is held in memory (tftrain.data.streaming): 100 million records is already gigabytes.
MAX_SHUFFLE_BUFFER = 100_000_000


class _Named(BaseModel):
    """A Keras component written as `name` or `{name: ..., <keras parameters>}`, checked by
    looking the name and parameters up in its catalog table (any size costs one lookup)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, allow_inf_nan=False, defer_build=True)
    name: str

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def params(self) -> dict[str, Any]:
        """The Keras constructor arguments (everything but `name`)."""
        return dict(self.model_extra or {})

    @property
    def canonical(self) -> str:
        """The catalog name after resolving aliases such as `mse`."""
        return self._aliases.get(self.name, self.name)

    # Class variables, not pydantic private attributes: those are deep-copied into every
    # instance, which cost more than the rest of validating a config (catalog tables of sets).
    _table: ClassVar[dict] = {}
    _aliases: ClassVar[dict] = {}
    _required: ClassVar[dict] = {}  # name -> parameters Keras requires
    _kind: ClassVar[str] = ""

    @classmethod
    def choices(cls) -> dict[str, frozenset[str]]:
        """Every name this component accepts (aliases included) -> the Keras parameters it takes."""
        return {**{name: params for name, (_, params) in cls._table.items()},
                **{alias: cls._table[name][1] for alias, name in cls._aliases.items()}}

    @model_validator(mode="after")
    def _known(self) -> _Named:
        if is_registered_name(self.name) and self._kind in ("loss", "metric"):
            check_entry(self._kind, self.name, self.params)  # a plugin's class: its own signature
            return self
        if self.canonical not in self._table:
            raise ValueError(unknown(self._kind, self.name, [*self._table, *self._aliases]))
        allowed = self._table[self.canonical][1]
        for key, value in (self.model_extra or {}).items():  # declared fields have their own types
            if key not in allowed:
                hint = catalog.PARAMETER_HINTS.get((self.canonical, key))
                raise ValueError(
                    f"unknown parameter '{key}' for {self._kind} '{self.name}'"
                    + (f" ({hint})" if hint else suggest(key, allowed)) + f"; valid: {', '.join(sorted(allowed))}")
            problem = catalog.PARAMETERS[key].problem(value)
            if problem:  # a leading "." makes the message name the parameter's key path
                raise ValueError(f".{key}: {problem} ({self._kind} {self.name})")
        missing = [key for key in self._required.get(self.canonical, ()) if key not in (self.model_extra or {})]
        if missing:
            raise ValueError(f"{self._kind} {self.name}: required parameter '{missing[0]}' is missing")
        for group in catalog.EXCLUSIVE:
            given = [key for key in group if self.params.get(key) is not None]
            if len(given) > 1:
                raise ValueError(f"{' and '.join(given)} cannot be combined: Keras's {self.name} takes one of "
                                 f"{', '.join(group)}")
        return self


class LossConfig(_Named):
    """`loss: mse` or `loss: {name: sparse_categorical_crossentropy, from_logits: true}`; a
    plugin's loss by its registered name, with `task:` (what it trains, which Keras's own
    losses imply): `{name: "my_pkg>FocalLoss", task: classes, gamma: 2.0}`."""

    _table = catalog.LOSSES
    _aliases = catalog.LOSS_ALIASES
    _kind = "loss"

    @model_validator(mode="before")
    @classmethod
    def _plugin_task(cls, value: Any) -> Any:
        """A plugin loss says what it trains (`task`, tftrain's key, not the class's)."""
        name = value.get("name") if isinstance(value, dict) else value
        if not is_registered_name(name):
            return value
        task = value.get("task") if isinstance(value, dict) else None
        tasks = sorted(set(catalog.LOSS_TASKS.values()))
        if task not in tasks:
            given = "" if task is None else f", got {show(task)}"
            raise ValueError(f".task: loss {show(name)} is a plugin's: say what it trains with task: one of "
                             f"{', '.join(tasks)} (how labels are checked and outputs read){given}")
        return value

    @property
    def params(self) -> dict[str, Any]:
        """The Keras constructor arguments (a plugin loss's `task` is tftrain's, not one)."""
        params = dict(self.model_extra or {})
        if is_registered_name(self.name):
            params.pop("task", None)
        return params

    @property
    def task(self) -> str:
        """What the loss trains (tftrain.catalog.LOSS_TASKS; a plugin loss says it with `task`)."""
        if is_registered_name(self.name):
            return self.model_extra["task"]
        return catalog.LOSS_TASKS[self.canonical]


class MetricConfig(_Named):
    """`accuracy` or `{name: auc, from_logits: true}`."""

    _table = catalog.METRICS
    _aliases = catalog.METRIC_ALIASES
    _required = catalog.METRIC_REQUIRED
    _kind = "metric"

    @property
    def logged_name(self) -> str:
        """The name its values are logged under: `name:` if given, else the name as written (a
        plugin's registered name in snake_case: "my_pkg>MacroF1" -> macro_f1)."""
        given = self.params.get("name")
        if isinstance(given, str):
            return given
        return snake_name(self.name) if is_registered_name(self.name) else self.name


def _learning_rate_tag(value: Any) -> str | None:
    """Which member of `LearningRate` a value is: `number`, or the schedule it names."""
    if isinstance(value, dict):
        return value.get("schedule")
    return getattr(value, "schedule", "number")  # a validated schedule, else a number (or a wrong type)


# A number, or `{schedule: NAME, ...}` (tftrain.catalog.SCHEDULES), told apart by `schedule`.
LearningRate = Annotated[
    Union[(Annotated[Annotated[float, Field(gt=0)], Tag("number")],
           *(Annotated[schema, Tag(name)] for name, (_, schema) in catalog.SCHEDULES.items()))],
    Discriminator(_learning_rate_tag)]


class OptimizerConfig(_Named):
    """`{name: sgd, learning_rate: 0.01, momentum: 0.9}`: any argument of the Keras class; the
    learning rate may be a schedule with warmup (tftrain.catalog.SCHEDULES)."""

    _table = catalog.OPTIMIZERS
    _kind = "optimizer"

    name: str = "sgd"  # the tutorials' default; the seed configs all name theirs
    learning_rate: LearningRate = 0.01  # Keras's SGD default

    @model_validator(mode="before")
    @classmethod
    def _known_schedule(cls, value: Any) -> Any:
        rate = value.get("learning_rate") if isinstance(value, dict) else None
        if isinstance(rate, dict):
            name = rate.get("schedule")
            if name is None:
                raise ValueError(".learning_rate.schedule: required key is missing (a number, or a schedule: "
                                 f"one of {', '.join(catalog.SCHEDULES)})")
            if not isinstance(name, str):
                raise ValueError(f".learning_rate.schedule: expected a schedule name, got {show(name)}")
            if name not in catalog.SCHEDULES:
                raise ValueError(".learning_rate.schedule: " + unknown("schedule", name, catalog.SCHEDULES))
        return value

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate follows a schedule (else it is a constant)."""
        return not isinstance(self.learning_rate, (int, float))

    @property
    def params(self) -> dict[str, Any]:
        """The Keras constructor arguments; a schedule is built by tftrain.training.schedules."""
        return {"learning_rate": self.learning_rate, **(self.model_extra or {})}


# `data.validation`: test, none or a fraction; the JSON Schema says so (the validator, in words).
ValidationSplit = Annotated[str | float, WithJsonSchema({"anyOf": [
    {"enum": ["test", "none"]}, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}]})]


class DataConfig(Strict):
    """Where the examples come from and how they are batched."""

    dataset: str  # no sensible default: the user must say what to train on
    path: str | None = None  # null -> the Keras cache dir, then the normal download
    batch_size: BatchSize = 32  # Keras's default batch size
    shuffle: bool = True  # reshuffle every epoch, seeded by the run's seed
    validation: ValidationSplit = "test"  # the tutorials validate on the test split; or a fraction, or none
    limit: Steps | None = None  # null -> every training example; N for quick smoke runs
    options: dict[str, Any] = Field(default_factory=dict, validate_default=True)  # per-dataset knobs (synthetic sizes, csv label column)
    # Data whose decoded size is at most this many MiB is read into memory (fastest; any
    # sampling); larger data streams from disk with bounded memory. auto: a quarter of this
    # machine's memory, leaving room for the model, the pipeline and a copy; 0 always streams.
    # The value used is recorded in the run's config.yaml, so a resume reads the data the same way.
    in_memory_max_mb: Annotated[int, Field(ge=0, le=MAX_MEMORY_MB)] | Literal["auto"] = "auto"
    # Streamed records are mixed in windows of this many (a seeded permutation per window and
    # epoch, after the files are put in a seeded order); auto: as many as fill 16 MiB, between
    # 1,024 and 100,000. In-memory data is always shuffled whole.
    shuffle_buffer: Annotated[int, Field(gt=0, le=MAX_SHUFFLE_BUFFER)] | Literal["auto"] = "auto"
    augmentation: list[Any] = Field(default_factory=list)  # none: augmentation is a choice per dataset
    augmentation_on: Literal["pipeline", "model"] = "pipeline"  # tf.data on the CPU, in parallel with the step; model: on a GPU
    normalize: Literal["auto", "per_channel", "none"] = "auto"  # auto: uint8 images scaled to [0, 1], other data as is

    @field_validator("augmentation")
    @classmethod
    def _augmentation_layers(cls, value: list[Any]) -> list[dict[str, dict[str, Any]]]:
        """Each entry a layer name (tftrain.catalog.AUGMENTATIONS) or `{name: {keras arguments}}`;
        returned as `[{name: {arguments}}, ...]`."""
        layers = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                entry = {entry: {}}
            if not (isinstance(entry, dict) and len(entry) == 1):
                raise ValueError(f".{i}: expected a layer name or {{name: {{arguments}}}} such as "
                                 f"{{random_flip: {{mode: horizontal}}}}, got {show(entry)}")
            (name, params), = entry.items()
            params = {} if params is None else params
            if name not in catalog.AUGMENTATIONS:
                raise ValueError(f".{i}: " + unknown("augmentation", name, catalog.AUGMENTATIONS))
            if not isinstance(params, dict):
                raise ValueError(f".{i}.{name}: expected a mapping of Keras arguments, got {show(params)}")
            allowed = catalog.AUGMENTATIONS[name][1]
            for key in params:
                if key not in allowed:
                    why = " (tftrain seeds every layer from the run's seed)" if key == "seed" else suggest(key, allowed)
                    raise ValueError(f".{i}.{name}: unknown parameter '{key}'{why}; valid: "
                                     f"{', '.join(sorted(allowed)) or 'none'}")
            layers.append({name: dict(params)})
        return layers

    @field_validator("validation")
    @classmethod
    def _validation_split(cls, value: str | float) -> str | float:
        if value in ("test", "none") or (isinstance(value, float) and 0 < value < 1):
            return value
        raise ValueError(f"expected 'test', 'none' or a fraction between 0 and 1, got {show(value)}"
                         + (suggest(value, ["test", "none"]) if isinstance(value, str) else ""))

    _known_dataset = field_validator("dataset")(NameCheck("dataset", catalog.DATASETS))

    @field_validator("options")
    @classmethod
    def _dataset_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Validate the options against the dataset's own schema and fill in its defaults."""
        dataset = info.data.get("dataset")
        if dataset not in catalog.DATASETS:
            return value  # the dataset error is reported instead
        schema = catalog.DATASETS[dataset]
        try:
            return schema.model_validate(value).model_dump()
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] == "extra_forbidden":
                key, valid = str(error["loc"][-1]), list(schema.model_fields)
                raise ValueError(
                    f"unknown option '{key}' for dataset {dataset}" + suggest(key, valid)
                    + f"; valid options: {', '.join(valid) or 'none'}") from None
            # A leading "." tells format_validation_error to append this to the key path.
            raise ValueError("." + _format_error(exc.errors()[0], value, schema)) from None


# Every registered model type (tftrain.models), told apart by `type`.
ModelConfig = Annotated[Union[MODEL_TYPES], Field(discriminator="type")]


class EarlyStoppingConfig(Strict):
    """Stop when `monitor` has not improved for `patience` epochs (keras.callbacks.EarlyStopping)."""

    monitor: str = "val_loss"  # validation loss is what generalisation is judged on
    patience: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 3  # a few noisy epochs are not a plateau
    mode: Literal["min", "max", "auto"] = "auto"  # Keras infers max for accuracy-like names
    min_delta: Annotated[float, Field(ge=0)] = 0.0  # any improvement counts
    restore_best_weights: bool = False  # Keras's default; the best model is kept in checkpoints/ anyway


class PlateauConfig(Strict):
    """Divide the learning rate when `monitor` stops improving (keras.callbacks.ReduceLROnPlateau)."""

    monitor: str = "val_loss"  # Keras's default: validation loss
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1  # Keras's default: a tenth of the rate
    patience: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 2  # below early stopping's 3: the rate drops before such a run would stop
    min_lr: Annotated[float, Field(ge=0)] = 0.0  # Keras's default: no floor
    cooldown: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 0  # Keras's default: count patience again at once
    min_delta: Annotated[float, Field(ge=0)] = 1e-4  # Keras's default: smaller changes are no improvement
    mode: Literal["min", "max", "auto"] = "auto"  # max for accuracy/auc-like names, else min


class CheckpointConfig(Strict):
    """Which metric decides the `best` checkpoint, and how often the resume state is saved."""

    monitor: str = "val_loss"  # validation loss; falls back to `loss` when there is no validation
    mode: Literal["min", "max", "auto"] = "auto"  # max for accuracy/auc-like names, else min
    every_steps: Steps | None = None  # null: resume state at epoch ends; N: every N steps too (long epochs)


class TrainingConfig(Strict):
    """How long and with which loop to train."""

    loop: Literal["fit", "custom"] = "fit"  # model.fit; `custom` is a tf.GradientTape loop
    epochs: Epochs = 5  # enough to see curves move on the seed datasets
    steps: Steps | None = None  # set -> train this many steps instead of epochs
    sampling: Literal["sequential", "with_replacement"] = "sequential"  # epochs walk the (shuffled) data in order
    log_every: Steps | None = None  # steps per progress line/history row in steps mode; null -> steps/10
    early_stopping: EarlyStoppingConfig | None = None  # off: the user chose the epoch count
    reduce_lr_on_plateau: PlateauConfig | None = None  # off: the learning rate is optimizer.learning_rate
    class_weight: Literal["balanced"] | dict[int | str, Annotated[float, Field(ge=0)]] | None = None  # every example counts the same
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)  # best + last every epoch
    run_eagerly: bool = False  # true runs Python step by step, for debugging with print/pdb
    steps_per_execution: Steps | Literal["auto"] = "auto"  # steps per compiled call: same results, less Python per step
    jit_compile: bool | Literal["auto"] = "auto"  # XLA as Keras decides: on GPUs when the model supports it, never on CPU
    cpu_threads: Threads | Literal["auto"] = "auto"  # TF intra-op threads; auto: 1 for tiny steps on CPU, else one per core
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"  # exact by default
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"  # one device; scaling out is opt-in
    devices: list[str] | None = None  # mirrored only: null -> every visible GPU (the CPU if none)
    distribute_timeout: Annotated[int, Field(gt=0, le=7 * 24 * 3600)] = 300  # seconds to wait for the other workers: time to start them by hand
    # A plugin's registered callbacks: ["my_pkg>Recorder", {"my_pkg>Recorder": {every: 10}}].
    callbacks: list[Any] = Field(default_factory=list)  # none: tftrain's own callbacks only

    @field_validator("callbacks")
    @classmethod
    def _plugin_callbacks(cls, value: list[Any]) -> list[dict[str, dict[str, Any]]]:
        """Each a registered name or `{name: {parameters}}`; returned as `[{name: {parameters}}]`."""
        entries = []
        for i, entry in enumerate(value):
            name, params = (entry, {}) if isinstance(entry, str) else (
                next(iter(entry.items())) if isinstance(entry, dict) and len(entry) == 1 else (None, None))
            params = {} if params is None and name is not None else params
            if not isinstance(name, str) or not isinstance(params, dict):
                raise ValueError(f".{i}: expected a callback's registered name or {{name: {{parameters}}}} such as "
                                 f'{{"my_pkg>Recorder": {{every: 10}}}}, got {show(entry)}')
            if not is_registered_name(name):
                raise ValueError(f'.{i}: {show(name)} is not a registered name ("package>Name"): training.callbacks '
                                 "lists a plugin's own callbacks (tftrain's are keys of training:)")
            check_entry("callback", name, params)
            entries.append({name: dict(params)})
        return entries

    @field_validator("devices")
    @classmethod
    def _device_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("expected at least one device such as gpu:0, or null for every GPU")
        for name in value:
            if not re.fullmatch(DEVICE_PATTERN, name, flags=re.IGNORECASE):
                raise ValueError(f"expected device names such as gpu:0 or cpu:1, got {show(name)}")
        canonical = [canonical_device(name) for name in value]
        duplicates = sorted({name for name in canonical if canonical.count(name) > 1})
        if duplicates:
            raise ValueError(f"{duplicates[0]} is listed twice")
        return value

    @field_validator("class_weight", mode="before")
    @classmethod
    def _class_weights(cls, value: Any) -> Any:
        """`{class: weight}`: keys are class indices (digits too: "0" is what a JSON round trip of 0
        gives) or class names; weights are numbers >= 0, at least one of them positive."""
        if not isinstance(value, dict):
            return value
        weights = {}
        for key, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
                raise ValueError(f".{key}: expected a weight >= 0, got {show(weight)}")
            weights[int(key) if isinstance(key, str) and key.isdigit() else key] = float(weight)
        if not any(weights.values()):
            raise ValueError("expected at least one positive weight (classes not listed weigh 1.0)")
        return weights

    @model_validator(mode="after")
    def _sampling_needs_steps(self) -> TrainingConfig:
        if self.sampling == "with_replacement" and self.steps is None:
            raise ValueError("sampling 'with_replacement' draws examples forever: set training.steps")
        if self.log_every is not None and self.steps is not None and self.steps % self.log_every:
            # Training is cut into whole log intervals: the rest would silently not be trained.
            fits = self.steps // self.log_every * self.log_every
            raise ValueError(f".log_every: training.steps {self.steps} is not a multiple of log_every {self.log_every} "
                             f"(it would train {fits} steps); use steps and log_every that divide evenly")
        return self

    @model_validator(mode="after")
    def _devices_need_mirrored(self) -> TrainingConfig:
        if self.devices is not None and self.distribute != "mirrored":
            # A leading "." makes format_validation_error report this under training.devices.
            raise ValueError(f".devices: only used with distribute: mirrored (distribute is {self.distribute}); "
                             "multi_worker uses every GPU of each worker")
        if self.jit_compile is True and self.distribute != "none":
            # Keras itself turns `auto` off under a strategy; XLA fails on replicas' mirrored variables.
            raise ValueError(f".jit_compile: true cannot be combined with distribute: {self.distribute}; "
                             "use false or auto (auto turns XLA off under a strategy, as Keras does)")
        if (self.loop == "fit" and self.distribute != "none" and self.steps_per_execution != "auto"
                and self.steps_per_execution > 1):
            # Keras's multi-step call puts the step in a tf.cond, which fails under a strategy.
            raise ValueError(f".steps_per_execution: {self.steps_per_execution} cannot be combined with loop: fit "
                             f"and distribute: {self.distribute} (Keras's fit fails on it under tf.distribute, "
                             "keras-team/keras#19246); use 1 or auto, or loop: custom, which takes any value")
        return self


# Tracking URIs MLflow 3 takes (its file store, `./mlruns`, is refused unless MLFLOW_ALLOW_FILE_STORE).
MLFLOW_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


class MlflowTracking(Strict):
    """Log the run to MLflow: config as params, metrics per epoch, status, files as artifacts."""

    uri: str | None = None  # null: MLFLOW_TRACKING_URI, else MLflow's default (sqlite:///mlflow.db in the working directory)
    experiment: str | None = None  # null: the config's name
    parent_run_id: str | None = None  # null: a top-level MLflow run (tune nests its trials under the study's run)
    log_model: bool = True  # model.keras is what the run produced: keep it with the run

    @field_validator("uri")
    @classmethod
    def _database_or_server(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower() if ":" in value else ""
        if scheme in ("", "file"):
            raise ValueError(f"MLflow 3 refuses a file store ({show(value)}); use a database such as "
                             "sqlite:///mlflow.db, or a tracking server such as http://localhost:5000")
        if scheme not in MLFLOW_SCHEMES:
            raise ValueError(f"unknown tracking URI scheme {show(scheme)}" + suggest(scheme, MLFLOW_SCHEMES)
                             + f"; expected one of: {', '.join(MLFLOW_SCHEMES)}")
        return value


class TrackingConfig(Strict):
    """Experiment trackers a run also logs to (its run directory is written either way)."""

    mlflow: MlflowTracking | None = None  # none unless named: tracking needs a server or database


class Config(Strict):
    """One training run, fully described."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None  # null -> the config file's stem
    seed: Seed | None = 0  # fixed so two runs of one config agree; null picks one and records it
    deterministic: bool = False  # true trades speed for bit-identical reruns (op determinism)
    data: DataConfig  # no sensible default: the user must say what to train on
    model: ModelConfig = Field(default_factory=lambda: DenseModel(type="dense"))  # the MNIST tutorial's model
    loss: LossConfig  # no sensible default: it depends on the labels
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)  # plain SGD, lr 0.01
    metrics: list[MetricConfig] = Field(default_factory=list)  # the loss is always reported
    training: TrainingConfig = Field(default_factory=TrainingConfig)  # model.fit for 5 epochs
    tracking: TrackingConfig | None = None  # the run directory alone; {mlflow: {...}} also logs to MLflow
    tune: TuneSpec | None = None  # what `tftrain tune` searches (tftrain run ignores it)
    plugins: list[str] = Field(default_factory=list)  # none: only Keras's own objects; modules are imported first

    @field_validator("plugins")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            try:
                check_module_name(name)
            except ValueError as exc:
                raise ValueError(f".{i}: {exc}") from None
        if len(set(value)) < len(value):
            raise ValueError(f"a module is listed twice: {', '.join(value)}")
        return value

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, value: str | None) -> str | None:
        if value in (".", ".."):  # allowed by the pattern, but they name a folder that exists
            raise ValueError(f"expected letters, digits, '.', '_' or '-' making a name, got {show(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        from tftrain.config_checks import problems

        found = problems(self)
        if found:
            raise ValueError("\n".join(found))
        return self

    def to_yaml(self) -> str:
        """The fully resolved config, every default included, loadable by `load_config` (no
        `extends`; a literal `${` is written `$${`, so reading it back changes nothing)."""
        return yaml.safe_dump(escape(self.model_dump(mode="json")), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), import_plugins: bool = True) -> Config:
    """Read, compose (`extends`, `${env:...}`), override and validate a config file; raises
    ConfigError with a one-line message. `import_plugins`: import the modules its `plugins`
    names (a config the user runs); False for a run directory's (tftrain.plugins.require)."""
    composed = compose_config(path, overrides)
    return validate(composed.raw, composed, import_plugins=import_plugins)


def compose_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Composed:
    """The raw config of `path` (its `extends` chain merged, environment variables resolved,
    `--set` applied, `name` defaulted) with the source of every key, before validation."""
    path = Path(path)
    with building_validators():  # selector_keys builds the default model
        switches = selector_keys()
    composed = compose(path, _read_config_file, switches)
    raw = composed.raw
    for override in overrides:
        composed.set(apply_override(raw, override), Source("--set", in_file=False))
    if raw.get("name") is None:
        raw["name"] = _default_name(path)
        composed.set(("name",), Source("default: the config file's name", in_file=False))
    return composed


def _read_config_file(path: Path, where: str, extended: bool) -> Any:
    """One file's YAML, through the same safe loader and alias-bomb check as every config."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (reading one would wait forever), a device
            raise ConfigError(f"{where}: cannot read the config (not a regular file)")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{where}: {size} bytes; a config is at most {MAX_CONFIG_BYTES} (is this the right file?)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file" if extended else f"{where}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: cannot read the config (not UTF-8 text)") from None
    except OSError as exc:  # a folder, no permission, a loop of symbolic links, an I/O error
        raise ConfigError(f"{where}: cannot read the config ({exc.strerror or exc.__class__.__name__})") from None
    raw = parse_yaml(text, source=where)
    if not isinstance(raw, dict) and not extended:
        raise ConfigError(f"{where}: expected a mapping of keys (name, data, model, ...), got {kind_of(raw)}")
    return raw


@functools.cache
def selector_keys(model: type[BaseModel] | None = None, prefix: tuple = ()) -> dict[tuple, tuple[str, Any]]:
    """Key paths whose mapping is chosen by one key, with that key's default: a model by its
    `type` (a discriminated union), a Keras component by its `name`. A merge that changes it
    starts the mapping afresh (tftrain.compose). Derived from the schema, so new ones count."""
    found: dict[tuple, tuple[str, Any]] = {}
    for name, info in (model or Config).model_fields.items():
        path, nested = (*prefix, name), _model_in(info.annotation)
        if _is_list(info.annotation):
            continue  # lists replace whole in a merge: nothing to choose
        if isinstance(info.discriminator, str):
            default = info.get_default(call_default_factory=True)
            found[path] = (info.discriminator, getattr(default, info.discriminator, None))
        elif nested is not None and issubclass(nested, _Named):
            default = nested.model_fields["name"].default
            found[path] = ("name", default if isinstance(default, str) else None)
        if nested is not None and not isinstance(info.discriminator, str):
            found.update(selector_keys(nested, path))
    return found


def _is_list(annotation: Any) -> bool:
    """`list[...]`, or an optional one."""
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


class DuplicateKey(yaml.YAMLError):
    """A mapping names a key twice (YAML says keys are unique; PyYAML keeps the last silently)."""

    def __init__(self, key: Any, first: int, again: int):
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first, self.again = key, first, again


def _unique_keys(self, node, deep=False):
    """SafeConstructor.construct_mapping, refusing a key given twice (merge keys `<<` aside)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = self.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            continue  # an unhashable key: the constructor itself reports it
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKey(key, seen[key], line)
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(self, node, deep=deep)


def _yaml_12_numbers(loader: type) -> type:
    """`loader` reading numbers as YAML 1.2 does: `1e-3`, `3E+4` and `.5` are floats (YAML 1.1,
    which PyYAML follows, needs a dot: `1.0e-3`; papers write `3e-4`), and refusing duplicate
    keys. A subclass: PyYAML's own loaders are left as they are."""
    subclass = type(f"{loader.__name__}12", (loader,), {"construct_mapping": _unique_keys})
    subclass.yaml_implicit_resolvers = {key: list(value) for key, value in loader.yaml_implicit_resolvers.items()}
    subclass.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"), list("-+.0123456789"))
    return subclass


# libyaml's parser when PyYAML has it: about 20x faster than the pure-Python one on a config,
# which counts once configs extend others. Its error messages say less ("found character that
# cannot start any token", not which), so a file it refuses is read again by the pure-Python
# parser, whose message (or result, should it accept the file) is the one used.
_SAFE_LOADER = _yaml_12_numbers(yaml.SafeLoader)
_FAST_LOADER = _yaml_12_numbers(yaml.CSafeLoader) if yaml.__with_libyaml__ else _SAFE_LOADER


def parse_yaml(text: str, source: str) -> Any:
    """Safe YAML (plain data only, YAML 1.2 numbers), refusing Python tags and alias bombs
    with a clear message."""
    try:
        return _safe_load(text, source, _FAST_LOADER)
    except yaml.YAMLError as exc:
        error = exc
    if _FAST_LOADER is not _SAFE_LOADER:
        try:
            return _safe_load(text, source, _SAFE_LOADER)
        except yaml.YAMLError as exc:
            error = exc
    if isinstance(error, DuplicateKey):
        raise ConfigError(f"{source}: line {error.again}: key {show(error.key)} is given twice (first on line "
                          f"{error.first}); a key may appear once in a mapping") from None
    if isinstance(error, yaml.constructor.ConstructorError):
        problem = (getattr(error, "problem", "") or "").strip()
        raise ConfigError(f"{source}: refused YAML tag ({problem}); configs hold plain data only") from None
    mark = getattr(error, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    raise ConfigError(f"{source}:{where} invalid YAML: {problem}") from None


def _safe_load(text: str, source: str, loader: type) -> Any:
    """The alias-bomb check, then the document, with `loader` (a safe loader: plain data only)."""
    _check_expansion(text, source, loader)
    return yaml.load(text, Loader=loader)  # noqa: S506 (SafeLoader or CSafeLoader: plain data only)


def _check_expansion(text: str, source: str, loader: type = _SAFE_LOADER) -> None:
    """Walk the YAML events (nothing is built) counting aliases and the values the document
    holds once aliases are expanded; refuse an alias bomb before it can eat memory or time."""
    aliases, sizes, stack, total = 0, {}, [[None, 0]], 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_YAML_DEPTH:
                raise ConfigError(f"{source}: lists and mappings nested more than {MAX_YAML_DEPTH} levels deep; refused")
            continue
        if isinstance(event, yaml.ScalarEvent):
            size, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            aliases, size, anchor = aliases + 1, sizes.get(event.anchor, 1), None
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        stack[-1][1] += size
        total = max(total, sum(count for _, count in stack))
        if aliases > MAX_YAML_ALIASES or total > MAX_YAML_VALUES:
            what = f"{aliases} YAML aliases" if aliases > MAX_YAML_ALIASES else \
                f"more than {MAX_YAML_VALUES} values once its aliases are expanded"
            raise ConfigError(f"{source}: {what}; refused (this looks like an alias bomb)")


def apply_override(raw: dict, override: str) -> tuple[str, ...]:
    """Apply one `--set a.b.c=value` (value read as a YAML scalar) to the raw config dict;
    returns the key path it set."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. training.epochs=3")
    value = parse_yaml(text, source=f"--set {key}")
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and part in ("loss", "optimizer"):
            child = {"name": child}  # `loss: mse` + `--set loss.reduction=sum`
        elif child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"--set {key}: '{'.'.join(parts[:i + 1])}' is {kind_of(child)}, not a mapping")
        node[part] = child
        node = child
    node[parts[-1]] = value
    return tuple(parts)


def validate(raw: dict, composed: Composed | None = None, import_plugins: bool = True) -> Config:
    """Validate a raw config dict; its problems become a ConfigError of one line each, naming
    the file a bad value came from when that is not the file given (`composed`). The modules
    its `plugins` names are imported first (unless not `import_plugins`), so that their
    registered names are checked; a config that names none imports nothing."""
    modules = raw.get("plugins") if isinstance(raw, dict) else None
    if import_plugins and isinstance(modules, list) and modules:
        try:
            for module in modules:
                check_module_name(module)
        except ValueError:
            pass  # reported by the schema, with its key path
        else:
            import_modules(modules)
    try:
        with building_validators(), validating(modules):
            return Config.model_validate(raw)
    except ValidationError as exc:
        origin = (lambda loc: _origin(composed, loc)) if composed else None
        raise ConfigError(format_validation_error(exc, raw, origin=origin)) from None


def component_choices(model: type[BaseModel]) -> dict[str, frozenset[str]] | None:
    """For a `name` + Keras parameters block (loss, optimizer, metric, ...): its names and their
    parameters; None for any other schema class."""
    return model.choices() if issubclass(model, _Named) else None


def _origin(composed: Composed, loc: tuple) -> str | None:
    """The extended file(s) that wrote the value at `loc`; None for the top file, --set, defaults
    and errors about the whole config."""
    if not loc:
        return None
    files = [s.origin for s in composed.sources_within(loc) if s.in_file and s.origin != composed.top]
    return ", ".join(dict.fromkeys(files)) or None


def canonical_device(name: str) -> str:
    """`gpu:0`, `/GPU:0` and `/device:gpu:0` all name `/device:GPU:0`."""
    match = re.fullmatch(DEVICE_PATTERN, name, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a device name: {name!r}")
    return f"/device:{match[2].upper()}:{int(match[3])}"


def _default_name(path: Path) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem)
    return cleaned or "run"


# ---------------------------------------------------------------------------------------------
# Error messages: key path, what was given, what is expected, and a suggestion where one fits.

_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_POSITIVE_INTS = {"batch_size", "epochs", "shuffle_buffer", "steps", "limit", "log_every", "patience", "kernel_size",
                  "pool_size", "steps_per_execution", "num_examples", "every_steps", "distribute_timeout",
                  "cpu_threads"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


# Which problems a config's message names first: a misspelt key often explains a missing one.
_FIRST = {"extra_forbidden": 0, "missing": 1, "union_tag_invalid": 1, "union_tag_not_found": 1}


def format_validation_error(exc: ValidationError, raw: dict, root: type[BaseModel] | None = None,
                            origin: Callable[[tuple], str | None] | None = None) -> str:
    """Every problem pydantic found, one line each (`key.path: expected X, got Y`, with a
    did-you-mean where one fits): misspelt and missing keys first, one line per key path;
    `origin(key path)` names the file a value came from, where it is not the file given."""
    lines, seen = [], set()
    for error in sorted(exc.errors(), key=lambda e: _FIRST.get(e["type"], 2)):
        where = _display_loc(error["loc"])
        if where in seen:  # a union reports each of its members' complaints about one value
            continue
        seen.add(where)
        line, source = _format_error(error, raw, root or Config), origin(where) if origin else None
        lines.append(f"{source}: {line}" if source else line)
    return "\n".join(lines)


def _format_error(error: dict, raw: dict, root: type[BaseModel]) -> str:
    """One pydantic error as `key.path: expected X, got Y` (+ did-you-mean)."""
    loc = _display_loc(error["loc"])
    path = ".".join(str(p) for p in loc) or "config"
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        options = _keys_at(loc[:-1], raw, root)
        where = f" in '{parent}'" if parent else ""
        return f"unknown key '{loc[-1]}'{where}" + suggest(str(loc[-1]), options) + (
            f"; valid keys: {', '.join(options)}" if options else "")
    if kind == "union_tag_invalid":
        tags = error["ctx"]["expected_tags"].replace("'", "").split(", ")
        return f"{path}.type: " + unknown("model type", error["ctx"]["tag"], tags)
    if kind == "union_tag_not_found":
        return f"{path}.type: required key is missing (one of {', '.join(TAGS)})"
    if kind in _BOUNDS:
        bound = next(iter(error["ctx"].values()))
        expected = f"a value {_BOUNDS[kind]} {bound}"
        if kind == "greater_than" and bound == 0 and isinstance(given, int):
            expected = "a positive integer"
        return f"{path}: expected {expected}, got {show(given)}"
    if kind == "literal_error":
        options = [o.strip(" '") for o in error["ctx"]["expected"].replace(" or ", ", ").split(",")]
        return f"{path}: " + unknown("value", given, options)
    if kind == "string_pattern_mismatch":
        return f"{path}: expected letters, digits, '.', '_' or '-' only, got {show(given)}"
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        if message.startswith((".", "[")):  # a nested schema's message that starts with its own key path
            return path + message
        return f"{path}: {message}" if path != "config" else message
    expected = _EXPECTED.get(kind) or error["msg"].removeprefix("Input should be ").lower()
    if kind == "int_type" and str(loc[-1] if loc else "") in _POSITIVE_INTS:
        expected = "a positive integer"
    return f"{path}: expected {expected}, got {show(given)}"


def _display_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-member tags ('dense', 'str', 'function-after[...]') from a location."""
    out = []
    for i, part in enumerate(loc):
        is_model_tag = i > 0 and ((part in TAGS and loc[i - 1] == "model") or (
            loc[i - 1] == "learning_rate" and part in ("number", *catalog.SCHEDULES)))
        is_union_member = isinstance(part, str) and (
            part in ("str", "int", "float", "bool", "none")
            or part.startswith(("function-", "literal[", "constrained-", "list[", "dict[")))
        if not (is_model_tag or is_union_member):
            out.append(part)
    return tuple(out)


def _keys_at(loc: tuple, raw: dict, root: type[BaseModel]) -> list[str]:
    """The keys the schema accepts at `loc` (for did-you-mean on an unknown key)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        if model is Config and part == "model":
            node = raw.get("model") if isinstance(raw.get("model"), dict) else {}
            model = BY_TAG.get(node.get("type"))
        elif model is OptimizerConfig and part == "learning_rate":
            optimizer = raw.get("optimizer")
            node = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
            model = catalog.SCHEDULES.get(node.get("schedule"), (None, None))[1] if isinstance(node, dict) else None
        else:
            model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None
