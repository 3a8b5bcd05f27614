"""The plan of a run: every decision made before anything is built, computed once.

The model's spec (input shape, outputs) comes from the data and the loss; its cost from a
symbolic build of the model (any model type); the schedule from the data size; the speed
settings (steps per compiled call, CPU threads) from those and the machine; the placement from
the strategy. Nothing after this derives any of them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from tftrain.config import Config
from tftrain.data.base import LoadedData, StreamedData
from tftrain.data.pipeline import Schedule, schedule
from tftrain.models import ModelSpec, model_spec
from tftrain.training.distribute import Distribution
from tftrain.training.performance import (
    apply_cpu_threads,
    resolve_cpu_threads,
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


def make_plan(config: Config, data: LoadedData | StreamedData, distribution: Distribution) -> Plan:
    """Plan `config` on `data` under `distribution`, and apply the CPU thread count (TensorFlow
    takes it only before its first op, so this comes before any pipeline or model exists)."""
    import tensorflow as tf

    training = config.training
    spec = model_spec(config, data)
    plan = schedule(config, data.train_count)
    macs = symbolic_macs(config.model, spec)
    step_macs = None if macs is None else macs * config.data.batch_size
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    threads = apply_cpu_threads(resolve_cpu_threads(training.cpu_threads, step_macs, has_gpu))
    # model.fit draws whole calls from the run's one stream of batches (tftrain.data.pipeline),
    # so for `fit` a call must not cross an epoch's end; the custom loop cuts its last call.
    # Keras's fit runs several steps per call in a tf.cond, which fails under any strategy
    # (keras-team/keras#19246): one step per call there; the custom loop has no such limit.
    fit_under_strategy = training.loop == "fit" and distribution.kind != "none"
    spe = resolve_steps_per_execution(1 if fit_under_strategy else training.steps_per_execution,
                                      plan.steps_per_epoch, whole_calls=training.loop == "fit",
                                      step_macs=step_macs)
    return Plan(distribution, spec, plan, step_macs, spe, threads)
