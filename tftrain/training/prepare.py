"""Everything a session trains, built from the config and its plan before any file is written:
seeded data pipelines, the model, loss, optimizer and metrics (compiled, in the strategy's scope).

Everything that can fail because of the user's input (data files, shapes, Keras arguments)
happens here, before the run directory is created, so bad input writes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from tftrain.data import load_data
from tftrain.data.pipeline.batches import build_pipelines
from tftrain.data.pipeline.interface import Pipelines
from tftrain.data.pipeline.transforms import training_transform
from tftrain.errors import ConfigError, UserError
from tftrain.models.components import build_callbacks, build_loss, build_metrics, build_optimizer
from tftrain.runs.init_from import read_initial_weights
from tftrain.spec.schema import Config
from tftrain.tracking import check_tracking
from tftrain.training.data_checks import check_data
from tftrain.training.distill import Distillation, load_distillation
from tftrain.training.distribute import Distribution, shard_by_example
from tftrain.training.loss_tracker import use_lean_loss_tracker
from tftrain.training.plan import Plan, make_plan
from tftrain.training.resolved import resolved_config, resolved_values
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
    written: Config | None = None  # what config.yaml holds: `auto` kept (None: `config`)
    resolved: dict = field(default_factory=dict)  # what each `auto` meant here, for summary.json
    callbacks: tuple = ()  # the plugins' callbacks training.callbacks names (made before any file is written)
    distill: Distillation | None = None  # the teacher `distill:` names, loaded and frozen


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


def resolve_precision(config: Config, precision: str) -> Config:
    """`training.precision: auto` as the policy the plan chose; summary.json records it
    (tftrain.training.resolved) so that a resume, on any machine, trains in the same precision."""
    if config.training.precision != "auto":
        return config
    return config.model_copy(update={"training": config.training.model_copy(update={"precision": precision})})


def prepare(config: Config, distribution: Distribution, resumed: bool = False,
            recorded: dict | None = None) -> Prepared:
    """Seed, load and check the data, plan, then build the pipelines and the compiled model.
    `resumed`: the resume state will overwrite every weight, so a model.init_from source that
    no longer exists is skipped (with a note) instead of stopping the resume. `recorded`: what
    the resumed run's `auto` values were (summary.json, tftrain.training.resolved)."""
    check_tracking(config)
    written = seed_everything(config)  # config.yaml: the user's values, the seed recorded
    config = resolved_config(written, recorded)
    data = load_data(config, config.seed)
    check_data(config, data)
    plan = make_plan(config, data, distribution)
    config = resolve_precision(config, plan.precision)
    distill = load_distillation(config, data.num_classes, plan.spec.outputs)  # before the seed: loading draws from it
    keras.utils.set_random_seed(config.seed)  # the plan's symbolic build drew from the seeded generators
    workers = (distribution.worker_index, distribution.num_workers) if distribution.kind == "multi_worker" else None
    transform = training_transform(config, list(plan.augmentation), plan.class_weights, config.seed)
    pipelines = build_pipelines(data, config, config.seed, transform, workers=workers, in_graph=plan.in_graph)
    if transform is not None:
        _trace_training_batches(pipelines)
    if distribution.kind == "multi_worker":
        pipelines = shard_by_example(pipelines)
    training = config.training
    initial, init_note = None, None
    if config.model.init_from is not None and resumed and not Path(config.model.init_from).exists():
        init_note = f"init_from {config.model.init_from} no longer exists: the weights come from the resume state"
    else:
        initial = read_initial_weights(config.model.init_from) if config.model.init_from else None  # model.init_from, read in safe mode outside the strategy
    with distribution.strategy.scope():
        keras.mixed_precision.set_global_policy(plan.precision)
        try:
            model = config.model.build(plan.spec)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        if initial is not None:
            init_note = initial.copy_into(model, plan.spec.outputs)
        loss, metrics, compiled = _loss_and_metrics(config, plan)
        rate = build_learning_rate(config.optimizer, plan.total_steps, plan.schedule.steps_per_epoch)
        model.compile(optimizer=build_optimizer(config.optimizer, plan.precision, rate), **compiled,
                      steps_per_execution=plan.steps_per_execution,
                      jit_compile=training.jit_compile, run_eagerly=training.run_eagerly)
        use_lean_loss_tracker(model)
        if training.unfreeze is not None:
            _build_optimizer_for_every_stage(config, model)
        if plan.spec.heads and training.loop == "fit":  # several outputs: fit's per-output loss trackers
            from tftrain.models.outputs import build_loss_trackers

            build_loss_trackers(model, pipelines.train(0))
    info = {**data.describe(), "train_examples": pipelines.train_examples,
            "validation": pipelines.validation_split,
            "input": {"in_graph": plan.in_graph, "reason": plan.in_graph_reason},
            "precision": {"policy": plan.precision, "reason": plan.precision_reason}}
    if plan.spec.table is not None:  # a typed table: what was fitted on the training split
        info["preprocessing"] = plan.spec.table.describe()
    return Prepared(config, plan, info, pipelines, model, loss, metrics, init_note, written,
                    resolved_values(written, config, plan.cpu_threads), tuple(build_callbacks(config)), distill)


def _loss_and_metrics(config: Config, plan: Plan) -> tuple:
    """The loss and metrics the loops track, and model.compile's loss/metrics arguments (several
    outputs: a dict of each, with loss_weights; the custom loop's loss is their weighted sum)."""
    if not plan.spec.heads:
        loss, metrics = build_loss(config.loss), build_metrics(config, plan.spec.outputs)
        return loss, metrics, {"loss": loss, "metrics": metrics}
    from tftrain.models.outputs import compile_arguments, custom_loop_objects

    classes = dict(plan.spec.heads)
    compiled = compile_arguments(config, classes)  # fit's (and evaluate's): Keras names each output's values
    if config.training.loop == "custom":
        return (*custom_loop_objects(config, classes), compiled)
    return None, [m for ms in compiled["metrics"].values() for m in ms], compiled


def _trace_training_batches(pipelines: Pipelines) -> None:
    """Build the training stream once, so that an augmentation Keras refuses only when it traces
    (a layer that needs 3 channels, say) is a one-line error before anything is written."""
    try:
        pipelines.train(0).element_spec  # noqa: B018 (building the dataset traces its functions)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data.augmentation: {str(exc).strip().splitlines()[0][:300]}") from None


def _build_optimizer_for_every_stage(config: Config, model: keras.Model) -> None:
    """training.unfreeze: the optimizer gets slots for every variable that will train (the
    unfrozen backbone's too) before the first step, so the resume state has one shape for the
    whole run; then the model goes back to its first stage (the head alone)."""
    config.model.set_stage(model, unfrozen=True)
    model.optimizer.build(model.trainable_variables)
    config.model.set_stage(model, unfrozen=False)
