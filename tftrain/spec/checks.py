"""Mistakes no single key shows, caught across the config after the schema and before anything
is loaded, and `RunFacts`: the one answer to "what does this run train, does it validate, what does
it log and monitor", which tune, the plan, predict and evaluate ask instead of deriving it.

Each check is a small named function registered with `@check`, reading the facts computed once
(as Ludwig's config_validation/checks.py does); `problems(config)` runs them in order. Checks that
need the data are in tftrain/training/data_checks.py. No TensorFlow here: `tftrain validate` runs these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tftrain.spec import catalog, distill
from tftrain.spec.base import printable, show, suggest
from tftrain.spec.datasets import DATASETS
from tftrain.spec.outputs import SEVERAL, heads, logged_names, output_problems, several

if TYPE_CHECKING:
    from tftrain.spec.schema import Config

# Activations whose outputs are probabilities (for the one-unit tasks: sigmoid).
PROBABILITIES = {"classes": ("softmax",), "one_hot": ("softmax",), "binary": ("sigmoid",)}
LOGITS = (None, "linear")  # no activation: raw scores
# How `tftrain predict` and evaluate read a loss's task (catalog.LOSS_TASKS) from the outputs.
READ_AS = {"classes": "multiclass", "one_hot": "multiclass", "binary": "binary", "score": "score",
           "regression": "regression", SEVERAL: SEVERAL}


@dataclass(frozen=True)
class RunFacts:
    """What a run of a config trains and logs, computed once from the config alone."""

    # What the loss trains: classes | one_hot | binary | score | regression (catalog.LOSS_TASKS);
    # `several` for several outputs, each with its own (tftrain.spec.outputs.heads).
    task: str
    # Where validation examples come from: "test" (the dataset's test split), "fraction" (held out
    # of the training data), "maybe" (an .npz's x_test, known when read) or "none".
    validation: str
    metrics: tuple[str, ...]  # the names each epoch logs for training: loss, then each metric's Keras name
    monitors: dict[str, str]  # key path -> the logged name it watches (checkpoint, early stopping, plateau)
    # The config is a run directory's record, checked when that run started: files it names outside
    # the run (a distill teacher) are not read again, so evaluate works once they are gone.
    recorded: bool = False

    @classmethod
    def of(cls, config: Config, recorded: bool = False) -> RunFacts:
        """The facts of `config` (validated by the schema); `recorded`: a run directory's config."""
        training = config.training
        monitors = {"training.checkpoint.monitor": training.checkpoint.monitor}
        if training.early_stopping is not None:
            monitors["training.early_stopping.monitor"] = training.early_stopping.monitor
        if training.reduce_lr_on_plateau is not None:
            monitors["training.reduce_lr_on_plateau.monitor"] = training.reduce_lr_on_plateau.monitor
        if several(config):
            return cls(task=SEVERAL, validation=_validation_source(config), metrics=logged_names(config),
                       monitors=monitors)
        return cls(task=config.loss.task, validation=_validation_source(config),
                   metrics=("loss", *(m.logged_name for m in config.metrics)), monitors=monitors,
                   recorded=recorded)

    @property
    def validates(self) -> bool:
        """Whether the run logs `val_*` values (an .npz counts: most carry a test split)."""
        return self.validation != "none"

    @property
    def logged(self) -> list[str]:
        """The names a run logs each epoch: the metrics, and their `val_` twins when it validates."""
        return [*self.metrics, *(f"val_{name}" for name in self.metrics if self.validates)]

    @property
    def read_as(self) -> str:
        """How predict and evaluate read the model's outputs: multiclass | binary | score | regression."""
        return READ_AS[self.task]

    def validates_with(self, test_count: int | None) -> bool:
        """Whether the run validates, once the data says how many test examples it has."""
        return self.validation == "fraction" or (self.validation in ("test", "maybe") and test_count is not None)


def head_reads(config: Config) -> tuple[tuple[str, str, str | None], ...]:
    """(name, how predict and export read it, output activation) of each of several outputs; ()
    for one output."""
    if not several(config):
        return ()
    activations = config.model.node_activations()
    return tuple((h.name, READ_AS[h.loss.task], activations.get(h.node)) for h in heads(config))


