"""`tracking: {mlflow: ..., wandb: ...}`: the run, logged to MLflow (tftrain.tracking) and to
Weights & Biases (tftrain.tracking_wandb) as it trains.

A new run starts an MLflow run and records its id in the run directory (tracking.json), so a
resumed run continues the same MLflow run, also one killed before its first checkpoint. Metrics
are stepped as TensorBoard's epoch scalars are: by epoch number (1-based), or in steps mode by
the global step at the end of each log interval. The status and the files (config, summary,
history, plots, model) are logged when the session has written them (`on_run_end`).

A tracking problem (server down, database locked) is a warning, never a lost run: the run
directory has everything, and tracking stops for the rest of the session.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import keras

from tftrain import tracking_wandb
from tftrain.runs import CONFIG, HISTORY, MODEL, PLOTS, SUMMARY, TRACKING, RunDir, atomic_write
from tftrain.spec.schema import Config
from tftrain.tracking import MlflowRun, flat_params, mlflow_settings
from tftrain.tracking_wandb import wandb_settings
from tftrain.training.callbacks.progress import ordered_logs
from tftrain.training.schedules import learning_rate_used


def tracking_callbacks(run: RunDir, config: Config, warn: Callable[[str], None], steps_per_epoch: int,
                       steps_mode: bool, chief: bool) -> list[keras.callbacks.Callback]:
    """The trackers `config.tracking` names (none on a multi_worker worker other than the chief,
    which trains into a scratch folder)."""
    if not chief:
        return []
    found: list[keras.callbacks.Callback] = []
    if mlflow_settings(config) is not None:
        found.append(MlflowCallback(run, config, warn, steps_per_epoch, steps_mode))
    if wandb_settings(config) is not None:
        found.append(WandbCallback(run, config, warn, steps_per_epoch, steps_mode))
    return found


def _recorded(run: RunDir, tracker: str) -> dict | None:
    """What tracking.json says of `tracker`'s run (None: nothing yet)."""
    try:
        return json.loads(run.file(TRACKING).read_text())[tracker]
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        return None


def _record(run: RunDir, tracker: str, facts: dict) -> None:
    """Add `tracker`'s run to tracking.json, keeping the other trackers' entries."""
    try:
        kept = json.loads(run.file(TRACKING).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        kept = {}
    atomic_write(run.file(TRACKING), json.dumps({**kept, tracker: facts}, indent=2) + "\n")


class MlflowCallback(keras.callbacks.Callback):
    """Params at the start of a new run, metrics every epoch, status and artifacts at the end."""

    def __init__(self, run: RunDir, config: Config, warn: Callable[[str], None], steps_per_epoch: int,
                 steps_mode: bool):
        super().__init__()
        self.run, self.config, self.warn = run, config, warn
        self.settings = mlflow_settings(config)
        self.steps_per_epoch, self.steps_mode = steps_per_epoch, steps_mode
        self.mlflow: MlflowRun | None = None
        self._epoch, self._steps_done = 0, 0  # which step's learning rate an epoch's row gets

    def _safely(self, action: Callable[[], None], what: str) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (tracking never costs the run)
            self.warn(f"mlflow: {what} failed, not tracking this run any further "
                      f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})")
            self.mlflow = None

    def on_train_begin(self, logs=None):
        self._safely(self._open, f"starting a run at {self.settings.uri or 'the default tracking URI'}")

    def _open(self) -> None:
        experiment = self.settings.experiment or self.config.name or "tftrain"
        recorded = _recorded(self.run, "mlflow")
        if recorded is not None:  # a resumed run: the same MLflow run goes on
            self.mlflow = MlflowRun.reopen(self.settings, recorded["run_id"], recorded["experiment_id"])
            return
        self.mlflow = MlflowRun.start(self.settings, experiment, self.run.path.name,
                                      tags={"tftrain.run_dir": str(self.run.path.resolve())})
        _record(self.run, "mlflow", {"run_id": self.mlflow.run_id, "experiment_id": self.mlflow.experiment_id,
                                     "uri": self.mlflow.client.tracking_uri})
        self.mlflow.log_params(flat_params(self.config))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self._epoch * self.steps_per_epoch + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        if self.mlflow is None:
            return
        step = (epoch + 1) * self.steps_per_epoch if self.steps_mode else epoch + 1
        metrics = {**ordered_logs(logs), "lr": learning_rate_used(self.model, self._steps_done),
                   **self.config.model.logged_values(self.model)}  # w and b of a linear model
        mlflow = self.mlflow
        self._safely(lambda: mlflow.log_metrics(metrics, step), "logging metrics")

    def on_run_end(self, run: RunDir, status: str) -> None:
        """The session has written its files and its final status: log both, end the MLflow run."""
        if self.mlflow is None:
            return
        files = [run.file(name) for name in (CONFIG, SUMMARY, HISTORY, PLOTS)]
        if self.settings.log_model:
            files.append(run.file(MODEL))
        mlflow = self.mlflow
        self._safely(lambda: (mlflow.log_files(files), mlflow.end(status)), "logging the run's files")


class WandbCallback(keras.callbacks.Callback):
    """A W&B run: opened (or continued) at the start, metrics every epoch, the model as an
    artifact and the status at the end. Like MLflow's, a W&B problem is a warning, never a lost run."""

    def __init__(self, run: RunDir, config: Config, warn: Callable[[str], None], steps_per_epoch: int,
                 steps_mode: bool):
        super().__init__()
        self.run, self.config, self.warn = run, config, warn
        self.settings = wandb_settings(config)
        self.steps_per_epoch, self.steps_mode = steps_per_epoch, steps_mode
        self.wandb = None  # the W&B run while it is tracked
        self._epoch, self._steps_done = 0, 0

    def _safely(self, action: Callable[[], None], what: str) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (tracking never costs the run)
            self.warn(f"wandb: {what} failed, not tracking this run any further "
                      f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})")
            self.wandb = None

    def on_train_begin(self, logs=None):
        self._safely(self._open, f"starting the W&B run ({self.settings.mode})")

    def _open(self) -> None:
        recorded = _recorded(self.run, "wandb")
        run_id = recorded["id"] if recorded else None
        self.wandb = tracking_wandb.start(self.settings, self.config, run_id, self.run.path.name, self.run.path)
        if recorded is None:
            _record(self.run, "wandb", {"id": self.wandb.id, "project": self.wandb.project, "mode": self.settings.mode})

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self._epoch * self.steps_per_epoch + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        if self.wandb is None:
            return
        step = (epoch + 1) * self.steps_per_epoch if self.steps_mode else epoch + 1
        metrics = {**ordered_logs(logs), "lr": learning_rate_used(self.model, self._steps_done),
                   **self.config.model.logged_values(self.model)}
        run = self.wandb
        self._safely(lambda: run.log(metrics, step=step), "logging metrics")

    def on_run_end(self, run: RunDir, status: str) -> None:
        """The session has written its files and final status: the model, the status, the end."""
        if self.wandb is None:
            return
        wandb_run, model = self.wandb, run.file(MODEL)

        def end():
            if self.settings.log_model and model.is_file() and status in ("completed", "pruned"):
                tracking_wandb.log_model(wandb_run, model, run.path.name)
            tracking_wandb.finish(wandb_run, status)

        self._safely(end, "logging the model and status")
