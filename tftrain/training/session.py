"""Training sessions: `run_training(config, runs_dir)` and `resume_training(run_dir)`, a
validated config (or an unfinished run) in, a finished run directory out.

    placement.check -> prepare (plan, data, model) -> placement.open (the run directory)
      -> TrainingSession: restore -> callbacks -> loop -> finish

A new run and a resumed one, the chief and the other workers of a multi_worker run, all go
through these same phases; only their Placement differs. RunSummary records each transition.
"""

from __future__ import annotations

import platform
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf
from rich.console import Console

import tftrain
from tftrain.console import data_lines, model_layers, model_table, results_table, say
from tftrain.data.tables.state import preprocessing_callbacks
from tftrain.errors import DataReadError, DivergedError, TrainingInterrupted, UserError
from tftrain.runs import MODEL, TENSORBOARD, RunDir, RunSummary
from tftrain.spec.loading import validate
from tftrain.spec.schema import Config
from tftrain.training.callbacks import EndsRun, SessionCallbacks
from tftrain.training.callbacks.accumulators import MetricAccumulators
from tftrain.training.callbacks.divergence import DivergenceCallback
from tftrain.training.callbacks.early_stopping import EarlyStopping
from tftrain.training.callbacks.ema import EmaValidation, uses_ema
from tftrain.training.callbacks.history import HistoryCallback
from tftrain.training.callbacks.plateau import ReduceLROnPlateau
from tftrain.training.callbacks.progress import ProgressCallback, StepLogCallback
from tftrain.training.callbacks.snapshots import SnapshotCallback, save_atomically
from tftrain.training.callbacks.tensorboard import TensorBoardCallback
from tftrain.training.callbacks.throughput import ThroughputCallback
from tftrain.training.callbacks.tracking import tracking_callbacks
from tftrain.training.callbacks.unfreeze import Unfreeze
from tftrain.training.custom import CustomLoop
from tftrain.training.distribute import Distribution, check_distribution, create_distribution, peers_lost_as_error
from tftrain.training.fit import FitLoop
from tftrain.training.hints import batch_norm_hint
from tftrain.training.performance import precision_note
from tftrain.training.placement import Placement
from tftrain.training.prepare import Prepared, prepare
from tftrain.training.resolved import SUMMARY_KEY as RESOLVED
from tftrain.training.resume import Position, Record, ResumeCallback, ResumeState, Stateful
from tftrain.training.signals import Interrupted, InterruptRequests


@runtime_checkable
class RunEndListener(Protocol):
    """A callback told when its session has ended and written its files and final status
    (`completed`, `pruned`, `diverged`, `interrupted` or `failed`): experiment trackers."""

    def on_run_end(self, run: RunDir, status: str) -> None: ...


@dataclass(frozen=True)
class SessionOptions:
    """How a session talks and which extra callbacks it runs."""

    console: Console
    verbose: bool = False  # also the resolved config and lines within each epoch
    callbacks: Sequence[keras.callbacks.Callback] = ()  # run beside tftrain's own (tests inject faults here)
    shuffle_callbacks: int | None = None  # seed to shuffle the callback order with (it must not matter)


def run_training(config: Config, runs_dir: str | Path = "runs", name: str | None = None,
                 console: Console | None = None, verbose: bool = False,
                 distribution: Distribution | None = None, callbacks: Sequence[keras.callbacks.Callback] = (),
                 shuffle_callbacks: int | None = None, into: Path | None = None) -> RunDir | None:
    """Train `config` into a new run directory under `runs_dir` (or into `into`, an empty one a
    launcher made) and return it.

    In a multi_worker run only the chief (worker 0) writes and returns the run directory; the
    other workers return None. `distribution`: the one `create_distribution(config.training)`
    made already, for a caller that ran TensorFlow before this (None: made here, first).
    `callbacks`: Keras callbacks to run beside tftrain's own (a Stateful one resumes too).
    """
    if distribution is None:
        distribution = create_distribution(config.training)  # first: strategies set TensorFlow up at start-up
    check_distribution(config, distribution)
    options = SessionOptions(console or Console(stderr=True), verbose, callbacks, shuffle_callbacks)
    return _train(Placement(distribution, runs_dir=Path(runs_dir), name=name, into=into), config, options)


