"""`run_training(config, runs_dir)`: validated config in, finished run directory out.

Order matters: everything that can fail because of the user's input (data files, shapes,
Keras arguments) happens before the run directory is created, so bad input writes nothing.
"""

from __future__ import annotations

import os
import platform
import secrets
import shlex
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
from tftrain.data.checks import check_data  # noqa: E402
from tftrain.data.pipeline import Pipelines, build_pipelines  # noqa: E402
from tftrain.errors import DivergedError, TrainingInterrupted, UserError  # noqa: E402
from tftrain.models import build_model  # noqa: E402
from tftrain.report import data_lines, metrics_table, model_table  # noqa: E402
from tftrain.runs import CONFIG, HISTORY, MODEL, SUMMARY, RunDir  # noqa: E402
from tftrain.training.callbacks import (  # noqa: E402
    CheckpointCallback,
    DivergenceCallback,
    HistoryCallback,
    ProgressCallback,
    save_atomically,
)
from tftrain.training.checkpointing import (  # noqa: E402
    InterruptRequests,
    Interrupted,
    StateCallback,
    TrainingState,
    state_folder,
)
from tftrain.training.custom import CustomLoop  # noqa: E402
from tftrain.training.distribute import (  # noqa: E402
    Distribution,
    SignalAgreement,
    check_distribution,
    cluster_flags,
    create_distribution,
    peers_lost_as_error,
    shard_by_example,
    values_on_every_worker,
    wait_for_every_worker,
    weights_fingerprint,
)
from tftrain.training.fit import train_with_fit  # noqa: E402
from tftrain.training.performance import (  # noqa: E402
    configure_cpu_threads,
    precision_note,
    resolve_steps_per_execution,
    step_macs,
)
from tftrain.training.steplog import StepLogCallback  # noqa: E402
from tftrain.training.tensorboard import TensorBoardCallback  # noqa: E402
from tftrain.training.throughput import ThroughputCallback  # noqa: E402


# summary.json fields that describe how a session ended; a resumed run drops them.
_SESSION_END_FIELDS = ("signal", "interrupted_at", "error", "diverged_at_step", "finished")


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


def prepare(config: Config, distribution: Distribution | None = None) -> Prepared:
    """Seed, load data, build pipelines, model, loss, optimizer and metrics; compile.

    Under a strategy (training.distribute), the model, optimizer and metrics are created in its
    scope, so their variables are mirrored over the replicas.
    """
    strategy = distribution.strategy if distribution is not None else tf.distribute.get_strategy()
    config = seed_everything(config)
    data = load_data(config, config.seed)
    check_data(config, data)
    configure_cpu_threads(config, data)  # TensorFlow takes a thread count only before its first op
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
        # model.fit draws whole calls from the run's one stream of batches (tftrain.data.pipeline),
        # so for `fit` a call must not cross an epoch's end; the custom loop cuts its last call.
        # Keras's fit runs several steps per call in a tf.cond, which fails under any strategy
        # (keras-team/keras#19246): one step per call there; the custom loop has no such limit.
        fit_under_strategy = training.loop == "fit" and distribution is not None and distribution.kind != "none"
        spe = resolve_steps_per_execution(1 if fit_under_strategy else training.steps_per_execution,
                                          pipelines.steps_per_epoch,
                                          whole_calls=training.loop == "fit",
                                          step_macs=step_macs(config, data))
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
                 console: Console | None = None, verbose: bool = False,
                 distribution: Distribution | None = None) -> RunDir | None:
    """Train `config` into a new run directory under `runs_dir` and return it.

    `verbose` also prints the resolved config and a line about every tenth of an epoch. In a
    multi_worker run only the chief (worker 0) writes and returns the run directory; the other
    workers return None. `distribution`: the one `create_distribution(config.training)` made
    already, for a caller that ran TensorFlow before this (None: made here, first).
    """
    console = console or Console(stderr=True)
    if distribution is None:
        distribution = create_distribution(config.training)  # first: strategies set TensorFlow up at start-up
    check_distribution(config, distribution)
    with peers_lost_as_error(distribution):
        if distribution.is_chief:
            return _new_run(config, distribution, Path(runs_dir), name, console, verbose)
        _as_other_worker(distribution, console,
                         lambda scratch: _new_run(config, distribution, scratch, name, console, verbose))
        return None


