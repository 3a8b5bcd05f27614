"""Several outputs in Keras: the dict-output model, the labels split per output, the losses,
metrics and weights compiled per output, and the same for the custom loop.

The data keep the labels of a several-output table as one float32 matrix (N, outputs): column k
is output k's label (a class index, or a value), so splits, batches, in-graph gathering and the
resume of the data stream are those of one output. Where a batch reaches the model, the matrix
becomes a dict keyed by output name (tftrain.data.tables.outputs.OutputLabels), the structure of
the model's own outputs (`named_outputs`), which Keras's compile matches by key and names each
value by (`species_loss`, `species_accuracy`). The config side (names, maps, checks) is tftrain.spec.outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from tftrain.data.tables.outputs import classes_of, output_facts
from tftrain.errors import DataError
from tftrain.spec.outputs import Head, heads

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.models.base import ModelSpec
    from tftrain.spec.schema import Config



def head_units(config: Config, data: LoadedData | StreamedData) -> tuple[tuple[str, int], ...]:
    """(name, output units) of each head: one per class for a class loss, else one."""
    facts = {f["name"]: f for f in output_facts(data)}
    units = []
    for head in heads(config):
        classes = classes_of(head, facts.get(head.name, {}))
        units.append((head.name, int(classes) if head.loss.task in ("classes", "one_hot") and classes else 1))
    return tuple(units)


def check_heads(config: Config, data: LoadedData | StreamedData) -> None:
    """Each output's labels fit its loss: classes for a class loss, numbers for a regression."""
    facts = {f["name"]: f for f in output_facts(data)}
    for head in heads(config):
        classes, task = classes_of(head, facts[head.name]), head.loss.task
        if task in ("classes", "one_hot") and classes is None:
            raise DataError(f"loss.{head.name}: {head.loss.canonical} trains classes, but the label column "
                            f"'{head.name}' holds values (a regression): use a regression loss such as mse, or set "
                            "data.options.task")
        if task in ("binary", "score") and classes != 2:
            holds = "values" if classes is None else f"{classes} classes"
            raise DataError(f"loss.{head.name}: {head.loss.canonical} trains one unit on two classes, but the label "
                            f"column '{head.name}' holds {holds}: use sparse_categorical_crossentropy or mse")
        if task == "regression" and classes is not None:
            raise DataError(f"loss.{head.name}: {head.loss.canonical} is a regression loss, but the label column "
                            f"'{head.name}' names {classes} classes (text): use sparse_categorical_crossentropy")


def named_outputs(spec: ModelSpec, nodes: list[str], tensors: dict) -> dict:
    """The model's outputs keyed by label column, in the labels' order; each checked for the units
    its loss needs (a one-line error naming the node)."""
    outputs = {}
    for (name, units), node in zip(spec.heads, nodes):
        shape = tuple(tensors[node].shape)
        if len(shape) != 2 or shape[-1] != units:
            raise DataError(f"model.outputs: node {node} (output {name}) has shape {shape}, but its loss needs "
                            f"(None, {units})" + (f": one unit per class of {name}" if units > 1 else ": one unit"))
        outputs[name] = tensors[node]
    return outputs


def compile_arguments(config: Config, num_classes: dict[str, int] | None = None) -> dict:
    """loss, metrics and loss_weights for model.compile, each a dict keyed by output name."""
    from tftrain.models.components import build_loss, metric_for

    found = heads(config)
    return {"loss": {h.name: build_loss(h.loss) for h in found},
            "metrics": {h.name: [metric_for(m, h.loss, (num_classes or {}).get(h.name)) for m in h.metrics]
                        for h in found},
            "loss_weights": {h.name: h.weight for h in found}}


def head_classes(model: keras.Model) -> dict[str, int]:
    """Each named output's width (what a metric that counts classes needs)."""
    output = getattr(model, "output", None)
    return {name: int(t.shape[-1]) for name, t in output.items()} if isinstance(output, dict) else {}


def build_loss_trackers(model: keras.Model, batches) -> None:
    """Make fit's per-output loss trackers (`species_loss`) now: Keras makes them at the first
    loss it computes, after the loop has listed the metrics whose accumulators a mid-epoch
    checkpoint saves. One batch's loss, in inference mode (no dropout draw, no statistics
    updated); fit resets the trackers when an epoch begins."""
    x, y = next(iter(batches.take(1)))[:2]
    model.compute_loss(x, y, model(x, training=False))


# -- the custom loop: the same losses, weights and logged names as fit's compile ----------------


class OutputsLoss(keras.losses.Loss):
    """The weighted sum of each output's loss (what fit's compiled loss minimizes). Never saved in
    a model file (the model is compiled with fit's per-output dicts), so not registered."""

    def __init__(self, losses: dict, weights: dict, reduction="sum_over_batch_size", name="outputs_loss"):
        super().__init__(reduction=reduction, name=name)
        self.losses = {k: keras.losses.get(v) if isinstance(v, dict) else v for k, v in losses.items()}
        self.weights = dict(weights)
        if reduction == "none":  # per example: each output's own losses, unreduced
            self.losses = {k: type(v).from_config({**v.get_config(), "reduction": "none"})
                           for k, v in self.losses.items()}

    def __call__(self, y_true, y_pred, sample_weight=None):
        total = 0.0
        for name, loss in self.losses.items():
            value = loss(y_true[name], y_pred[name], sample_weight=sample_weight)
            total = total + self.weights[name] * value
        return total

    def get_config(self) -> dict:
        return {"losses": {k: keras.losses.serialize(v) for k, v in self.losses.items()}, "weights": self.weights,
                "reduction": self.reduction, "name": self.name}


class OutputMetric(keras.metrics.Metric):
    """A metric of one output, logged as Keras's fit logs it (`species_accuracy`)."""

    def __init__(self, output: str, metric: keras.metrics.Metric):
        super().__init__(name=f"{output}_{metric.name}")
        self.output, self.metric = output, metric

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.metric.update_state(y_true[self.output], y_pred[self.output], sample_weight=sample_weight)

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()


def custom_loop_objects(config: Config, num_classes: dict[str, int]) -> tuple[keras.losses.Loss, list]:
    """The custom loop's loss (the weighted sum) and metrics: each output's loss, then its metrics,
    named as fit names them."""
    found: tuple[Head, ...] = heads(config)
    arguments = compile_arguments(config, num_classes)
    loss = OutputsLoss(arguments["loss"], arguments["loss_weights"])
    metrics = []
    for head in found:
        fn = arguments["loss"][head.name]
        metrics.append(OutputMetric(head.name, keras.metrics.MeanMetricWrapper(_unreduced(fn), name="loss")))
        metrics += [OutputMetric(head.name, m) for m in arguments["metrics"][head.name]]
    return loss, metrics


def _unreduced(loss: keras.losses.Loss):
    per_example = type(loss).from_config({**loss.get_config(), "reduction": "none"})
    return lambda y_true, y_pred: per_example(y_true, y_pred)