def resume_training(run_dir: str | Path, console: Console | None = None, verbose: bool = False,
                    callbacks: Sequence[keras.callbacks.Callback] = (),
                    shuffle_callbacks: int | None = None, epochs: int | None = None) -> RunDir | None:
    """Continue an unfinished run from its newest readable checkpoint, exactly where it stopped;
    with `epochs`, train a run (finished or not) on to that many epochs.

    A multi_worker run is resumed by every worker, each with the same `run_dir`: the chief's run
    directory, on storage that every worker can read (as TensorFlow's own multi-worker
    checkpointing expects). Only the chief writes to it, and only the chief returns it.
    """
    run = RunDir.open(run_dir)
    config = run.config() if epochs is None else _extended(run, epochs)
    distribution = create_distribution(config.training)  # first: strategies set TensorFlow up at start-up
    check_distribution(config, distribution)  # the cluster may have changed size since
    options = SessionOptions(console or Console(stderr=True), verbose, callbacks, shuffle_callbacks)
    return _train(Placement(distribution, resumed=run, extends_to=epochs), config, options,
                  recorded=run.summary().get(RESOLVED))


def _extended(run: RunDir, epochs: int) -> Config:
    """The run's config with `training.epochs: epochs`, if the run can train on to that."""
    config = run.config()
    training, summary = config.training, run.summary()
    if training.steps is not None:
        raise UserError(f"--set training.epochs: {run.path} trains for training.steps ({training.steps}), "
                        "not epochs; only an epochs run can be trained on")
    if epochs <= training.epochs:
        raise UserError(f"--set training.epochs: {run.path} already trains {training.epochs} epochs; "
                        f"give more than {training.epochs} to train on")
    if summary.get("status") == "completed" and summary.get("epochs_done", training.epochs) < training.epochs:
        raise UserError(f"--set training.epochs: {run.path} was stopped early (training.early_stopping) after "
                        f"{summary['epochs_done']} of {training.epochs} epochs; more epochs would stop at once")
    return validate({**config.model_dump(mode="json"),
                     "training": {**config.training.model_dump(mode="json"), "epochs": epochs}})


def _train(placement: Placement, config: Config, options: SessionOptions, recorded: dict | None = None) -> RunDir | None:
    with peers_lost_as_error(placement.distribution):
        placement.check()
        prepared = prepare(config, placement.distribution, resumed=placement.resumed is not None, recorded=recorded)
        with placement.open(prepared.written or prepared.config) as run, InterruptRequests() as interrupts:
            TrainingSession(run, placement, prepared, interrupts, options).train()
        return placement.result(run)


