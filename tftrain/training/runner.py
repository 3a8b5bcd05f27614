"""`run_training(config, runs_dir)`: validated config in, finished run directory out.

Order matters: everything that can fail because of the user's input (data files, shapes,
Keras arguments) happens before the run directory is created, so bad input writes nothing.
"""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the console

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from rich.console import Console  # noqa: E402

import tftrain  # noqa: E402
from tftrain.components import build_loss, build_metrics, build_optimizer  # noqa: E402
from tftrain.config import Config  # noqa: E402
from tftrain.data import load_data  # noqa: E402
from tftrain.data.pipeline import Pipelines, build_pipelines  # noqa: E402
from tftrain.errors import DivergedError  # noqa: E402
from tftrain.models import build_model  # noqa: E402
from tftrain.report import metrics_table, model_table  # noqa: E402
from tftrain.runs import CONFIG, MODEL, RunDir  # noqa: E402
from tftrain.training.callbacks import (  # noqa: E402
    CheckpointCallback,
    DivergenceCallback,
    HistoryCallback,
    ProgressCallback,
    save_atomically,
)
from tftrain.training.custom import CustomLoop  # noqa: E402
from tftrain.training.distribute import (  # noqa: E402
    Distribution,
    check_distribution,
    create_distribution,
    shard_by_example,
    weights_fingerprint,
)
from tftrain.training.fit import train_with_fit  # noqa: E402


@dataclass
class Prepared:
    """Everything built from the config before any file is written."""

    config: Config
    data_info: dict
    pipelines: Pipelines
    model: keras.Model
    loss: keras.losses.Loss
    metrics: list
    steps_per_execution: int
    strategy: tf.distribute.Strategy  # the model, optimizer and metrics live in its scope


