"""`tracking: {mlflow: ...}`: the run, logged to MLflow as it trains (tftrain.tracking).

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

from tftrain.runs import CONFIG, HISTORY, MODEL, PLOTS, SUMMARY, TRACKING, RunDir, atomic_write
from tftrain.spec.schema import Config
from tftrain.tracking import MlflowRun, flat_params, mlflow_settings
from tftrain.training.callbacks.progress import ordered_logs
from tftrain.training.schedules import learning_rate_used


def tracking_callbacks(run: RunDir, config: Config, warn: Callable[[str], None], steps_per_epoch: int,
                       steps_mode: bool, chief: bool) -> list[keras.callbacks.Callback]:
    """The trackers `config.tracking` names (none on a multi_worker worker other than the chief,
    which trains into a scratch folder)."""
    settings = mlflow_settings(config)
    if settings is None or not chief:
        return []
    return [MlflowCallback(run, config, warn, steps_per_epoch, steps_mode)]


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
        try:
            recorded = json.loads(self.run.file(TRACKING).read_text())["mlflow"]
        except (FileNotFoundError, KeyError, json.JSONDecodeError):
            recorded = None
        if recorded is not None:  # a resumed run: the same MLflow run goes on
            self.mlflow = MlflowRun.reopen(self.settings, recorded["run_id"], recorded["experiment_id"])
            return
        self.mlflow = MlflowRun.start(self.settings, experiment, self.run.path.name,
                                      tags={"tftrain.run_dir": str(self.run.path.resolve())})
        atomic_write(self.run.file(TRACKING), json.dumps({"mlflow": {
            "run_id": self.mlflow.run_id, "experiment_id": self.mlflow.experiment_id,
            "uri": self.mlflow.client.tracking_uri}}, indent=2) + "\n")
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
