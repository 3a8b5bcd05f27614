"""The plan of a run: every decision made before anything is built, computed once.

The model's spec (input shape, outputs) comes from the data and the loss; its cost from a
symbolic build of the model (any model type); the schedule from the data size; the speed
settings (steps per compiled call, CPU threads) from those and the machine; the placement from
the strategy. Nothing after this derives any of them again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tftrain.data.base import LoadedData, StreamedData
from tftrain.data.pipeline.augmentation import layer_arguments
from tftrain.data.pipeline.batches import split_for_training, training_in_order
from tftrain.data.pipeline.class_weights import class_weights
from tftrain.data.pipeline.interface import Schedule, schedule
from tftrain.data.pipeline.normalization import channel_statistics, chunked_statistics
from tftrain.data.tables.fit import fitted_table
from tftrain.errors import ConfigError
from tftrain.models import ModelSpec, model_spec
from tftrain.spec.base import suggest
from tftrain.spec.checks import RunFacts
from tftrain.spec.schema import Config
from tftrain.training.distribute import Distribution
from tftrain.training.performance import (
    apply_cpu_threads,
    bf16_hardware,
    resolve_cpu_threads,
    resolve_in_graph,
    resolve_precision,
    resolve_steps_per_execution,
    symbolic_macs,
)


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided before anything is built."""

    distribution: Distribution  # the strategy and this process's place in the cluster
    spec: ModelSpec  # what the model builder needs to know about the data
    schedule: Schedule  # epochs (or log intervals) and steps in each
    step_macs: int | None  # forward multiply-adds of one batch; None where it cannot be counted
    steps_per_execution: int  # steps per compiled call
    cpu_threads: int  # TensorFlow intra-op threads in effect (0: its default, one per core)
    class_weights: tuple[float, ...] | None = None  # training.class_weight per class index, or None
    augmentation: tuple = ()  # the pipeline's augmentation layers: (Keras class name, arguments)
    precision: str = "float32"  # the Keras dtype policy (training.precision, `auto` resolved)
    precision_reason: str = "training.precision"
    in_graph: bool = False  # training batches gathered inside the compiled step (training.in_graph)
    in_graph_reason: str = ""

    @property
    def total_steps(self) -> int:
        """Training steps of the whole run (what `decay_steps: auto` means)."""
        return self.schedule.epochs * self.schedule.steps_per_epoch


def make_plan(config: Config, data: LoadedData | StreamedData, distribution: Distribution) -> Plan:
    """Plan `config` on `data` under `distribution`, and apply the CPU thread count (TensorFlow
    takes it only before its first op, so this comes before any pipeline or model exists)."""
    import tensorflow as tf

    training = config.training
    if training.cpu_threads != "auto":  # set before the recipe, whose fit of a typed table runs TensorFlow's first ops
        apply_cpu_threads(int(training.cpu_threads))
    spec, weights, augmentation = _recipe(config, data)
    plan = schedule(config, data.train_count)
    _check_accumulation(config, plan.epochs * plan.steps_per_epoch)
    macs = symbolic_macs(config.model, spec)
    step_macs = None if macs is None else macs * config.data.batch_size
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    chosen = resolve_cpu_threads(training.cpu_threads, step_macs, has_gpu)
    threads = apply_cpu_threads(chosen, one_op_at_a_time=chosen == 1 and training.cpu_threads == "auto"
                                and distribution.kind == "none")
    # model.fit draws whole calls from the run's one stream of batches (tftrain.data.pipeline.batches),
    # so for `fit` a call must not cross an epoch's end; the custom loop cuts its last call.
    # Keras's fit runs several steps per call in a tf.cond, which fails under any strategy
    # (keras-team/keras#19246): one step per call there; the custom loop has no such limit.
    fit_under_strategy = training.loop == "fit" and distribution.kind != "none"
    spe = resolve_steps_per_execution(1 if fit_under_strategy else training.steps_per_execution,
                                      plan.steps_per_epoch, whole_calls=training.loop == "fit",
                                      step_macs=step_macs,
                                      checkpoint_every=training.checkpoint.every_steps)
    precision, precision_reason = resolve_precision(training.precision, step_macs,
                                                     bf16_hardware() if training.precision in ("auto", "float32") else None)
    in_graph, in_graph_reason = resolve_in_graph(training.in_graph, data.streamed, distribution.kind,
                                                 preprocessor=config.model.type == "hub")
    if training.in_graph is True and not in_graph:
        raise ConfigError(f"training.in_graph: true needs the training data in memory ({in_graph_reason}); "
                          "use auto or false")
    return Plan(distribution, spec, plan, step_macs, spe, threads, weights, augmentation,
                precision, precision_reason, in_graph, in_graph_reason)


