"""Everything a session trains, built from the config and its plan before any file is written:
seeded data pipelines, the model, loss, optimizer and metrics (compiled, in the strategy's scope).

Everything that can fail because of the user's input (data files, shapes, Keras arguments)
happens here, before the run directory is created, so bad input writes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from tftrain.config import Config
from tftrain.data import load_data
from tftrain.data.base import in_memory_limit_mb
from tftrain.data.checks import check_data
from tftrain.data.pipeline import Pipelines, build_pipelines
from tftrain.data.transforms import training_transform
from tftrain.errors import ConfigError, UserError
from tftrain.tracking import check_tracking
from tftrain.training.components import build_loss, build_metrics, build_optimizer
from tftrain.training.distribute import Distribution, shard_by_example
from tftrain.training.plan import Plan, make_plan
from tftrain.training.schedules import build_learning_rate


@dataclass(frozen=True)
class Prepared:
    """A run ready to train: its config (seed resolved), plan, data and Keras objects."""

    config: Config
    plan: Plan
    data_info: dict
    pipelines: Pipelines
    model: keras.Model  # compiled; its variables live in the plan's strategy scope
    loss: keras.losses.Loss
    metrics: list
    init_note: str | None = None  # what model.init_from loaded, for the console


def seed_everything(config: Config) -> Config:
    """Seed Python, NumPy and TF (picking and recording a seed if `seed: null`)."""
    if config.seed is None:
        config = config.model_copy(update={"seed": secrets.randbelow(2**31)})
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # the switch is process-wide: a deterministic run before this one in the same process left it on
        from tensorflow.python.framework.config import disable_op_determinism  # TF exports only enable_

        disable_op_determinism()
    return config


def resolve_memory_limit(config: Config) -> Config:
    """`data.in_memory_max_mb: auto` as the number of MiB it means on this machine, recorded in
    the run's config.yaml so that a resume (on any machine) reads the data the same way."""
    if config.data.in_memory_max_mb != "auto":
        return config
    limit = in_memory_limit_mb("auto")
    return config.model_copy(update={"data": config.data.model_copy(update={"in_memory_max_mb": limit})})


def prepare(config: Config, distribution: Distribution, resumed: bool = False) -> Prepared:
    """Seed, load and check the data, plan, then build the pipelines and the compiled model.
    `resumed`: the resume state will overwrite every weight, so a model.init_from source that
    no longer exists is skipped (with a note) instead of stopping the resume."""
    check_tracking(config)
    config = resolve_memory_limit(seed_everything(config))
    data = load_data(config, config.seed)
    check_data(config, data)
    plan = make_plan(config, data, distribution)
    keras.utils.set_random_seed(config.seed)  # the plan's symbolic build drew from the seeded generators
    workers = (distribution.worker_index, distribution.num_workers) if distribution.kind == "multi_worker" else None
    transform = training_transform(config, list(plan.augmentation), plan.class_weights, config.seed)
    pipelines = build_pipelines(data, config, config.seed, transform, workers=workers)
    if transform is not None:
        _trace_training_batches(pipelines)
    if distribution.kind == "multi_worker":
        pipelines = shard_by_example(pipelines)
    training = config.training
    initial, init_note = None, None
    if config.model.init_from is not None and resumed and not Path(config.model.init_from).exists():
        init_note = f"init_from {config.model.init_from} no longer exists: the weights come from the resume state"
    else:
        initial = config.model.initial_weights()  # model.init_from, read in safe mode outside the strategy
    with distribution.strategy.scope():
        keras.mixed_precision.set_global_policy(training.precision)
        try:
            model = config.model.build(plan.spec)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        if initial is not None:
            init_note = initial.copy_into(model, plan.spec.outputs)
        loss = build_loss(config.loss)
        metrics = build_metrics(config)
        rate = build_learning_rate(config.optimizer, plan.total_steps, plan.schedule.steps_per_epoch)
        model.compile(optimizer=build_optimizer(config.optimizer, training.precision, rate), loss=loss,
                      metrics=metrics, steps_per_execution=plan.steps_per_execution,
                      jit_compile=training.jit_compile, run_eagerly=training.run_eagerly)
    info = {**data.describe(), "train_examples": pipelines.train_examples,
            "validation": pipelines.validation_split}
    if plan.spec.table is not None:  # a typed table: what was fitted on the training split
        info["preprocessing"] = plan.spec.table.describe()
    return Prepared(config, plan, info, pipelines, model, loss, metrics, init_note)


def _trace_training_batches(pipelines: Pipelines) -> None:
    """Build the training stream once, so that an augmentation Keras refuses only when it traces
    (a layer that needs 3 channels, say) is a one-line error before anything is written."""
    try:
        pipelines.train(0).element_spec  # noqa: B018 (building the dataset traces its functions)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data.augmentation: {str(exc).strip().splitlines()[0][:300]}") from None
