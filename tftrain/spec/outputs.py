"""Several outputs (a graph's `outputs: [a, b]`, one label column each), TF-free.

    data: {options: {label: [species, body_mass_g], columns: {...}}}
    model: {type: graph, nodes: [...], outputs: [species_head, mass_head]}   # in the labels' order
    loss: {species: sparse_categorical_crossentropy, body_mass_g: mse}    # or one loss for every output
    metrics: {species: [accuracy], body_mass_g: [mae]}                    # or one list for every output
    loss_weights: {species: 1.0, body_mass_g: 0.001}                      # or one number; null: 1 each

An output is named after its label column (the node may be named too, in the maps): history,
summary, predict and export use that name, and its logged values are Keras's own names for a
dict-output model (`species_loss`, `species_accuracy`, `val_body_mass_g_mae`). `heads(config)`
is the one answer to "which outputs, with which loss, metrics and weight"; the checks here run
at `tftrain validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tftrain.spec.base import show, suggest

if TYPE_CHECKING:
    from tftrain.spec.schema import Config, LossConfig, MetricConfig

# The value of `loss` / `metrics` that maps outputs to values (pydantic's union tag; not in messages).
PER_OUTPUT = "per_output"
ONE = "one"
SEVERAL = "several"  # RunFacts.task of a several-output run (each head has its own task)


@dataclass(frozen=True)
class Head:
    """One output of a several-output model."""

    name: str  # its label column: the name history, predict and export use
    node: str  # the graph node it reads
    loss: LossConfig
    metrics: tuple[MetricConfig, ...]
    weight: float


def label_columns(options: dict) -> list[str]:
    """A table's label column(s) (data.options.label: a name, or a list for several outputs)."""
    label = options.get("label")
    return list(label) if isinstance(label, list) else [label] if isinstance(label, str) else []


def several(config: Config) -> bool:
    """Whether the config trains several outputs (a label list, or per-output maps)."""
    return (isinstance(config.data.options.get("label"), list) or bool(getattr(config.model, "outputs", None))
            or isinstance(config.loss, dict) or isinstance(config.metrics, dict) or config.loss_weights is not None)


def heads(config: Config) -> tuple[Head, ...]:
    """The outputs of a several-output config (validated by `problems`), in the labels' order;
    () for one output."""
    if not several(config):
        return ()
    labels, nodes = label_columns(config.data.options), list(getattr(config.model, "outputs", None) or [])
    alias = dict(zip(nodes, labels))
    loss, metrics, weights = (_per_output(config.loss, alias), _per_output(config.metrics, alias),
                              _per_output(config.loss_weights, alias))
    return tuple(Head(label, node, loss(label), tuple(metrics(label) or ()),
                      float(1.0 if weights(label) is None else weights(label))) for label, node in zip(labels, nodes))


def _per_output(value: Any, alias: dict[str, str]):
    """label -> its value of a map (keyed by label or node) or the one value for all."""
    if not isinstance(value, dict) or value.get("name") is not None:
        return lambda label: value
    by_label = {alias.get(key, key): v for key, v in value.items()}
    return lambda label: by_label.get(label)


def loss_tag(value: Any) -> str:
    """`loss`: one loss (a name, or a mapping with `name`) or a map output -> loss."""
    if isinstance(value, dict) and value and "name" not in value and all(
            isinstance(v, (str, dict)) or hasattr(v, "canonical") for v in value.values()):
        return PER_OUTPUT
    return ONE


def metrics_tag(value: Any) -> str:
    """`metrics`: one list for every output, or a map output -> list (or one metric)."""
    return PER_OUTPUT if isinstance(value, dict) else ONE


def logged_names(config: Config) -> tuple[str, ...]:
    """What a several-output run logs per epoch for training, as Keras names it: the total loss,
    then each output's loss and metrics (`species_loss`, `species_accuracy`, `body_mass_g_mae`)."""
    found = ["loss"]
    for head in heads(config):
        found += [f"{head.name}_loss", *(f"{head.name}_{m.logged_name}" for m in head.metrics)]
    return tuple(found)


def output_problems(config: Config) -> list[str]:
    """Several outputs against the rest of the config, one line each (empty: none)."""
    if not several(config):
        return []
    labels, model = label_columns(config.data.options), config.model
    nodes = list(getattr(model, "outputs", None) or [])
    if not isinstance(config.data.options.get("label"), list):
        if nodes:
            return [f"model.outputs: {len(nodes)} outputs need as many label columns: give data.options.label a "
                    "list (one label column per output, in order)"]
        key = next(k for k, v in (("loss", isinstance(config.loss, dict)), ("metrics", isinstance(config.metrics, dict)),
                                  ("loss_weights", True)) if v)
        return [f"{key}: a value per output needs several outputs (data.options.label: a list, model.outputs); "
                "this run has one"]
    if model.type != "graph":
        return [f"data.options.label: a list of labels ({', '.join(labels)}) trains several outputs, which a "
                f"graph model has (model.type: graph with outputs: [...]); model.type {model.type} has one"]
    if len(nodes) != len(labels):
        return [f"model.outputs: {len(nodes)} output{'s' * (len(nodes) != 1)} ({', '.join(nodes) or 'none given'}) "
                f"but {len(labels)} label columns in data.options.label ({', '.join(labels)}); each output needs "
                "one label column, matched in order"]
    found = []
    for key, value in (("loss", config.loss), ("metrics", config.metrics), ("loss_weights", config.loss_weights)):
        found += _map_keys(key, value, labels, nodes)
    return found or _class_weights(config)


def _map_keys(key: str, value: Any, labels: list[str], nodes: list[str]) -> list[str]:
    """Every output a map names exists (by label column or node), none is named twice, and a
    loss map gives every output its loss."""
    if not isinstance(value, dict) or value.get("name") is not None:
        return []
    known, alias, found, seen = [*labels, *nodes], dict(zip(nodes, labels)), [], {}
    for name in value:
        if name not in known:
            found.append(f"{key}: unknown output {show(name)}" + suggest(str(name), known)
                         + f"; the outputs are {', '.join(labels)} (or their nodes: {', '.join(nodes)})")
        elif alias.get(name, name) in seen:
            found.append(f"{key}: output {alias.get(name, name)!r} is given twice ({seen[alias.get(name, name)]} "
                         f"and {name})")
        else:
            seen[alias.get(name, name)] = name
    missing = [label for label in labels if label not in seen]
    if key == "loss" and missing and not found:
        found.append(f"loss: no loss for output {missing[0]!r}; give every output its loss (outputs: "
                     f"{', '.join(labels)}), or one loss for all")
    return found


def _class_weights(config: Config) -> list[str]:
    if config.training.class_weight is not None:
        return ["training.class_weight: weighs one output's classes; a several-output model has no one set of "
                "classes (use loss_weights to weigh the outputs)"]
    return []