def _check_accumulation(config: Config, total_steps: int) -> None:
    """Refuse gradient accumulation over more batches than the run trains: it would end
    `completed` without ever updating a weight."""
    from tftrain.errors import ConfigError

    accumulate = config.optimizer.params.get("gradient_accumulation_steps")
    if isinstance(accumulate, int) and accumulate > total_steps:
        raise ConfigError(f"optimizer.gradient_accumulation_steps: {accumulate} batches per update, but the run "
                          f"trains {total_steps} steps on this data: no update would ever be applied")


def _recipe(config: Config, data: LoadedData | StreamedData) -> tuple[ModelSpec, tuple[float, ...] | None, tuple]:
    """The model spec with what the model does to its inputs (in-model augmentation, per-channel
    statistics of the training split), the class weights, and the pipeline's augmentation."""
    spec = model_spec(config, data)
    layers = tuple(layer_arguments(config, data))
    in_model = config.data.augmentation_on == "model"
    weights, statistics = None, None
    if data.streamed:  # the training split read batch by batch: once for the labels, twice for the statistics
        batches = training_in_order(data, config, config.seed)
        if config.training.class_weight is not None:
            weights = class_weights(config, data, _labels(batches, config.training.class_weight))
        if config.data.normalize == "per_channel":
            statistics = chunked_statistics(lambda: (x.numpy() for x, _ in batches))
    elif config.training.class_weight is not None or config.data.normalize == "per_channel":
        train, _ = split_for_training(data, config, config.seed)  # statistics of the training split only
        weights = class_weights(config, data, train.y)
        statistics = channel_statistics(train.x) if config.data.normalize == "per_channel" else None
    spec = dataclasses.replace(spec, normalization=statistics, augmentation=layers if in_model else (),
                               seed=config.seed, table=fitted_table(config, data))
    if spec.table is not None:  # the model on the preprocessed features (tftrain.training.data_checks left it)
        config.model.check(spec)
    _check_monitors(config, has_validation(config, data))
    return spec, weights, () if in_model else layers


def _labels(batches, choice):
    """The training labels, read from the batches where `balanced` weights count them (a mapping
    of weights needs none of them)."""
    import numpy as np

    if choice != "balanced":
        return None
    return np.concatenate([y.numpy() for _, y in batches])


def has_validation(config: Config, data: LoadedData | StreamedData) -> bool:
    """Whether the run validates (tftrain.data.pipeline.split_for_training's choice)."""
    return RunFacts.of(config).validates_with(data.test_count)


def _check_monitors(config: Config, validation: bool) -> None:
    """reduce_lr_on_plateau must watch a value the run logs (Keras would only warn each epoch);
    validate checked the names (tftrain.spec.checks), this the data: validation may be missing."""
    plateau = config.training.reduce_lr_on_plateau
    if plateau is None:
        return
    names = [name for name in RunFacts.of(config).metrics]
    names += [f"val_{name}" for name in names if validation]
    if plateau.monitor not in names:
        why = " (the run has no validation data)" if plateau.monitor.startswith("val_") and not validation else ""
        raise ConfigError(f"training.reduce_lr_on_plateau.monitor: the run does not log {plateau.monitor!r}{why}"
                          + suggest(plateau.monitor, names) + f"; it logs: {', '.join(names)}")
