"""`tracking: {mlflow: ...}`: a run logged to a real local MLflow store (sqlite), read back with
MlflowClient; a resumed run continues its MLflow run; without the extra, one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.kit import TINY, AtStep


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(uri)


def test_a_run_is_tracked_in_mlflow_and_its_resume_continues_the_same_mlflow_run(tmp_path):
    """Stopped by SIGTERM in epoch 2: the MLflow run is KILLED with epoch 1's metrics; resumed, the
    same MLflow run gets epochs 2-4 (each step once), FINISHED, with the run's files."""
    from rich.console import Console

    from tftrain.errors import TrainingInterrupted
    from tftrain.spec.loading import validate
    from tftrain.training.session import resume_training, run_training

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = validate({**TINY, "training": {**TINY["training"], "loop": "custom"},
                       "tracking": {"mlflow": {"uri": uri, "experiment": "tiny"}}})
    quiet = Console(stderr=True, quiet=True)
    with pytest.raises(TrainingInterrupted):
        run_training(config, tmp_path / "runs", console=quiet,
                     callbacks=[AtStep(13, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    (run,) = (tmp_path / "runs").iterdir()
    run_id = json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"]
    client = _client(uri)
    stopped = client.get_run(run_id)
    assert stopped.info.status == "KILLED" and stopped.data.tags["tftrain.status"] == "interrupted"
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1]

    resume_training(run, console=quiet)
    experiment = client.get_experiment_by_name("tiny")
    (tracked,) = client.search_runs([experiment.experiment_id])
    assert tracked.info.run_id == run_id and tracked.info.run_name == run.name
    assert tracked.info.status == "FINISHED" and tracked.data.tags["tftrain.status"] == "completed"
    history = (run / "history.csv").read_text().splitlines()
    columns = history[0].split(",")
    for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
        logged = [(m.step, m.value) for m in client.get_metric_history(run_id, metric)]
        expected = [(int(row.split(",")[0]), float(row.split(",")[columns.index(metric)])) for row in history[1:]]
        assert [step for step, _ in logged] == [1, 2, 3, 4]
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected])
    params = tracked.data.params
    assert params["training.loop"] == "custom" and params["model.hidden"] == "[8]"
    assert params["optimizer.learning_rate"] == "0.01" and params["data.options.num_examples"] == "48"
    assert not any(key.startswith("tune") for key in params)
    assert {a.path for a in client.list_artifacts(run_id)} == {
        "config.yaml", "summary.json", "history.csv", "plots", "model.keras"}
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {"plots/loss.png", "plots/accuracy.png"}
    import mlflow

    summary = json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="summary.json", tracking_uri=uri, dst_path=str(tmp_path / "dl"))).read())
    assert summary["status"] == "completed" and summary["epochs_done"] == 4


# Starts tftrain as a Python where MLflow (or Optuna) cannot be imported.
_WITHOUT = "import sys\nsys.modules[sys.argv[1]] = None\nfrom tftrain.cli import main\nmain(sys.argv[2:])"


@pytest.mark.parametrize("missing, command, expected", [
    ("mlflow", "run", "error: tracking.mlflow: MLflow is not installed; pip install 'tftrain[mlflow]'"),
    ("mlflow", "tune", "error: tracking.mlflow: MLflow is not installed; pip install 'tftrain[mlflow]'"),
    ("optuna", "tune", "error: tftrain tune needs Optuna: pip install 'tftrain[tune]'"),
])
def test_without_the_extra_one_line_says_what_to_install(tmp_path, missing, command, expected):
    config = tmp_path / "c.yaml"
    tracking = {"tracking": {"mlflow": {"uri": f"sqlite:///{tmp_path / 'm.db'}"}}} if missing == "mlflow" else {}
    config.write_text(yaml.safe_dump({
        "data": {"dataset": "synthetic_regression"}, "model": {"type": "linear"}, "loss": "mse", **tracking,
        "tune": {"space": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}}}))
    done = subprocess.run([sys.executable, "-c", _WITHOUT, missing, command, str(config), "--runs-dir",
                           str(tmp_path / "runs")], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == expected
    assert not (tmp_path / "runs").exists()


def test_a_file_store_uri_is_refused_with_what_to_use(cli, write_config):
    path = write_config({"data": {"dataset": "synthetic_regression"}, "model": {"type": "linear"}, "loss": "mse",
                         "tracking": {"mlflow": {"uri": "./mlruns"}}})
    result = cli("validate", path)
    assert result.exit_code == 2
    assert "tracking.mlflow.uri: MLflow 3 refuses a file store" in result.stderr and "sqlite:///" in result.stderr