def _validation_source(config: Config) -> str:
    data = config.data
    if data.validation == "none":
        return "none"
    if data.validation != "test":
        return "fraction"
    has = DATASETS[data.dataset].has_test(data.options)
    return "maybe" if has is None else ("test" if has else "none")


Check = Callable[["Config", RunFacts], "list[str] | str | None"]
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    """Register a cross-key check: `(config, facts) -> problem(s)`; run in registration order."""
    CHECKS.append(function)
    return function


def problems(config: Config, recorded: bool = False) -> list[str]:
    """Every cross-key problem of `config`, most important first (empty: none); `recorded`: it
    is a run directory's own config (RunFacts.recorded)."""
    facts = RunFacts.of(config, recorded)
    found: list[str] = []
    for run_check in CHECKS:
        result = run_check(config, facts)
        found += [result] if isinstance(result, str) else [p for p in result or () if p]
    return found


@check
def several_outputs(config: Config, facts: RunFacts) -> list[str]:
    """Several outputs: as many label columns as outputs, maps naming known outputs
    (tftrain.spec.outputs)."""
    return output_problems(config)


def _units(config: Config) -> list[tuple[str, object, list, str | None, str]]:
    """(key path, loss, metrics, output activation, its `loss` key) of each output: one, or each head."""
    if not several(config):
        return [("metrics", config.loss, config.metrics, config.model.output_activation_name(), "loss")]
    if output_problems(config):
        return []  # reported by several_outputs
    activations = config.model.node_activations()
    return [(f"metrics.{h.name}", h.loss, list(h.metrics), activations.get(h.node), f"loss.{h.name}")
            for h in heads(config)]


@check
def logits_and_loss(config: Config, facts: RunFacts) -> list[str]:
    """A model that outputs logits trained with a loss that expects probabilities (or the
    other way round) trains, to nonsense, without a word; softmax on one unit is always 1."""
    return [_logits_and_loss(loss, activation, key) for _, loss, _, activation, key in _units(config)]


def _logits_and_loss(loss, activation: str | None, key: str) -> str | None:
    task = loss.task
    if task in ("binary", "score") and activation == "softmax":
        return (f"model: softmax over the one output unit loss {loss.canonical} trains is always 1: use "
                "sigmoid (or no output activation, with from_logits: true)")
    if task not in PROBABILITIES or "from_logits" not in catalog.LOSSES.get(loss.canonical, ("", ()))[1]:
        return None
    from_logits = bool(loss.params.get("from_logits", False))
    wanted = PROBABILITIES[task][0]
    if activation in LOGITS and not from_logits:
        return (f"{key}: {loss.canonical} expects probabilities, but the model's output layer has no activation "
                f"(it outputs logits): set {key}: {{name: {loss.canonical}, from_logits: true}}, or give the "
                f"model's output layer a {wanted} activation")
    if activation in PROBABILITIES[task] and from_logits:
        return (f"{key}: {loss.canonical} has from_logits: true, but the model's output layer applies "
                f"{activation} (it outputs probabilities): drop from_logits, or remove the output activation")
    return None


@check
def test_split_named(config: Config, facts: RunFacts) -> str | None:
    """`validation: test` (the default) on data whose test split is a file the config does not name."""
    data = config.data
    option = DATASETS[data.dataset].test_option
    if data.validation != "test" or option is None or data.options.get(option):
        return None
    return (f"data.validation: test, but {data.dataset} data has a test split only with "
            f"data.options.{option}: set it, or hold out a fraction (data.validation: 0.1), or train "
            "without validation (data.validation: none)")


@check
def monitors_logged(config: Config, facts: RunFacts) -> list[str]:
    """A monitored metric the run will not log: early stopping that never stops, a best.keras
    that is never written (the checkpoint's `val_x` falls back to `x` without validation)."""
    logged = facts.logged
    found = []
    for key, name in facts.monitors.items():
        falls_back = key == "training.checkpoint.monitor" and name.removeprefix("val_") in logged
        if name not in logged and not falls_back:
            found.append(_not_logged(key, name, logged))
    return found


