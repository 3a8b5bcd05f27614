"""The config classes: the top-level `Config` and its `data:`, `loss:`, `optimizer:`, `metrics:`
and `tracking:` blocks (`training:` is tftrain.spec.training; `model:` is the registered model
types' own classes, tftrain.models; `tune:` is tftrain.spec.tune). Strict and frozen; every
default carries a comment saying why. Validated by tftrain.spec.loading.validate.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

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

from tftrain.models import MODEL_TYPES, DenseModel
from tftrain.plugins import check_entry, check_module_name, is_registered_name, snake_name
from tftrain.spec import catalog
from tftrain.spec.base import BatchSize, NameCheck, Seed, Steps, Strict, show, suggest, unknown
from tftrain.spec.compose import escape
from tftrain.spec.datasets import DATASETS
from tftrain.spec.distill import DistillConfig
from tftrain.spec.layer_bounds import check_bound
from tftrain.spec.messages import _format_error
from tftrain.spec.outputs import ONE, PER_OUTPUT, loss_tag, metrics_tag
from tftrain.spec.schedules import SCHEDULES
from tftrain.spec.training import TrainingConfig
from tftrain.spec.tune import TuneSpec

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
MAX_NAME_LENGTH = 200  # a run folder is the name plus a date, one path component (at most 255 bytes)
# data.in_memory_max_mb above a petabyte is a typo (the value is in MiB), not a machine.
MAX_MEMORY_MB = 2**30
# A permuted window is held in memory (tftrain.data.pipeline.streaming): 100 million records is already gigabytes.
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
        """What the loss trains (catalog.LOSS_TASKS; a plugin loss says it with `task`)."""
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


# One loss (metrics list) for every output, or a map output -> loss (metrics) for several
# outputs (tftrain.spec.outputs), told apart by their form.
Losses = Annotated[Union[Annotated[LossConfig, Tag(ONE)], Annotated[dict[str, LossConfig], Tag(PER_OUTPUT)]],
                   Discriminator(loss_tag)]
Metrics = Annotated[Union[Annotated[list[MetricConfig], Tag(ONE)],
                          Annotated[dict[str, list[MetricConfig]], Tag(PER_OUTPUT)]], Discriminator(metrics_tag)]
LossWeight = Annotated[float, Field(ge=0)]


def _learning_rate_tag(value: Any) -> str | None:
    """Which member of `LearningRate` a value is: `number`, or the schedule it names."""
    if isinstance(value, dict):
        return value.get("schedule")
    return getattr(value, "schedule", "number")  # a validated schedule, else a number (or a wrong type)


# A number, or `{schedule: NAME, ...}` (tftrain.spec.schedules), told apart by `schedule`.
LearningRate = Annotated[
    Union[(Annotated[Annotated[float, Field(gt=0)], Tag("number")],
           *(Annotated[schema, Tag(name)] for name, (_, schema) in SCHEDULES.items()))],
    Discriminator(_learning_rate_tag)]


class OptimizerConfig(_Named):
    """`{name: sgd, learning_rate: 0.01, momentum: 0.9}`: any argument of the Keras class; the
    learning rate may be a schedule with warmup (tftrain.spec.schedules)."""

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
                                 f"one of {', '.join(SCHEDULES)})")
            if not isinstance(name, str):
                raise ValueError(f".learning_rate.schedule: expected a schedule name, got {show(name)}")
            if name not in SCHEDULES:
                raise ValueError(".learning_rate.schedule: " + unknown("schedule", name, SCHEDULES))
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
        """Each entry a layer name (tftrain.spec.catalog.AUGMENTATIONS) or `{name: {keras arguments}}`;
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
                check_bound(key, params[key], f".{i}.{name}.{key}")  # num_ops: 1e9 would never finish tracing
            layers.append({name: dict(params)})
        return layers

    @field_validator("validation")
    @classmethod
    def _validation_split(cls, value: str | float) -> str | float:
        if value in ("test", "none") or (isinstance(value, float) and 0 < value < 1):
            return value
        raise ValueError(f"expected 'test', 'none' or a fraction between 0 and 1, got {show(value)}"
                         + (suggest(value, ["test", "none"]) if isinstance(value, str) else ""))

    _known_dataset = field_validator("dataset")(NameCheck("dataset", DATASETS))

    @field_validator("options")
    @classmethod
    def _dataset_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Validate the options against the dataset's own schema and fill in its defaults."""
        dataset = info.data.get("dataset")
        if dataset not in DATASETS:
            return value  # the dataset error is reported instead
        schema = DATASETS[dataset].options
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


class WandbTracking(Strict):
    """Log the run to Weights & Biases: config, metrics per epoch, status, the model as an artifact."""

    mode: Literal["offline", "online"] = "offline"  # offline: files in the run directory, `wandb sync` uploads them
    project: str | None = None  # null: the config's name
    entity: str | None = None  # null: W&B's default (your user or team)
    tags: list[str] = []  # none: W&B's filters are the user's to choose
    log_model: bool = True  # model.keras is what the run produced: keep it with the run


class TrackingConfig(Strict):
    """Experiment trackers a run also logs to (its run directory is written either way)."""

    mlflow: MlflowTracking | None = None  # none unless named: tracking needs a server or database
    wandb: WandbTracking | None = None  # none unless named: an account (online) or a later `wandb sync`


class Config(Strict):
    """One training run, fully described."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)] | None = None  # null -> the config file's stem
    seed: Seed | None = 0  # fixed so two runs of one config agree; null picks one and records it
    deterministic: bool = False  # true trades speed for bit-identical reruns (op determinism)
    data: DataConfig  # no sensible default: the user must say what to train on
    model: ModelConfig = Field(default_factory=lambda: DenseModel(type="dense"))  # the MNIST tutorial's model
    loss: Losses  # no sensible default: it depends on the labels; several outputs: one per output, or a map
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)  # plain SGD, lr 0.01
    metrics: Metrics = Field(default_factory=list)  # the loss is always reported; several outputs: a map, or one list for all
    loss_weights: LossWeight | dict[str, LossWeight] | None = None  # several outputs: null weighs each 1 (Keras's default)
    training: TrainingConfig = Field(default_factory=TrainingConfig)  # model.fit for 5 epochs
    distill: DistillConfig | None = None  # none: the labels alone; {teacher: RUN_DIR} also learns a run's logits
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

    @field_validator("metrics", mode="before")
    @classmethod
    def _one_metric_per_output(cls, value: Any) -> Any:
        """`metrics: {species: accuracy}` is `{species: [accuracy]}`."""
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, value: str | None) -> str | None:
        if value in (".", ".."):  # allowed by the pattern, but they name a folder that exists
            raise ValueError(f"expected letters, digits, '.', '_' or '-' making a name, got {show(value)}")
        return value

    def to_yaml(self) -> str:
        """The fully resolved config, every default included, loadable by `load_config` (no
        `extends`; a literal `${` is written `$${`, so reading it back changes nothing)."""
        return yaml.safe_dump(escape(self.model_dump(mode="json")), sort_keys=False)


def component_choices(model: type[BaseModel]) -> dict[str, frozenset[str]] | None:
    """For a `name` + Keras parameters block (loss, optimizer, metric, ...): its names and their
    parameters; None for any other schema class."""
    return model.choices() if issubclass(model, _Named) else None
