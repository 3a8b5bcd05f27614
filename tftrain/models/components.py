"""Keras losses, optimizers and metrics from their config entries.

Names and allowed parameters come from tftrain.spec.catalog; the objects are made by Keras's own
deserializers, so every Keras parameter works under its Keras name.
"""

from __future__ import annotations

import keras

from tftrain.errors import ConfigError
from tftrain.spec import catalog
from tftrain.spec.schema import Config, LossConfig, MetricConfig, OptimizerConfig


def build_loss(cfg: LossConfig) -> keras.losses.Loss:
    """The configured loss (e.g. SparseCategoricalCrossentropy(from_logits=True))."""
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
    optimizer = _deserialize(keras.optimizers.deserialize, class_name, params, "optimizer")
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_metrics(config: Config) -> list[keras.metrics.Metric]:
    """The configured metrics, named as the user wrote them (`accuracy`, `mae`, ...)."""
    return [_metric(m, config.loss) for m in config.metrics]


def _metric(cfg: MetricConfig, loss: LossConfig) -> keras.metrics.Metric:
    params = {"name": cfg.name, **cfg.params}
    if cfg.canonical != "accuracy":
        class_name = catalog.METRICS[cfg.canonical][0]
        return _deserialize(keras.metrics.deserialize, class_name, params, "metric")
    # "accuracy" means the accuracy that fits the labels the loss expects. Keras's own guess
    # thresholds binary predictions at 0.5 even when they are logits; here logits use 0.
    task = catalog.LOSS_TASKS[loss.canonical]
    if task == "classes":
        return keras.metrics.SparseCategoricalAccuracy(**params)
    if task == "one_hot":
        return keras.metrics.CategoricalAccuracy(**params)
    if task == "binary":
        from_logits = bool(loss.params.get("from_logits", False))
        return keras.metrics.BinaryAccuracy(threshold=0.0 if from_logits else 0.5, **params)
    return keras.metrics.Accuracy(**params)


def _deserialize(deserialize, class_name: str, params: dict, kind: str):
    try:
        return deserialize({"class_name": class_name, "config": params})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} {class_name}: {str(exc).splitlines()[0]}") from None