def _as_other_worker(distribution: Distribution, console: Console, train) -> None:
    """`train(scratch_folder)` on a multi_worker worker other than the chief.

    Those workers take the very same steps as the chief (saving and reading metrics join
    collective ops with it), but into a scratch folder that is deleted: the run directory is the
    chief's. What they print says so.
    """
    scratch = Path(tempfile.mkdtemp(prefix="tftrain-worker-"))
    try:
        run = train(scratch)
        console.print(f"worker {distribution.worker_index} of {distribution.num_workers} done; weights "
                      f"sha256 {run.summary()['distribute']['weights_sha256']} (the chief wrote the run "
                      "directory)", markup=False, highlight=False, soft_wrap=True)
    except DivergedError as exc:  # its checkpoints went with the scratch folder; the chief's did not
        raise DivergedError(f"{str(exc).split(';')[0]}; the last good checkpoint is in the chief's run "
                            "directory") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _new_run(config: Config, distribution: Distribution, runs_dir: Path, name: str | None,
             console: Console, verbose: bool, restore_from: Path | None = None) -> RunDir:
    """Prepare `config` under `distribution`, create its run directory and train into it
    (from the checkpoint of the run at `restore_from`, for a worker that resumes the chief's run)."""
    prepared = prepare(config, distribution)
    config = prepared.config
    run = RunDir.create(runs_dir, name or config.name)
    with run.lock(), InterruptRequests() as interrupts:
        run.write_text(CONFIG, config.to_yaml())
        run.update_summary(
            status="running", name=run.path.name, seed=config.seed, started=time.time(),
            data=prepared.data_info, params=prepared.model.count_params(),
            loop=config.training.loop, steps_per_execution=prepared.steps_per_execution,
            jit_compile=bool(prepared.model.jit_compile),  # as resolved by Keras ("auto": XLA on GPUs only)
            cpu_threads=tf.config.threading.get_intra_op_parallelism_threads() or "default",
            precision=config.training.precision, versions=versions(),
            distribute=distribution.describe(config.data.batch_size))
        return _train(run, prepared, console, interrupts, distribution, verbose=verbose,
                      resume=restore_from is not None, restore_from=restore_from)


def resume_training(run_dir: str | Path, console: Console | None = None, verbose: bool = False) -> RunDir | None:
    """Continue an unfinished run from its newest readable checkpoint, exactly where it stopped.

    A multi_worker run is resumed by every worker, each with the same `run_dir`: the chief's run
    directory, on storage that every worker can read (as TensorFlow's own multi-worker
    checkpointing expects). Each worker restores the chief's newest checkpoint from there; only
    the chief writes to it, and only the chief returns it (the others return None).
    """
    console = console or Console(stderr=True)
    run = RunDir.open(run_dir)
    config = run.config()
    distribution = create_distribution(config.training)  # first: strategies set TensorFlow up at start-up
    check_distribution(config, distribution)  # the cluster may have changed size since
    with peers_lost_as_error(distribution):
        if not distribution.is_chief:
            _check_resumable(run)  # the chief checks it too: they all stop
            _as_other_worker(distribution, console, lambda scratch: _new_run(
                config, distribution, scratch, config.name, console, verbose, restore_from=run.path))
            return None
        with run.lock(), InterruptRequests() as interrupts:
            _check_resumable(run)
            prepared = prepare(config, distribution)
            return _train(run, prepared, console, interrupts, distribution, resume=True, verbose=verbose)


def _check_resumable(run: RunDir) -> None:
    if run.summary().get("status") == "completed":
        raise UserError(f"{run.path}: the run has completed; there is nothing to resume")


def resume_command(run_path: Path | str, distribution: Distribution | None = None) -> str:
    """The command that continues the run at `run_path`, ready to paste into a shell; for a
    multi_worker run, the chief's, with a word on what the other workers run."""
    command = f"tftrain run --resume {shlex.quote(str(run_path))}"
    if distribution is None or distribution.kind != "multi_worker":
        return command
    flags = cluster_flags()
    if flags is None:  # the cluster came from a TF_CONFIG that the flags cannot express
        return f"{command} (on every worker, with TF_CONFIG set as for this run)"
    return f"{command} {flags} (on every worker, each with its own --worker-index)"


