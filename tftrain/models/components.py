"""Keras losses, optimizers and metrics from their config entries.

Names and allowed parameters come from tftrain.spec.catalog; the objects are made by Keras's own
deserializers, so every Keras parameter works under its Keras name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from tftrain import plugins
from tftrain.errors import ConfigError
from tftrain.models.fused_optimizers import fuse_update
from tftrain.plugins import is_registered_name
from tftrain.spec import catalog

if TYPE_CHECKING:
    from tftrain.spec.schema import Config, LossConfig, MetricConfig, OptimizerConfig


def build_callbacks(config: Config) -> list[keras.callbacks.Callback]:
    """The plugins' callbacks that training.callbacks names, with their parameters."""
    return [plugins.build("callback", name, params) for entry in config.training.callbacks
            for name, params in entry.items()]


def build_loss(cfg: LossConfig) -> keras.losses.Loss:
    """The configured loss (e.g. SparseCategoricalCrossentropy(from_logits=True)), or a plugin's."""
    if is_registered_name(cfg.name):
        return plugins.build("loss", cfg.name, cfg.params)
    class_name = catalog.LOSSES[cfg.canonical][0]
    return _deserialize(keras.losses.deserialize, class_name, cfg.params, "loss")


def build_optimizer(cfg: OptimizerConfig, precision: str = "float32", learning_rate=None) -> keras.optimizers.Optimizer:
    """The configured optimizer; wrapped for dynamic loss scaling under mixed_float16.
    `learning_rate`: the rate or schedule built for the run (tftrain.training.schedules); None
    takes the configured number."""
    class_name = catalog.OPTIMIZERS[cfg.name][0]
    params = cfg.params
    if learning_rate is not None:
        params["learning_rate"] = learning_rate
    elif cfg.scheduled:
        raise ValueError("a scheduled learning rate is built by tftrain.training.schedules.build_learning_rate")
    optimizer = fuse_update(_deserialize(keras.optimizers.deserialize, class_name, params, "optimizer"))
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_metrics(config: Config, num_classes: int | None = None) -> list[keras.metrics.Metric]:
    """The configured metrics, named as the user wrote them (`accuracy`, `mae`, ...);
    `num_classes`: the model's output width, for the metrics that count classes."""
    return [metric_for(m, config.loss, num_classes) for m in config.metrics]


def output_width(model: keras.Model) -> int | None:
    """The width of a loaded model's (first) output, or None where it has no symbolic outputs
    (a SavedModel's signature wrapped in a Sequential)."""
    try:
        return int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def metric_for(cfg: MetricConfig, loss: LossConfig, num_classes: int | None = None) -> keras.metrics.Metric:
    """One configured metric for labels of `loss`'s task (`num_classes`: the output's width)."""
    params = {"name": cfg.logged_name, **_filled(cfg, loss.task, num_classes), **cfg.params}
    if is_registered_name(cfg.name):
        return _plugin_metric(cfg.name, params)
    if cfg.canonical != "accuracy":
        class_name = catalog.METRICS[cfg.canonical][0]
        return _deserialize(keras.metrics.deserialize, class_name, params, "metric")
    # "accuracy" means the accuracy that fits the labels the loss expects. Keras's own guess
    # thresholds binary predictions at 0.5 even when they are logits; here logits use 0.
    task = loss.task
    if task == "classes":
        return keras.metrics.SparseCategoricalAccuracy(**params)
    if task == "one_hot":
        return keras.metrics.CategoricalAccuracy(**params)
    if task == "binary":
        from_logits = bool(loss.params.get("from_logits", False))
        return keras.metrics.BinaryAccuracy(threshold=0.0 if from_logits else 0.5, **params)
    return keras.metrics.Accuracy(**params)


def _filled(cfg: MetricConfig, task: str, num_classes: int | None) -> dict:
    """Keras arguments that follow from the data and the loss, where the config gives none: the
    class count, whether labels and outputs are class ids or rows, a binary F1's threshold."""
    name, filled = cfg.canonical, {}
    if name in catalog.METRIC_NUM_CLASSES and num_classes is not None:
        filled["num_classes"] = num_classes
    if name in ("iou", "mean_iou"):  # the model outputs a row of scores, not class ids
        filled.update(sparse_y_true=task == "classes", sparse_y_pred=False)
    if name in ("pearson_correlation", "concordance_correlation"):
        filled["axis"] = 0  # across a batch's examples; Keras's -1 correlates each example's own outputs (NaN for one)
    if name in ("f1_score", "fbeta_score"):
        filled["average"] = "macro"  # Keras's default, one score per class, is a vector: a run logs numbers
        if task == "binary":
            filled["threshold"] = 0.5  # one output unit: Keras's default (the row's largest is 1) would count all as 1
    return filled


def _plugin_metric(name: str, params: dict) -> keras.metrics.Metric:
    """A plugin's metric, logged under `params["name"]`: a registered function is averaged over
    batches as Keras compiles its own functions; a class gets the name if it takes one."""
    target = plugins.lookup_or_error("metric", name)
    if not isinstance(target, type):
        return keras.metrics.MeanMetricWrapper(target, name=params["name"])
    if not plugins.accepts(target, "name"):
        params = {k: v for k, v in params.items() if k != "name"}
    return plugins.build("metric", name, params)


def _deserialize(deserialize, class_name: str, params: dict, kind: str):
    try:
        return deserialize({"class_name": class_name, "config": params})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} {class_name}: {str(exc).splitlines()[0]}") from None