def versions() -> dict[str, str]:
    """Library versions recorded in every summary (results are exact only within these)."""
    return {"tftrain": tftrain.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


class TrainingSession:
    """One process training `prepared` into `run`, which it holds: restore, callbacks, loop, finish."""

    def __init__(self, run: RunDir, placement: Placement, prepared: Prepared, interrupts: InterruptRequests,
                 options: SessionOptions):
        self.run, self.placement, self.prepared = run, placement, prepared
        self.interrupts, self.options, self.console = interrupts, options, options.console
        self.config, self.distribution = prepared.config, placement.distribution
        self.summary = RunSummary(run)
        model, training = prepared.model, prepared.config.training
        if training.loop == "custom":
            self.loop = CustomLoop(model, prepared.loss, prepared.metrics, prepared.plan.steps_per_execution,
                                   jit_compile=bool(model.jit_compile),  # Keras resolved "auto" at compile
                                   run_eagerly=training.run_eagerly, strategy=model.distribute_strategy,
                                   distill=prepared.distill)
        else:
            self.loop = FitLoop(model, prepared.metrics, prepared.distill)
        self.state = ResumeState(run.state_folder, model)

    def train(self) -> None:
        """Every phase in order; each status change is recorded in summary.json."""
        restored = self.restore()
        self.record_start(restored)
        self.announce(restored)
        self.callbacks = callbacks = self.build_callbacks(restored)
        started = time.time()
        try:
            self.run_loop(callbacks, restored, started)
            self.finish(restored, started)
        except KeyboardInterrupt:
            raise  # a second Ctrl-C stops at once: the listeners are not told
        except BaseException:
            self.tell_run_end(callbacks)
            raise
        self.tell_run_end(callbacks)

    def tell_run_end(self, callbacks: SessionCallbacks) -> None:
        """Tell the listeners (trackers) the run's final status, after every file is written."""
        status = self.run.summary().get("status", "failed")
        for callback in callbacks.callbacks:
            if isinstance(callback, RunEndListener):
                try:
                    callback.on_run_end(self.run, status)
                except Exception as exc:  # noqa: BLE001 (a listener never changes how the run ended)
                    say(self.console, f"warning: {type(callback).__name__}: {exc.__class__.__name__}: {exc}")

    # -- restore -----------------------------------------------------------------------------
    def restore(self) -> Record | None:
        """The resume state to continue from (None: a new run, or one killed before its first
        checkpoint); the model's and optimizer's variables are restored with it."""
        if self.prepared.distill is not None and self.placement.resumed is not None:
            self.prepared.distill.check_unchanged(self.run.summary())  # the same teacher, or no exact resume
        folder = self.placement.restore_from
        if folder is None:
            return None
        record = self.state.restore(warn=lambda text: say(self.console, f"warning: {text}"), folder=folder)
        self.placement.check_restored(record.at.global_step if record else None,
                                      self.config.training.distribute_timeout)
        return record

    def record_start(self, restored: Record | None) -> None:
        """summary.json: a new run's facts, or one more session of a resumed run."""
        if self.placement.continues_summary:
            at = (restored.at if restored else Position(0, 0, 0)).describe()
            if self.placement.extends_to is not None:
                at["to_epochs"] = self.placement.extends_to
            self.summary.resumed(at)
            return
        prepared, config = self.prepared, self.config
        self.summary.started(
            seed=config.seed, data=prepared.data_info, params=prepared.model.count_params(),
            layers=model_layers(prepared.model),
            loop=config.training.loop, steps_per_execution=prepared.plan.steps_per_execution,
            jit_compile=bool(prepared.model.jit_compile),  # as resolved by Keras ("auto": XLA on GPUs only)
            cpu_threads=prepared.plan.cpu_threads or "default", precision=config.training.precision,
            versions=versions(), distribute=self.distribution.describe(config.data.batch_size),
            **{RESOLVED: prepared.resolved}, **({"distill": prepared.distill.record} if prepared.distill else {}))

    def announce(self, restored: Record | None) -> None:
        """The run directory, the data, the model, warnings and where training resumes."""
        console = self.console
        say(console, self.placement.where_message(self.run))
        say(console, data_lines(self.prepared.data_info))
        console.print(model_table(self.prepared.model))
        if self.prepared.init_note:
            say(console, self.prepared.init_note)
        if self.prepared.distill is not None:
            say(console, self.prepared.distill.note())
        if self.config.data.validation == "test" and self.prepared.pipelines.validation is None:
            monitor = self.config.training.checkpoint.monitor.removeprefix("val_")
            say(console, f"warning: {self.config.data.dataset} data has no test split, so nothing is validated "
                         f"(data.validation: test) and checkpoints/best.keras follows the training {monitor}; "
                         "set data.validation: 0.1 to hold out a fraction, or none to say so")
        note = precision_note(self.config.training.precision, bool(tf.config.list_physical_devices("GPU")))
        if note:
            say(console, f"warning: {note}")
        if self.options.verbose:
            say(console, self.config.to_yaml())
        if self.placement.resumed is not None:
            at = restored.at if restored else None
            say(console, "resuming from " + (f"epoch {at.epoch + 1}, step {at.step}" if at
                                             else "the start (no checkpoint yet)"))

    # -- callbacks ---------------------------------------------------------------------------
    def build_callbacks(self, restored: Record | None) -> SessionCallbacks:
        """tftrain's callbacks and the caller's, in any order (those that must run after the
        others say so: `after_others`), each stateful one given its restored state."""
        config, pipelines, training = self.config, self.prepared.pipelines, self.config.training
        steps_mode, model = training.steps is not None, self.prepared.model
        spe = pipelines.steps_per_epoch
        self.divergence = DivergenceCallback()
        self.history = HistoryCallback(self.run, spe, steps_mode, config.model.logged_values)
        self.snapshots = SnapshotCallback(self.run, training.checkpoint.monitor, training.checkpoint.mode,
                                          pipelines.validation is not None)
        self.progress = ProgressCallback(self.console, pipelines.epochs, spe, steps_mode, pipelines.validation_steps,
                                         config.data.batch_size)
        self.interrupts.notify = self.progress.notify  # printed above a live bar, not over it
        callbacks = [self.divergence, self.history, self.snapshots, self.progress,
                     TensorBoardCallback(self.run.file(TENSORBOARD), spe, steps_mode, config.model.logged_values,
                                         resumed_at=restored.at if restored else None),
                     MetricAccumulators(self.loop.accumulators, model.distribute_strategy)]
        if training.early_stopping is not None:
            callbacks.append(EarlyStopping(**training.early_stopping.model_dump()))
        if uses_ema(model):
            callbacks.append(EmaValidation())
        if training.unfreeze is not None:
            callbacks.append(Unfreeze(training.unfreeze, config.model.set_stage))
        if self.options.verbose:
            callbacks.append(StepLogCallback(self.console, spe))
        callbacks += tracking_callbacks(self.run, config, self.warn, spe, steps_mode, self.placement.is_chief)
        if training.reduce_lr_on_plateau:
            callbacks.append(ReduceLROnPlateau.from_config(training.reduce_lr_on_plateau))
        self.throughput = ThroughputCallback(config.data.batch_size, None if steps_mode else pipelines.train_examples)
        callbacks += preprocessing_callbacks(self.prepared.plan.spec)  # a typed table's fitted statistics
        callbacks += [self.throughput, *self.prepared.callbacks, *self.options.callbacks]  # a plugin's Stateful ones resume too
        if self.options.shuffle_callbacks is not None:
            random.Random(self.options.shuffle_callbacks).shuffle(callbacks)
        stateful = [callback for callback in callbacks if isinstance(callback, Stateful)]
        for component in stateful:
            if restored is not None and component.state_key in restored.states:
                component.set_state(restored.states[component.state_key])
        saver = ResumeCallback(self.state, stateful, spe, training.checkpoint.every_steps, self.interrupts,
                               restored, self.placement.signal_agreement(model.distribute_strategy))
        return SessionCallbacks([*callbacks, saver], model, pipelines.epochs, spe,
                                resume_at=restored.at if restored else None)

    def warn(self, text: str) -> None:
        """A one-line warning on the session's console."""
        say(self.console, f"warning: {text}")

    # -- loop --------------------------------------------------------------------------------
    def run_loop(self, callbacks: SessionCallbacks, restored: Record | None, started: float) -> None:
        """Train to the end of the run; a signal, a second Ctrl-C or an error is recorded as the
        run's status and raised."""
        pipelines = self.prepared.pipelines
        try:
            if restored is not None and (restored.stopped or restored.at.epoch >= pipelines.epochs):
                self.loop.finish(callbacks)  # killed after the last checkpoint: only the end is left
            else:
                self.loop.run(pipelines, callbacks, restored.at if restored else None)
        except Interrupted as stop:
            self._interrupted(stop)
        except KeyboardInterrupt:
            # A second Ctrl-C: stopped at once, without a fresh checkpoint; the previous one still works.
            self.progress.close()
            self.state.remove_partial()  # a checkpoint it cut short
            self.summary.interrupted("SIGINT")
            raise TrainingInterrupted(
                f"SIGINT again: stopped at once, without a new checkpoint (the previous one still works); "
                f"resume with: {self.placement.resume_command(self.run.path)}", signal.SIGINT,
                run_dir=self.placement.shown_run_dir(self.run)) from None
        except BaseException as exc:
            read_error = self._data_error(exc)
            self.summary.failed(read_error or exc, seconds=time.time() - started)
            if read_error is not None:
                raise read_error from None
            raise
        finally:
            self.progress.close()  # the terminal gets its cursor back, and messages start on a new line

    def _data_error(self, exc: BaseException) -> DataReadError | None:
        """A TensorFlow error that reading the data raised (a corrupt record, an image that does
        not decode), as one line naming the file; None for any other error."""
        explain = self.prepared.pipelines.explain
        if explain is None or not isinstance(exc, tf.errors.OpError):
            return None
        message = explain(exc)
        if message is None:
            return None
        return DataReadError(f"{message}; the run failed, its last checkpoint resumes it once the file is "
                             f"fixed: {self.placement.resume_command(self.run.path)}")

    def _interrupted(self, stop: Interrupted) -> None:
        at = stop.at
        error = self.placement.interrupted(self.run, f"{stop} after step {at.global_step} (epoch {at.epoch + 1}, "
                                           f"step {at.step})", stop.signum, at.global_step,
                                           self.config.training.distribute_timeout)
        self.summary.interrupted(str(stop), seconds=stop.seconds, at=at.describe())
        raise error from None

    # -- finish ------------------------------------------------------------------------------
    def finish(self, restored: Record | None, started: float) -> None:
        """Record the results; save the final model and plots (or report the divergence)."""
        model, console, placement = self.prepared.model, self.console, self.placement
        results = self.results(restored, started)
        fingerprint = placement.fingerprint(model)
        if fingerprint is not None:  # lets anyone check that every worker ended with the same model
            results["distribute"] = {**self.run.summary().get("distribute", {}), "weights_sha256": fingerprint}
        step = self.divergence.diverged_at_step
        if step is not None:
            self.summary.diverged(step, results)
            placement.write_plots(self.run, console)
            raise DivergedError(f"loss became NaN or infinite at step {step}; the last good checkpoint is in "
                                f"{placement.checkpoints_of(self.run)}")
        save_atomically(model, self.run.file(MODEL))
        ended = next((end for c in self.callbacks.callbacks if isinstance(c, EndsRun) and (end := c.run_end())), None)
        if ended is not None:  # a callback ended the run early as something else (a tune trial: pruned)
            self.summary.ended_early(ended[0], results, **ended[1])
        else:
            self.summary.completed(results)
        placement.write_plots(self.run, console)
        steps_mode = self.config.training.steps is not None
        console.print(results_table(results, self.prepared.pipelines.steps_per_epoch if steps_mode else None))
        hint = batch_norm_hint(model, results["final"], self.callbacks.steps_done)
        if hint:
            say(console, hint)
        placement.say_done(console, fingerprint)

    def results(self, restored: Record | None, started: float) -> dict:
        """What summary.json records of a session that trained to its end: epochs, steps, the
        final and best metrics, time and throughput."""
        rows = self.history.rows
        rate = self.throughput.result()
        return {
            "epochs_done": len(rows),
            "steps_done": self.callbacks.steps_done,  # batches; optimizer.iterations counts weight updates
            "final": {k: v for k, v in (rows[-1] if rows else {}).items() if k not in ("epoch", "step")},
            "best": {"monitor": self.snapshots.monitor, "value": self.snapshots.best,
                     "epoch": self.snapshots.best_epoch},
            "seconds": round(time.time() - started + (restored.seconds if restored else 0.0), 3),
            # Training only, first compiled call (tracing) excluded; details in "throughput".
            "examples_per_second": rate["examples_per_second"],
            "throughput": rate,
        }
