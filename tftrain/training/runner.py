"""`run_training(config, runs_dir)`: validated config in, finished run directory out.

Order matters: everything that can fail because of the user's input (data files, shapes,
Keras arguments) happens before the run directory is created, so bad input writes nothing.
"""

from __future__ import annotations

import os
import platform
import secrets
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
from tftrain.training.fit import train_with_fit  # noqa: E402
from tftrain.training.performance import (  # noqa: E402
    configure_cpu_threads,
    precision_note,
    resolve_steps_per_execution,
    step_macs,
)
from tftrain.training.throughput import ThroughputCallback  # noqa: E402


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


def prepare(config: Config) -> Prepared:
    """Seed, load data, build pipelines, model, loss, optimizer and metrics; compile."""
    config = seed_everything(config)
    data = load_data(config, config.seed)
    training = config.training
    configure_cpu_threads(config, data)  # TensorFlow takes a thread count only before its first op
    pipelines = build_pipelines(data, config, config.seed)
    keras.mixed_precision.set_global_policy(training.precision)
    try:
        model = build_model(config, data)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    loss = build_loss(config.loss)
    metrics = build_metrics(config)
    spe = resolve_steps_per_execution(training.steps_per_execution, pipelines.steps_per_epoch,
                                      whole_calls=training.steps is not None, step_macs=step_macs(config, data))
    model.compile(
        optimizer=build_optimizer(config.optimizer, training.precision),
        loss=loss, metrics=metrics,
        steps_per_execution=spe,
        jit_compile=training.jit_compile,
        run_eagerly=training.run_eagerly,
    )
    info = {**data.describe(), "train_examples": pipelines.train_examples,
            "validation": pipelines.validation_split}
    return Prepared(config, info, pipelines, model, loss, metrics, spe)


def run_training(config: Config, runs_dir: str | Path = "runs", name: str | None = None,
                 console: Console | None = None) -> RunDir:
    """Train `config` into a new run directory under `runs_dir` and return it."""
    console = console or Console(stderr=True)
    prepared = prepare(config)
    config = prepared.config
    run = RunDir.create(Path(runs_dir), name or config.name)
    run.write_text(CONFIG, config.to_yaml())
    started = time.time()
    summary = run.update_summary(
        status="running", name=run.path.name, seed=config.seed, started=started,
        data=prepared.data_info, params=prepared.model.count_params(),
        loop=config.training.loop, steps_per_execution=prepared.steps_per_execution,
        jit_compile=bool(prepared.model.jit_compile),  # as resolved by Keras ("auto": XLA on GPUs only)
        cpu_threads=tf.config.threading.get_intra_op_parallelism_threads() or "default",
        precision=config.training.precision, versions=versions())

    console.print(f"run directory: {run.path}", markup=False, highlight=False)
    console.print(f"data: {prepared.data_info['source']}", markup=False, highlight=False)
    console.print(model_table(prepared.model))
    note = precision_note(config.training.precision, bool(tf.config.list_physical_devices("GPU")))
    if note:
        console.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)

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
    # Last, so its intervals include the other callbacks' per-call work.
    throughput = ThroughputCallback(config.data.batch_size, None if steps_mode else pipelines.train_examples)
    callbacks.append(throughput)

    try:
        if config.training.loop == "fit":
            train_with_fit(prepared.model, pipelines, callbacks)
        else:
            CustomLoop(prepared.model, prepared.loss, prepared.metrics, prepared.steps_per_execution,
                       jit_compile=bool(prepared.model.jit_compile),  # Keras resolved "auto" at compile
                       run_eagerly=config.training.run_eagerly).fit(pipelines, callbacks)
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
    rate = throughput.result()
    summary = {
        **summary,
        "epochs_done": len(history.rows),
        "steps_done": steps_done,
        "final": final,
        "best": {"monitor": checkpoint.monitor, "value": checkpoint.best, "epoch": checkpoint.best_epoch},
        "seconds": round(seconds, 3),
        # Training only, first compiled call (tracing) excluded; details in "throughput".
        "examples_per_second": rate["examples_per_second"],
        "throughput": rate,
    }
    if divergence.diverged_at_step is not None:
        run.update_summary(**{**summary, "status": "diverged", "diverged_at_step": divergence.diverged_at_step})
        raise DivergedError(f"loss became NaN or infinite at step {divergence.diverged_at_step}; "
                            f"the last good checkpoint is in {run.path / 'checkpoints'}")
    save_atomically(prepared.model, run.path / MODEL)
    run.update_summary(**{**summary, "status": "completed", "finished": time.time()})
    console.print(metrics_table("final metrics", final))
    return run