@check
def one_learning_rate_setter(config: Config, facts: RunFacts) -> str | None:
    """A plateau callback and a schedule would both set the learning rate."""
    if config.training.reduce_lr_on_plateau is not None and config.optimizer.scheduled:
        return ("training.reduce_lr_on_plateau: cannot be combined with a learning-rate schedule "
                f"({config.optimizer.learning_rate.schedule}): both would set the learning rate; use one of them")
    return None


@check
def class_weights_need_classes(config: Config, facts: RunFacts) -> str | None:
    """Class weights on a loss whose labels are not classes."""
    if config.training.class_weight is not None and facts.task not in ("classes", "one_hot", "binary", SEVERAL):
        return (f"training.class_weight: weights classes, but loss {config.loss.canonical} trains "
                f"{'a regression' if facts.task == 'regression' else 'signed scores'}, which has no classes")
    return None


@check
def label_mixing(config: Config, facts: RunFacts) -> list[str]:
    """mix_up and cut_mix mix labels: in the pipeline only, and on labels that can be mixed."""
    data, found = config.data, []
    for i, entry in enumerate(data.augmentation):
        (name,) = entry
        if name in catalog.LABEL_MIXING and data.augmentation_on == "model":
            found.append(f"data.augmentation.{i}.{name}: mixes labels, which a model never sees; "
                         "use data.augmentation_on: pipeline")
        elif name in catalog.LABEL_MIXING and facts.task not in ("one_hot", "binary", SEVERAL):
            found.append(f"data.augmentation.{i}.{name}: mixes labels, so it needs one-hot labels "
                         f"(categorical_crossentropy) or binary ones; loss {config.loss.canonical} takes "
                         + ("class indices: use loss categorical_crossentropy, which one-hot encodes integer "
                            "labels in the pipeline" if facts.task == "classes" else "values that do not mix"))
    return found


@check
def backbone_preprocesses(config: Config, facts: RunFacts) -> str | None:
    """per_channel statistics on pixels a keras.applications backbone rescales itself."""
    if config.data.normalize == "per_channel" and config.model.type == "application":
        return ("data.normalize: per_channel would rescale the pixels a keras.applications backbone "
                f"preprocesses itself ({config.model.name}'s preprocess_input is inside the model); use auto")
    return None


@check
def schedule_fits_the_run(config: Config, facts: RunFacts) -> list[str]:
    """In steps mode the run's length is known at validate: the warmup must end before it, and
    an "epoch" is a log interval, so boundaries are given in steps."""
    rate, steps = config.optimizer.learning_rate, config.training.steps
    if not config.optimizer.scheduled:
        return []
    if steps is None:
        epochs = config.training.epochs
        if (rate.warmup_epochs or 0) >= epochs:
            return [f"optimizer.learning_rate.warmup_epochs: {rate.warmup_epochs:g} warmup epochs, but the run "
                    f"trains {epochs} (training.epochs); the warmup must end before the run does"]
        return []
    found = []
    if rate.warmup_epochs is not None:
        found.append("optimizer.learning_rate.warmup_epochs: the run is set by training.steps, whose \"epochs\" are "
                     "log intervals; give the warmup in steps (warmup_steps)")
    if getattr(rate, "boundary_epochs", None) is not None:
        found.append("optimizer.learning_rate.boundary_epochs: the run is set by training.steps, whose "
                     "\"epochs\" are log intervals; give the boundaries in steps (boundaries)")
    if rate.warmup_steps >= steps:
        found.append(f"optimizer.learning_rate.warmup_steps: {rate.warmup_steps} warmup steps, but the run "
                     f"trains {steps} steps (training.steps); the warmup must end before the run does")
    return found


@check
def accumulation_applies(config: Config, facts: RunFacts) -> str | None:
    """Gradient accumulation over more batches than the run trains never applies an update."""
    accumulate, steps = config.optimizer.params.get("gradient_accumulation_steps"), config.training.steps
    if steps is not None and isinstance(accumulate, int) and accumulate > steps:
        return (f"optimizer.gradient_accumulation_steps: {accumulate} batches per update, but the run trains "
                f"training.steps {steps}: no update would ever be applied")
    return None


