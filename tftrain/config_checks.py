"""Mistakes no single key shows, caught across the config before anything is loaded: what the
model's output layer gives against what the loss expects, a validation split the data cannot
have, and training recipes that cannot work together or with this loss. (Checks that need the data are in tftrain/data/checks.py.) No TensorFlow here:
`tftrain validate` runs these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tftrain import catalog
from tftrain.schema import printable, suggest

if TYPE_CHECKING:
    from tftrain.config import Config

# Activations whose outputs are probabilities (for the one-unit tasks: sigmoid).
PROBABILITIES = {"classes": ("softmax",), "one_hot": ("softmax",), "binary": ("sigmoid",)}
LOGITS = (None, "linear")  # no activation: raw scores
# Datasets whose test split is a file named in their options; without it there is none.
TEST_PATH_OPTION = {"csv": "test_path", "image_folder": "test_path", "tfrecord": "test_path", "tfds": "split_test"}


def problems(config: Config) -> list[str]:
    """Every cross-key problem of `config`, most important first (empty: none)."""
    from tftrain.models.stages import unfreeze_problem

    return [p for p in (_logits_and_loss(config), _validation_split(config), *_monitors(config),
                        *_recipes(config), unfreeze_problem(config)) if p]


def logged_names(config: Config) -> list[str]:
    """The names a run of `config` logs each epoch: loss, each metric (by its Keras `name`),
    and their `val_` twins unless it trains without validation."""
    names = ["loss", *(metric.params.get("name", metric.name) for metric in config.metrics)]
    return names + ([] if config.data.validation == "none" else [f"val_{name}" for name in names])


def _monitors(config: Config) -> list[str | None]:
    """A monitored metric the run will not log: early stopping that never stops, a best.keras
    that is never written (the checkpoint's `val_x` falls back to `x` without validation)."""
    logged, training = logged_names(config), config.training
    checkpoint = training.checkpoint.monitor
    found = []
    if checkpoint not in logged and checkpoint.removeprefix("val_") not in logged:
        found.append(_not_logged("training.checkpoint.monitor", checkpoint, logged))
    if training.early_stopping is not None and training.early_stopping.monitor not in logged:
        found.append(_not_logged("training.early_stopping.monitor", training.early_stopping.monitor, logged))
    plateau = training.reduce_lr_on_plateau
    if plateau is not None and plateau.monitor not in logged:
        found.append(_not_logged("training.reduce_lr_on_plateau.monitor", plateau.monitor, logged))
    return found


def _recipes(config: Config) -> list[str]:
    """Training recipes that cannot work together, or not with this loss (tests/test_recipes.py)."""
    training, data, optimizer = config.training, config.data, config.optimizer
    task = catalog.LOSS_TASKS[config.loss.canonical]
    found = []
    if training.reduce_lr_on_plateau is not None and optimizer.scheduled:
        found.append("training.reduce_lr_on_plateau: cannot be combined with a learning-rate schedule "
                     f"({optimizer.learning_rate.schedule}): both would set the learning rate; use one of them")
    if training.class_weight is not None and task not in ("classes", "one_hot", "binary"):
        found.append(f"training.class_weight: weights classes, but loss {config.loss.canonical} trains "
                     f"{'a regression' if task == 'regression' else 'signed scores'}, which has no classes")
    for i, entry in enumerate(data.augmentation):
        (name,) = entry
        if name in catalog.LABEL_MIXING and data.augmentation_on == "model":
            found.append(f"data.augmentation.{i}.{name}: mixes labels, which a model never sees; "
                         "use data.augmentation_on: pipeline")
        elif name in catalog.LABEL_MIXING and task not in ("one_hot", "binary"):
            found.append(f"data.augmentation.{i}.{name}: mixes labels, so it needs one-hot labels "
                         f"(categorical_crossentropy) or binary ones; loss {config.loss.canonical} takes "
                         f"{'class indices' if task == 'classes' else 'values that do not mix'}")
    if data.normalize == "per_channel" and config.model.type == "application":
        found.append("data.normalize: per_channel would rescale the pixels a keras.applications backbone "
                     f"preprocesses itself ({config.model.name}'s preprocess_input is inside the model); use auto")
    if training.steps is not None and optimizer.scheduled:
        found += _schedule_in_steps(optimizer.learning_rate, training.steps)
    return found


def _schedule_in_steps(rate, steps: int) -> list[str]:
    """In steps mode the run's length is known at validate: the warmup must end before it, and
    an "epoch" is a log interval, so boundaries are given in steps."""
    found = []
    if getattr(rate, "boundary_epochs", None) is not None:
        found.append("optimizer.learning_rate.boundary_epochs: the run is set by training.steps, whose "
                     "\"epochs\" are log intervals; give the boundaries in steps (boundaries)")
    if rate.warmup_steps >= steps:
        found.append(f"optimizer.learning_rate.warmup_steps: {rate.warmup_steps} warmup steps, but the run "
                     f"trains {steps} steps (training.steps); the warmup must end before the run does")
    return found


def _not_logged(key: str, name: str, logged: list[str]) -> str:
    hint = suggest(name, logged) or suggest(name.removeprefix("val_"), logged)  # val_x without validation: x
    why = " (the run has no validation data)" if name.startswith("val_") and not any(
        n.startswith("val_") for n in logged) else ""
    return f"{key}: the run does not log \"{printable(name)}\"{why}{hint}; it logs: {', '.join(logged)}"


def _logits_and_loss(config: Config) -> str | None:
    """A model that outputs logits trained with a loss that expects probabilities (or the
    other way round) trains, to nonsense, without a word; softmax on one unit is always 1."""
    loss, activation = config.loss, config.model.output_activation_name()
    task = catalog.LOSS_TASKS[loss.canonical]
    if task in ("binary", "score") and activation == "softmax":
        return (f"model: softmax over the one output unit loss {loss.canonical} trains is always 1: use "
                "sigmoid (or no output activation, with from_logits: true)")
    if task not in PROBABILITIES or "from_logits" not in catalog.LOSSES[loss.canonical][1]:
        return None
    from_logits = bool(loss.params.get("from_logits", False))
    wanted = PROBABILITIES[task][0]
    if activation in LOGITS and not from_logits:
        return (f"loss: {loss.canonical} expects probabilities, but the model's output layer has no activation "
                f"(it outputs logits): set loss: {{name: {loss.canonical}, from_logits: true}}, or give the "
                f"model's output layer a {wanted} activation")
    if activation in PROBABILITIES[task] and from_logits:
        return (f"loss: {loss.canonical} has from_logits: true, but the model's output layer applies "
                f"{activation} (it outputs probabilities): drop from_logits, or remove the output activation")
    return None


def _validation_split(config: Config) -> str | None:
    """`validation: test` (the default) on data whose test split is a file the config does not name."""
    data = config.data
    option = TEST_PATH_OPTION.get(data.dataset)
    if data.validation != "test" or option is None or data.options.get(option):
        return None
    return (f"data.validation: test, but {data.dataset} data has a test split only with "
            f"data.options.{option}: set it, or hold out a fraction (data.validation: 0.1), or train "
            "without validation (data.validation: none)")