def _train(run: RunDir, prepared: Prepared, console: Console, interrupts: InterruptRequests,
           distribution: Distribution, resume: bool = False, verbose: bool = False,
           restore_from: Path | None = None) -> RunDir:
    """Train (or go on training) `prepared` in `run`, which this process holds.

    `restore_from`: on a worker other than the chief, the chief's run directory (None on a new
    run); a resume restores the chief's checkpoint from there, not from `run`.
    """
    config, model, pipelines = prepared.config, prepared.model, prepared.pipelines
    steps_mode = config.training.steps is not None
    history = HistoryCallback(run, pipelines.steps_per_epoch, steps_mode)
    checkpoint = CheckpointCallback(run, config.training.checkpoint.monitor,
                                    config.training.checkpoint.mode, pipelines.validation is not None)
    divergence = DivergenceCallback()
    early_stopping = None
    if config.training.early_stopping is not None:
        early_stopping = keras.callbacks.EarlyStopping(**config.training.early_stopping.model_dump())
    loop = None
    if config.training.loop == "custom":
        loop = CustomLoop(model, prepared.loss, prepared.metrics, prepared.steps_per_execution,
                          jit_compile=bool(model.jit_compile),  # Keras resolved "auto" at compile
                          run_eagerly=config.training.run_eagerly, strategy=prepared.strategy)
    # The metric objects whose accumulators a mid-epoch checkpoint carries.
    loop_metrics = [loop.loss_tracker, *loop.metrics] if loop else [*model.metrics, *prepared.metrics]
    state = TrainingState(run, model, loop_metrics, early_stopping)

    record = None
    if resume:
        record = state.restore(warn=lambda text: console.print(f"warning: {text}", markup=False, highlight=False),
                               folder=state_folder(restore_from) if restore_from is not None else None)
        if distribution.kind == "multi_worker":
            _check_same_checkpoint(distribution, record, config.training.distribute_timeout)
        history.rows = list(record.history) if record else []
        if record:
            checkpoint.best, checkpoint.best_epoch = record.best, record.best_epoch
        # history.csv may hold rows of work the checkpoint does not have: make it match.
        if history.rows:
            run.write_history(history.rows)
        else:
            (run.path / HISTORY).unlink(missing_ok=True)
    start_epoch, start_step = (record.epoch, record.step) if record else (0, 0)
    summary = run.summary()
    if resume:
        # What the previous session reported about its end is history now.
        summary = {k: v for k, v in summary.items() if k not in _SESSION_END_FIELDS}
        summary["resumed"] = [*summary.get("resumed", []), {
            "time": time.time(), "epoch": start_epoch + 1, "step_in_epoch": start_step,
            "step": record.global_step if record else 0}]
    summary = {**summary, "status": "running", "pid": os.getpid()}
    run.write_json(SUMMARY, summary)

    if distribution.is_chief:
        console.print(f"run directory: {run.path}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"worker {distribution.worker_index} of {distribution.num_workers}: the chief "
                      "(worker 0) writes the run directory", markup=False, highlight=False)
    console.print(data_lines(prepared.data_info), markup=False, highlight=False, soft_wrap=True)
    console.print(model_table(model))
    note = precision_note(config.training.precision, bool(tf.config.list_physical_devices("GPU")))
    if note:
        console.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)
    if verbose:
        console.print(config.to_yaml(), markup=False, highlight=False)
    if resume:
        where = (f"epoch {start_epoch + 1}, step {start_step}" if record else "the start (no checkpoint yet)")
        console.print(f"resuming from {where}", markup=False, highlight=False, soft_wrap=True)

    callbacks = [divergence, history, checkpoint,
                 ProgressCallback(console, pipelines.epochs, pipelines.steps_per_epoch, steps_mode)]
    if early_stopping is not None:
        callbacks.append(early_stopping)
    callbacks.append(TensorBoardCallback(run.path / "tensorboard", pipelines.steps_per_epoch, steps_mode))
    if verbose:
        callbacks.append(StepLogCallback(console, pipelines.steps_per_epoch))
    # After the others, so its intervals include their per-call work.
    throughput = ThroughputCallback(config.data.batch_size, None if steps_mode else pipelines.train_examples)
    callbacks.append(throughput)
    # Last: a checkpoint must capture what every other callback did at that step or epoch.
    agree = SignalAgreement(prepared.strategy) if distribution.kind == "multi_worker" else None
    callbacks.append(StateCallback(state, pipelines.steps_per_epoch, config.training.checkpoint.every_steps,
                                   interrupts, history, checkpoint, early_stopping, record, agree))

    started = time.time()
    finished = record is not None and (record.stopped or start_epoch >= pipelines.epochs)
    try:
        if finished:
            # Killed after the last checkpoint: only the end of training is left to do.
            if (early_stopping is not None and early_stopping.restore_best_weights
                    and (record.early_stopping or {}).get("has_best_weights")):
                model.set_weights(state.best_weights())  # what EarlyStopping.on_train_end does
            if loop is None:
                model.optimizer.finalize_variable_values(model.trainable_weights)  # as fit ends
        elif loop is not None:
            loop.fit(pipelines, callbacks, start_epoch, start_step)
        else:
            train_with_fit(model, pipelines, callbacks, start_epoch, start_step)
    except Interrupted as stop:
        at = stop.record
        if distribution.kind == "multi_worker":  # all stopped after this step: leave together
            wait_for_every_worker(f"tftrain-stop-{at.global_step}", config.training.distribute_timeout)
        run.update_summary(status="interrupted", signal=str(stop), seconds=at.seconds,
                           interrupted_at={"epoch": at.epoch + 1, "step_in_epoch": at.step, "step": at.global_step})
        where = f"{stop} after step {at.global_step} (epoch {at.epoch + 1}, step {at.step})"
        if distribution.is_chief:
            raise TrainingInterrupted(f"{where}; checkpoint saved; resume with: "
                                      f"{resume_command(run.path, distribution)}", stop.signum) from None
        raise TrainingInterrupted(f"{where}; the chief saved the checkpoint; resume with: "
                                  f"{resume_command(restore_from or 'RUN_DIR', distribution)}, RUN_DIR being the "
                                  "chief's run directory", stop.signum) from None
    except KeyboardInterrupt:
        # A second Ctrl-C: stopped at once, without a fresh checkpoint; the previous one still works.
        run.update_summary(status="interrupted", signal="SIGINT")
        if distribution.is_chief:
            console.print(f"resume with: {resume_command(run.path, distribution)}", markup=False, highlight=False)
        raise
    except BaseException as exc:
        run.update_summary(status="failed", error=f"{exc.__class__.__name__}: {exc}"[:500],
                           seconds=time.time() - started)
        raise

    seconds = time.time() - started
    steps_done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    final = {k: v for k, v in (history.rows[-1] if history.rows else {}).items() if k not in ("epoch", "step")}
    rate = throughput.result()
    summary = {
        **summary,
        "epochs_done": len(history.rows),
        "steps_done": steps_done,
        "final": final,
        "best": {"monitor": checkpoint.monitor, "value": checkpoint.best, "epoch": checkpoint.best_epoch},
        "seconds": round(seconds + (record.seconds if record else 0.0), 3),
        # Training only, first compiled call (tracing) excluded; details in "throughput".
        "examples_per_second": rate["examples_per_second"],
        "throughput": rate,
    }
    if distribution.kind != "none":  # lets anyone check that every worker ended with the same model
        summary["distribute"] = {**summary["distribute"], "weights_sha256": weights_fingerprint(model)}
    if divergence.diverged_at_step is not None:
        run.update_summary(**{**summary, "status": "diverged", "diverged_at_step": divergence.diverged_at_step})
        if distribution.is_chief:  # other workers train into a scratch folder nobody looks at
            write_plots(run, console)
        raise DivergedError(f"loss became NaN or infinite at step {divergence.diverged_at_step}; "
                            f"the last good checkpoint is in {run.path / 'checkpoints'}")
    save_atomically(model, run.path / MODEL)
    run.update_summary(**{**summary, "status": "completed", "finished": time.time()})
    if distribution.is_chief:
        write_plots(run, console)
    console.print(metrics_table("final metrics", final))
    return run


def _check_same_checkpoint(distribution: Distribution, record, timeout_s: int) -> None:
    """Every worker of a resumed multi_worker run must have restored the same checkpoint, or
    they would run different steps in lock-step and fail in a collective op, without saying why."""
    steps = values_on_every_worker(distribution.strategy, record.global_step if record else -1)
    if len(set(steps)) > 1:
        wait_for_every_worker("tftrain-restored", timeout_s)  # all stop: leave together
        found = ", ".join("none" if step < 0 else f"step {step}" for step in steps)
        raise UserError(f"the workers restored different checkpoints ({found}, by replica): every worker "
                        "must resume from the chief's run directory itself, on storage that all of them "
                        "read, not from a copy")


def write_plots(run: RunDir, console: Console) -> None:
    """plots/*.png from history.csv; a plotting problem is a warning, never a lost run."""
    from tftrain.plots import write_run_plots  # matplotlib is imported only once a run has a history

    try:
        write_run_plots(run.path)
    except Exception as exc:  # noqa: BLE001 (the trained model and history are already saved)
        console.print(f"warning: plots not written: {exc.__class__.__name__}: {exc}",
                      markup=False, highlight=False, soft_wrap=True)
