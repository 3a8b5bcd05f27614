"""Mistakes no single key shows, caught across the config before anything is loaded: what the
model's output layer gives against what the loss expects, and a validation split the data
cannot have. (Checks that need the data are in tftrain/data/checks.py.) No TensorFlow here:
`tftrain validate` runs these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tftrain import catalog

if TYPE_CHECKING:
    from tftrain.config import Config

# Activations whose outputs are probabilities (for the one-unit tasks: sigmoid).
PROBABILITIES = {"classes": ("softmax",), "one_hot": ("softmax",), "binary": ("sigmoid",)}
LOGITS = (None, "linear")  # no activation: raw scores
# Datasets whose test split is a file named in their options; without it there is none.
TEST_PATH_OPTION = {"csv": "test_path", "image_folder": "test_path", "tfrecord": "test_path", "tfds": "split_test"}


def problems(config: Config) -> list[str]:
    """Every cross-key problem of `config`, most important first (empty: none)."""
    return [p for p in (_logits_and_loss(config), _validation_split(config)) if p]


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