def versions() -> dict[str, str]:
    """Library versions recorded in every summary (results are exact only within these)."""
    return {"tftrain": tftrain.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def seed_everything(config: Config) -> Config:
    """Seed Python, NumPy and TF (picking and recording a seed if `seed: null`)."""
    if config.seed is None:
        config = config.model_copy(update={"seed": secrets.randbelow(2**31)})
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    return config


def resolve_steps_per_execution(config: Config, pipelines: Pipelines) -> int:
    """`auto` runs up to 32 steps per compiled call, never more than an epoch (or interval)."""
    value = config.training.steps_per_execution
    if value == "auto":
        return max(1, min(32, pipelines.steps_per_epoch))
    return min(value, pipelines.steps_per_epoch)


def prepare(config: Config, distribution: Distribution | None = None) -> Prepared:
    """Seed, load data, build pipelines, model, loss, optimizer and metrics; compile.

    Under a strategy (training.distribute), the model, optimizer and metrics are created in its
    scope, so their variables are mirrored over the replicas.
    """
    strategy = distribution.strategy if distribution is not None else tf.distribute.get_strategy()
    config = seed_everything(config)
    data = load_data(config, config.seed)
    pipelines = build_pipelines(data, config, config.seed)
    if distribution is not None and distribution.kind == "multi_worker":
        pipelines = shard_by_example(pipelines)
    training = config.training
    with strategy.scope():
        keras.mixed_precision.set_global_policy(training.precision)
        try:
            model = build_model(config, data)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        loss = build_loss(config.loss)
        metrics = build_metrics(config)
        spe = resolve_steps_per_execution(config, pipelines)
        model.compile(
            optimizer=build_optimizer(config.optimizer, training.precision),
            loss=loss, metrics=metrics,
            steps_per_execution=spe,
            jit_compile=training.jit_compile,
            run_eagerly=training.run_eagerly,
        )
    info = {**data.describe(), "train_examples": pipelines.train_examples,
            "validation": pipelines.validation_split}
    return Prepared(config, info, pipelines, model, loss, metrics, spe, strategy)


def run_training(config: Config, runs_dir: str | Path = "runs", name: str | None = None,
                 console: Console | None = None) -> RunDir | None:
    """Train `config` into a new run directory under `runs_dir` and return it.

    In a multi_worker run only the chief (worker 0) writes and returns the run directory; the
    other workers return None.
    """
    console = console or Console(stderr=True)
    distribution = create_distribution(config.training)  # first: strategies set TensorFlow up at start-up
    check_distribution(config, distribution)
    if distribution.is_chief:
        return _train(config, distribution, Path(runs_dir), name, console)
    # The other workers take the very same steps (saving and reading metrics join collective ops
    # with the chief), but into a scratch folder that is deleted: the run directory is the chief's.
    scratch = Path(tempfile.mkdtemp(prefix="tftrain-worker-"))
    try:
        run = _train(config, distribution, scratch, name, console)
        console.print(f"worker {distribution.worker_index} of {distribution.num_workers} done; weights "
                      f"sha256 {run.summary()['distribute']['weights_sha256']} (the chief wrote the run "
                      "directory)", markup=False, highlight=False, soft_wrap=True)
        return None
    except DivergedError as exc:  # its checkpoints went with the scratch folder; the chief's did not
        raise DivergedError(f"{str(exc).split(';')[0]}; the last good checkpoint is in the chief's run "
                            "directory") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(config: Config, distribution: Distribution, runs_dir: Path, name: str | None,
           console: Console) -> RunDir:
    """Prepare and train `config` under `distribution` into a new run directory under `runs_dir`."""
    prepared = prepare(config, distribution)
    config = prepared.config
    run = RunDir.create(runs_dir, name or config.name)
    run.write_text(CONFIG, config.to_yaml())
    started = time.time()
    summary = run.update_summary(
        status="running", name=run.path.name, seed=config.seed, started=started,
        data=prepared.data_info, params=prepared.model.count_params(),
        loop=config.training.loop, steps_per_execution=prepared.steps_per_execution,
        precision=config.training.precision, versions=versions(),
        distribute=distribution.describe(config.data.batch_size))

    if distribution.is_chief:
        console.print(f"run directory: {run.path}", markup=False, highlight=False)
    else:
        console.print(f"worker {distribution.worker_index} of {distribution.num_workers}: the chief "
                      "(worker 0) writes the run directory", markup=False, highlight=False)
    console.print(f"data: {prepared.data_info['source']}", markup=False, highlight=False)
    console.print(model_table(prepared.model))

    pipelines = prepared.pipelines
    steps_mode = config.training.steps is not None
    history = HistoryCallback(run, pipelines.steps_per_epoch, steps_mode)
    checkpoint = CheckpointCallback(run, config.training.checkpoint.monitor,
                                    config.training.checkpoint.mode, pipelines.validation is not None)
    divergence = DivergenceCallback()
    callbacks = [divergence, history, checkpoint,
                 ProgressCallback(console, pipelines.epochs, pipelines.steps_per_epoch, steps_mode)]
    if config.training.early_stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(**config.training.early_stopping.model_dump()))

    try:
        if config.training.loop == "fit":
            train_with_fit(prepared.model, pipelines, callbacks)
        else:
            CustomLoop(prepared.model, prepared.loss, prepared.metrics, prepared.steps_per_execution,
                       jit_compile=config.training.jit_compile is True,
                       run_eagerly=config.training.run_eagerly,
                       strategy=prepared.strategy).fit(pipelines, callbacks)
    except KeyboardInterrupt:
        run.update_summary(status="interrupted", seconds=time.time() - started)
        raise
    except BaseException as exc:
        run.update_summary(status="failed", error=f"{exc.__class__.__name__}: {exc}"[:500],
                           seconds=time.time() - started)
        raise

    seconds = time.time() - started
    steps_done = int(keras.ops.convert_to_numpy(prepared.model.optimizer.iterations))
    final = {k: v for k, v in (history.rows[-1] if history.rows else {}).items() if k not in ("epoch", "step")}
    summary = {
        **summary,
        "epochs_done": len(history.rows),
        "steps_done": steps_done,
        "final": final,
        "best": {"monitor": checkpoint.monitor, "value": checkpoint.best, "epoch": checkpoint.best_epoch},
        "seconds": round(seconds, 3),
        "examples_per_second": round(steps_done * config.data.batch_size / seconds, 1) if seconds else None,
    }
    if distribution.kind != "none":  # lets anyone check that every worker ended with the same model
        summary["distribute"] = {**summary["distribute"], "weights_sha256": weights_fingerprint(prepared.model)}
    if divergence.diverged_at_step is not None:
        run.update_summary(**{**summary, "status": "diverged", "diverged_at_step": divergence.diverged_at_step})
        raise DivergedError(f"loss became NaN or infinite at step {divergence.diverged_at_step}; "
                            f"the last good checkpoint is in {run.path / 'checkpoints'}")
    save_atomically(prepared.model, run.path / MODEL)
    run.update_summary(**{**summary, "status": "completed", "finished": time.time()})
    console.print(metrics_table("final metrics", final))
    return run