@check
def metric_tasks(config: Config, facts: RunFacts) -> list[str]:
    """A metric that reads labels or outputs of another kind than the loss trains on (F1 on
    integer class labels, R² on classes), or that thresholds probabilities of a logits model."""
    found = []
    for where, loss, metrics, _, _ in _units(config):
        found += _metric_tasks(where, loss, metrics)
    return found


def _metric_tasks(where: str, loss, metrics: list) -> list[str]:
    task, logits, found = loss.task, bool(loss.params.get("from_logits", False)), []
    for i, metric in enumerate(metrics):
        tasks = catalog.METRIC_TASKS.get(metric.canonical)
        if tasks is not None and task not in tasks:
            found.append(f"{where}.{i}: {metric.name} reads {' or '.join(_TASK_WORDS[t] for t in tasks)}, but loss "
                         f"{loss.name} trains {_TASK_WORDS[task]}" + _METRIC_HINTS.get((metric.canonical, task), ""))
        elif metric.canonical in catalog.THRESHOLDED and logits:
            found.append(f"{where}.{i}: {metric.name} thresholds probabilities, but the model outputs logits "
                         f"(loss {loss.name} has from_logits: true); give the output layer a sigmoid or softmax "
                         "activation and drop from_logits")
    return found


# What each task's labels are, in messages.
_TASK_WORDS = {"classes": "integer class labels", "one_hot": "one-hot labels", "binary": "binary labels (0 or 1)",
               "score": "signed scores (-1 or 1)", "regression": "real-valued targets"}
_METRIC_HINTS = {(name, "classes"): " (one-hot labels with categorical_crossentropy; mean_iou reads class indices)"
                 for name in ("f1_score", "fbeta_score", "precision_at_recall", "recall_at_precision",
                              "one_hot_iou", "one_hot_mean_iou")}


@check
def unfreeze_fits(config: Config, facts: RunFacts) -> str | None:
    """training.unfreeze against the rest of the config: a frozen backbone to unfreeze, an epoch
    the run reaches, a learning rate that no schedule also sets."""
    unfreeze, model = config.training.unfreeze, config.model
    if unfreeze is None:
        return None
    if model.type not in ("application", "hub"):
        return (f"training.unfreeze: model.type {model.type} has no pretrained backbone to unfreeze "
                "(application and hub do)")
    if getattr(model, "lora", None) is not None:
        return ("training.unfreeze: cannot be combined with model.lora, which keeps the backbone frozen "
                "and trains adapters instead")
    if getattr(model, "trainable", None) is True:
        return ("training.unfreeze: the backbone already trains from the start (model.trainable: true); set "
                "model.trainable: false (or N, its last N layers) to train the head first")
    if config.training.steps is not None:
        return "training.unfreeze: counts epochs; the run trains training.steps (use training.epochs)"
    if unfreeze.epoch > config.training.epochs:
        return (f"training.unfreeze.epoch: {unfreeze.epoch} is past the last epoch ({config.training.epochs}): "
                "the backbone would never train")
    if unfreeze.learning_rate is not None and config.optimizer.scheduled:
        return (f"training.unfreeze.learning_rate: {show(unfreeze.learning_rate)} cannot be combined with a "
                f"learning-rate schedule ({config.optimizer.learning_rate.schedule}): both would set the rate")
    return None


@check
def distill_teacher(config: Config, facts: RunFacts) -> str | None:
    """distill: a classifier (not hub, not multi_worker) taught by a completed run on the same data (spec.distill)."""
    return None if config.distill is None else distill.problems(config, facts)


def _not_logged(key: str, name: str, logged: list[str]) -> str:
    hint = suggest(name, logged) or suggest(name.removeprefix("val_"), logged)  # val_x without validation: x
    why = " (the run has no validation data)" if name.startswith("val_") and not any(
        n.startswith("val_") for n in logged) else ""
    return f"{key}: the run does not log \"{printable(name)}\"{why}{hint}; it logs: {', '.join(logged)}"
