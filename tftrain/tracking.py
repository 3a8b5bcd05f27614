"""MLflow, the optional experiment tracker (`pip install 'tftrain[mlflow]'`): one MLflow run per
tftrain run (or tune study), written through `MlflowClient` only, so nothing depends on MLflow's
process-wide "active run" and runs in one process (a sweep) never mix.

    tracking: {mlflow: {uri: sqlite:///mlflow.db, experiment: mnist}}

What a run logs: its flattened config as params, every epoch's (or log interval's) metrics with
their step, its status, and config.yaml, summary.json, history.csv, plots/ and model.keras as
artifacts (tftrain.training.callbacks.tracking). No TensorFlow here: the tune process, which
never imports it, opens the study's MLflow run with the same code.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tftrain.errors import UserError

if TYPE_CHECKING:
    from tftrain.spec.schema import Config, MlflowTracking

INSTALL = "pip install 'tftrain[mlflow]'"
MAX_PARAM_VALUE = 6000  # MLflow truncates longer values, with a warning per value
PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch call
# tftrain's statuses as MLflow's (RUNNING, FINISHED, FAILED, KILLED); `tftrain.status` keeps ours.
STATUS = {"completed": "FINISHED", "pruned": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
          "interrupted": "KILLED"}


def mlflow_settings(config: Config) -> MlflowTracking | None:
    """The config's MLflow settings, or None when it does not track to MLflow."""
    return config.tracking.mlflow if config.tracking is not None else None


def check_tracking(config: Config) -> None:
    """Bad input before anything is written: a config that tracks to MLflow or W&B where it is
    not installed."""
    if mlflow_settings(config) is not None and importlib.util.find_spec("mlflow") is None:
        raise UserError(f"tracking.mlflow: MLflow is not installed; {INSTALL}")
    if config.tracking is not None and config.tracking.wandb is not None and importlib.util.find_spec("wandb") is None:
        raise UserError("tracking.wandb: Weights & Biases is not installed; pip install 'tftrain[wandb]'")


def client(settings: MlflowTracking):
    """An MlflowClient for `settings.uri` (None: MLFLOW_TRACKING_URI, else MLflow's default)."""
    # MLflow 3 reports usage over the network unless told not to (read when it is imported);
    # a user who wants it sends it by setting MLFLOW_DISABLE_TELEMETRY=false.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." and the like
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.uri)


def experiment_id(mlflow_client, name: str) -> str:
    """The id of experiment `name`, made if needed; artifacts of a sqlite store go beside its file
    (MLflow's default is ./mlruns under whatever folder the process runs in)."""
    from mlflow.exceptions import MlflowException

    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    uri = mlflow_client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another process made it meanwhile
        return mlflow_client.get_experiment_by_name(name).experiment_id


def param_text(value: Any) -> str:
    """A param as MLflow shows it: the YAML the config holds (0.001, [64, 32], null)."""
    from tftrain.spec.tune import yaml_text

    text = value if isinstance(value, str) else yaml_text(value)
    return text[:MAX_PARAM_VALUE]


def flat_params(config: Config) -> dict[str, str]:
    """The resolved config as `section.key` params (the tune section is the study's, not the run's)."""
    from tftrain.labels import flatten

    data = config.model_dump(mode="json", exclude={"tune"})
    return {key: param_text(value) for key, value in flatten(data).items()}


@dataclass
class MlflowRun:
    """One MLflow run, written through the client."""

    client: Any
    run_id: str
    experiment_id: str

    @classmethod
    def start(cls, settings: MlflowTracking, experiment: str, run_name: str,
              tags: dict[str, str] | None = None) -> MlflowRun:
        """A new MLflow run in `experiment`, nested under `settings.parent_run_id` if set."""
        mlflow_client = client(settings)
        exp_id = experiment_id(mlflow_client, experiment)
        tags = dict(tags or {})
        if settings.parent_run_id:
            tags["mlflow.parentRunId"] = settings.parent_run_id
        run = mlflow_client.create_run(exp_id, run_name=run_name, tags=tags)
        return cls(mlflow_client, run.info.run_id, exp_id)

    @classmethod
    def reopen(cls, settings: MlflowTracking, run_id: str, experiment: str) -> MlflowRun:
        """Continue an MLflow run (a resumed tftrain run or study)."""
        mlflow_client = client(settings)
        mlflow_client.update_run(run_id, status="RUNNING")
        return cls(mlflow_client, run_id, experiment)

    def log_params(self, params: dict[str, str]) -> None:
        """Params, in batches of MLflow's size."""
        from mlflow.entities import Param

        items = [Param(key[:250], value) for key, value in params.items()]
        for start in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + PARAMS_PER_BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Metrics at `step`, in one call."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_tags(self, tags: dict[str, str]) -> None:
        """Tags, in one call."""
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_files(self, paths: list[Path], artifact_path: str | None = None) -> None:
        """Files and folders (their contents) as artifacts; missing ones are skipped."""
        for path in paths:
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def end(self, status: str) -> None:
        """Mark the run ended with tftrain's `status` (kept as the tag tftrain.status)."""
        self.set_tags({"tftrain.status": status})
        self.client.set_terminated(self.run_id, status=STATUS.get(status, "FAILED"))
