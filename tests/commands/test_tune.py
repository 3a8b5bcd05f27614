"""`tftrain tune`: real Optuna on sqlite, trials in real worker processes, tiny synthetic data.

- a 6-trial study with a median pruner: the bad trials are pruned (and keep what they trained),
  the good ones are not; best.yaml, study.json, plots, labels, HParams sessions;
- --jobs 2: two trials at once, in two processes (their start and end times in the storage
  overlap), a diverging trial is recorded as failed, MLflow gets the study and its trials;
- two separate tune processes sharing one storage: unique trial numbers, the study completes;
- kill -9 of the tune process mid-trial, then --resume: the trial goes on from its checkpoint
  and ends bit-identical to a run that was never stopped; nothing lost or counted twice; a
  resume of the finished study starts no worker;
- a pruned run keeps what it trained and resumes exactly (both loops, in this process);
- bad spaces, objectives and storages: one line, exit 2, nothing written.

The kill -9 test used to fail about 1 time in 5 on a loaded machine: the worker got SIGTERM
twice (the kernel sends the parent-death signal once per thread of the dying tune process) and
the second one stopped the trial without its checkpoint. Workers now turn the parent-death
signal into one SIGTERM (tftrain.commands.workers._die_with_parent; tests/distribute/test_workers.py).
It has passed every run since, each beside a full suite run (2 of 2, then 5 of 5), so it is back in
the default run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.kit import TINY, AtStep, assert_identical, hparams_groups, summary, wait_for

LR = "optimizer.learning_rate"
BASE = {
    "name": "lin", "seed": 3, "deterministic": True,
    # 200 points, batch 50: 4 steps an epoch, so the first epoch's loss already tells learning rates apart.
    "data": {"dataset": "synthetic_regression", "batch_size": 50, "options": {"num_examples": 200}},
    "model": {"type": "linear"}, "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "training": {"epochs": 2},
}
# Two good learning rates finish first (the median pruner's start-up trials); then bad ones, which
# are worse than the median after their first epoch, alternate with good ones, which are better.
PRUNING = {
    "objective": {"metric": "loss"}, "space": {LR: {"loguniform": [1.0e-5, 0.5]}}, "sampler": "random",
    "pruner": {"name": "median", "n_startup_trials": 2}, "trials": 6,
    "enqueue": [{LR: lr} for lr in (0.1, 0.2, 1.0e-5, 0.3, 1.0e-4, 0.25)],
}
EXPECTED = {0: "completed", 1: "completed", 2: "pruned", 3: "completed", 4: "pruned", 5: "completed"}


def _env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "KERAS_HOME": str(root / "keras_home")}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _trials(storage: str, name: str):
    import optuna

    return sorted(optuna.load_study(study_name=name, storage=storage).get_trials(), key=lambda t: t.number)


def _invoke(*args):
    from typer.testing import CliRunner

    from tftrain.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def pruned_study(tmp_path_factory):
    """The 6-trial study, run once: (its folder, the CLI result)."""
    root = tmp_path_factory.mktemp("tune")
    config = _write(root / "lin.yaml", {**BASE, "tune": PRUNING})
    result = _invoke("tune", config, "--runs-dir", root / "runs")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip()), result


def test_a_study_prunes_the_bad_trials_and_keeps_the_good_ones(pruned_study):
    folder, result = pruned_study
    study = json.loads((folder / "study.json").read_text())
    assert {t["number"]: t["state"] for t in study["trials"]} == EXPECTED
    assert study["counts"] == {"completed": 4, "running": 0, "waiting": 0, "pruned": 2, "failed": 0}
    for trial in study["trials"]:
        run = Path(trial["run_dir"])
        info = summary(run)
        assert run.parent == folder and run.name.startswith(f"lin-trial-{trial['number']:03d}-")
        assert yaml.safe_load((run / "config.yaml").read_text())["optimizer"]["learning_rate"] == trial["values"][LR]
        assert (run / "model.keras").is_file()  # a pruned trial keeps what it trained
        if trial["state"] == "pruned":
            assert info["status"] == "pruned" and info["epochs_done"] == 1 and trial["epochs"] == 1
            assert info["pruned_at"]["step"] == 1 and info["pruned_at"]["metric"] == "loss"
            assert trial["value"] == pytest.approx(info["pruned_at"]["value"])
        else:
            assert info["status"] == "completed" and info["epochs_done"] == 2 and trial["epochs"] == 2
            history = (run / "history.csv").read_text().splitlines()
            column = history[0].split(",").index("loss")
            assert trial["value"] == pytest.approx(min(float(r.split(",")[column]) for r in history[1:]))
    assert "trial 2 pruned: after epoch 1" in result.stderr and "ranked by loss (minimize)" in result.stderr


def test_a_study_leaves_best_yaml_study_json_and_plots(pruned_study, write_config):
    from tftrain.spec.loading import load_config

    folder, result = pruned_study
    study = json.loads((folder / "study.json").read_text())
    completed = [t for t in study["trials"] if t["state"] == "completed"]
    best = min(completed, key=lambda t: t["value"])
    assert study["best"]["number"] == best["number"] and study["objective"] == {"metric": "loss",
                                                                                "direction": "minimize"}
    config = load_config(folder / "best.yaml")  # ready for tftrain run
    assert config == load_config(Path(best["run_dir"]) / "config.yaml")
    assert config.optimizer.learning_rate == best["values"][LR]
    for name in ("optimization_history", "param_importances", "intermediate_values"):
        assert (folder / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_config(folder / "base.yaml").tune is None
    assert f"best config: {folder / 'best.yaml'}" in result.stderr


def test_trials_are_listed_by_their_values_and_are_hparams_sessions(pruned_study):
    folder, _ = pruned_study
    study = json.loads((folder / "study.json").read_text())
    listed = json.loads(_invoke("runs", folder.parent, "--json").stdout)
    assert {row["label"] for row in listed} == {f"trial {t['number']}: learning_rate={t['values'][LR]:.4g}"
                                                for t in study["trials"]}
    assert {row["status"] for row in listed} == {"completed", "pruned"}
    groups = hparams_groups(folder.parent)
    assert len(groups) == 6
    for trial in study["trials"]:
        group = groups[Path(trial["run_dir"]).name]
        state = {"completed": "complete", "pruned": "pruned"}[trial["state"]]
        assert group["hparams"] == {LR: pytest.approx(trial["values"][LR]), "state": state}
        assert group["status"] == "STATUS_SUCCESS"
        assert group["metrics"][("train", "epoch_loss")] == pytest.approx(
            json.loads((Path(trial["run_dir"]) / "summary.json").read_text())["final"]["loss"], rel=1e-6)
        if trial["state"] == "completed":
            assert group["metrics"][("", "best_loss")] == pytest.approx(trial["value"], rel=1e-6)


def test_jobs_2_runs_trials_at_once_in_two_processes_and_tracks_them_in_mlflow(tmp_path):
    """Both trials are handed out before either ends (their spans in the storage overlap), each in
    its own process; the one that diverges is `failed` and the study goes on. MLflow: the study is
    a run, each trial a child run with its params, per-epoch metrics, status and files."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = {"objective": {"metric": "loss"}, "space": {LR: {"choice": [0.1, 1.0e+30]}}, "sampler": "grid",
            "pruner": "none"}
    config = _write(tmp_path / "lin.yaml", {**BASE, "tracking": {"mlflow": {"uri": uri, "experiment": "search"}},
                                            "tune": spec})
    result = _invoke("tune", config, "--runs-dir", tmp_path / "runs", "--jobs", "2")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    trials = _trials(f"sqlite:///{folder / 'study.db'}", folder.name)
    assert [t.number for t in trials] == [0, 1]
    (first, second) = trials
    assert max(first.datetime_start, second.datetime_start) < min(first.datetime_complete, second.datetime_complete)
    by_lr = {t.params[LR]: t for t in trials}
    assert by_lr[0.1].state.name == "COMPLETE" and by_lr[1.0e30].state.name == "FAIL"
    assert "diverged" in by_lr[1.0e30].user_attrs["error"]
    runs = {lr: folder / t.user_attrs["run_dir"] for lr, t in by_lr.items()}
    pids = {summary(run)["pid"] for run in runs.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    best = yaml.safe_load((folder / "best.yaml").read_text())  # travels: the worker's share is not in it
    assert best["training"]["cpu_threads"] == "auto" and best["data"]["in_memory_max_mb"] == "auto"
    _check_mlflow(uri, folder, runs, by_lr[0.1].value)


def _check_mlflow(uri: str, folder: Path, runs: dict[float, Path], best: float) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("search")
    found = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("tftrain.study") == folder.name]
    children = {r.info.run_name: r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == sorted(run.name for run in runs.values())
    good, bad = children[runs[0.1].name], children[runs[1.0e30].name]
    assert good.info.status == "FINISHED" and bad.info.status == "FAILED"
    assert bad.data.tags["tftrain.status"] == "diverged"
    assert good.data.params[LR] == "0.1" and good.data.params["data.batch_size"] == "50"
    history = (runs[0.1] / "history.csv").read_text().splitlines()
    losses = [float(r.split(",")[history[0].split(",").index("loss")]) for r in history[1:]]
    logged = client.get_metric_history(good.info.run_id, "loss")
    assert [(m.step, m.value) for m in logged] == [(1, pytest.approx(losses[0])), (2, pytest.approx(losses[1]))]
    assert {a.path for a in client.list_artifacts(good.info.run_id)} == {
        "config.yaml", "summary.json", "history.csv", "plots", "model.keras"}
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_loss"] == pytest.approx(best)
    assert {"study.json", "best.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}


@pytest.mark.slow
def test_two_tune_processes_share_one_storage(tmp_path):
    """Started together on one storage: they run one study between them, every trial number once."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    spec = {"objective": {"metric": "loss"}, "space": {LR: {"loguniform": [1.0e-3, 0.5]}}, "sampler": "random",
            "pruner": "none", "trials": 4}
    config = _write(tmp_path / "lin.yaml", {**BASE, "tune": spec})
    command = [sys.executable, "-m", "tftrain", "tune", str(config), "--storage", storage, "--runs-dir", "runs"]
    processes = [subprocess.Popen(command, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert {out.strip() for out, _ in outputs} == {"runs/lin-tune"}
    trials = _trials(storage, "lin-tune")
    assert [t.number for t in trials] == [0, 1, 2, 3] and {t.state.name for t in trials} == {"COMPLETE"}
    runs = sorted(p.name.rsplit("-", 2)[0] for p in (tmp_path / "runs" / "lin-tune").glob("lin-trial-*"))
    assert runs == [f"lin-trial-{n:03d}" for n in range(4)]
    hosts = {f"{socket.gethostname()}-{p.pid}" for p in processes}
    assert {t.user_attrs["owner"] for t in trials} <= hosts  # every trial names the process that ran it
    assert sum("study lin-tune: new" in err for _, err in outputs) == 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_kill_9_of_the_tune_process_mid_trial_then_resume(tmp_path):
    """The tune process is stopped (SIGSTOP) before it answers trial 0's first report, so the trial
    waits at the end of its first epoch; then it is killed (-9). Its worker stops the trial after
    a checkpoint. --resume takes the trial over and resumes it from that checkpoint: it ends
    bit-identical to a run of the same config that was never stopped; then the study goes on."""
    from rich.console import Console

    from tftrain.runs import RunDir
    from tftrain.spec.loading import load_config
    from tftrain.training.callbacks.pruning import PruningCallback
    from tftrain.training.session import run_training

    spec = {"objective": {"metric": "loss"}, "space": {LR: {"choice": [0.1, 0.2]}}, "sampler": "grid",
            "pruner": "none"}
    config = _write(tmp_path / "lin.yaml", {**BASE, "training": {"epochs": 3}, "tune": spec})
    folder = tmp_path / "runs" / "killed"
    tune = subprocess.Popen([sys.executable, "-m", "tftrain", "tune", str(config), "--study", "killed",
                             "--runs-dir", "runs"], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = folder / "logs" / "lin-trial-000.log"
    try:
        wait_for(log.exists, "trial 0 handed to a worker")
        os.kill(tune.pid, signal.SIGSTOP)  # it can answer no report from now on
        wait_for(lambda: "epoch 1/3" in log.read_text(), "trial 0 waiting at the end of epoch 1")
    finally:
        os.kill(tune.pid, signal.SIGKILL)
        tune.wait(60)
    run = wait_for(lambda: RunDir.find(folder, "lin-trial-000"), "trial 0's run directory")
    wait_for(lambda: run.summary().get("status") == "interrupted", "the worker saving trial 0")
    wait_for(lambda: _gone(run.summary()["pid"]), "the worker leaving")
    (trial,) = _trials(f"sqlite:///{folder / 'study.db'}", "killed")
    assert trial.state.name == "RUNNING" and run.summary()["interrupted_at"]["epoch"] == 2

    result = _invoke("tune", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert f"trial 0: resumed exactly from its last checkpoint ({run.path.name})" in result.stderr
    trials = _trials(f"sqlite:///{folder / 'study.db'}", "killed")
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert sorted(trials[0].intermediate_values) == [1, 2, 3]  # epoch 1 reported on resume, not twice
    info = summary(run.path)
    assert info["status"] == "completed" and len(info["resumed"]) == 1 and info["epochs_done"] == 3
    assert len(list(folder.glob("lin-trial-000-*"))) == 1  # resumed in place, not re-run
    baseline = run_training(load_config(run.path / "config.yaml"), tmp_path / "baseline",
                            console=Console(stderr=True, quiet=True),
                            callbacks=[PruningCallback("loss", lambda step, value: False)])
    assert_identical(run.path, baseline.path)

    workers = sorted(p.name for p in (folder / "logs").glob("worker-*.log"))
    again = _invoke("tune", "--resume", folder)  # a finished study: nothing to start, no worker started
    assert again.exit_code == 0, again.output
    assert "study killed: every trial has run; nothing left to do here" in again.stderr
    assert sorted(p.name for p in (folder / "logs").glob("worker-*.log")) == workers
    assert [(t.number, t.state.name) for t in _trials(f"sqlite:///{folder / 'study.db'}", "killed")] == \
        [(0, "COMPLETE"), (1, "COMPLETE")]
    assert json.loads((folder / "study.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_a_pruned_run_keeps_what_it_trained_and_resumes_exactly(tmp_path, loop):
    """Pruned after epoch 3 of 4: `pruned`, with its model, snapshots and history. Stopped by
    SIGTERM in epoch 2 and resumed, it ends bit-identical, pruned at the same epoch."""
    from rich.console import Console

    from tftrain.errors import TrainingInterrupted, UserError
    from tftrain.spec.loading import validate
    from tftrain.training.callbacks.pruning import PruningCallback
    from tftrain.training.session import resume_training, run_training

    config = validate({**TINY, "training": {**TINY["training"], "loop": loop}})
    quiet = Console(stderr=True, quiet=True)
    asked = []

    def prune_at_3(step, value):
        asked.append(step)
        return step >= 3

    base = run_training(config, tmp_path / "base", console=quiet, callbacks=[PruningCallback("val_loss", prune_at_3)])
    info = summary(base.path)
    assert info["status"] == "pruned" and info["epochs_done"] == 3 and info["pruned_at"]["step"] == 3
    assert asked == [1, 2, 3] and (base.path / "model.keras").is_file()
    assert (base.path / "checkpoints" / "best.keras").is_file()
    with pytest.raises(TrainingInterrupted):
        run_training(config, tmp_path / "runs", console=quiet, callbacks=[
            PruningCallback("val_loss", prune_at_3), AtStep(13, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    (run,) = (tmp_path / "runs").iterdir()
    resume_training(run, console=quiet, callbacks=[PruningCallback("val_loss", prune_at_3)])
    assert_identical(run, base.path)
    assert summary(run)["status"] == "pruned" and summary(run)["pruned_at"] == info["pruned_at"]
    with pytest.raises(UserError, match="been pruned"):
        resume_training(run, console=quiet)


BAD_INPUT = [
    # (the tune section, CLI arguments, what the one line says)
    ({"space": {"optimizer.learning_rat": {"uniform": [0.1, 0.2]}}}, [],
     "space: optimizer.learning_rat: unknown parameter 'learning_rat' for optimizer 'sgd' — did you mean 'learning_rate'?"),
    ({"space": {"model.w_int": {"uniform": [0.1, 0.2]}}}, [],
     "space: model.w_int: unknown key 'w_int' in 'model' — did you mean 'w_init'?"),
    ({"space": {"trainig.epochs": {"choice": [1, 2]}}}, [], "unknown key 'trainig' — did you mean 'training'?"),
    ({"space": {"data.batch_size": {"choice": [32, 0]}}}, [],
     "space: data.batch_size: choice 0: data.batch_size: expected a positive integer, got 0"),
    ({"space": {"data.batch_size": {"int": [1, 10]}, "data.validation": {"uniform": [0.1, 1.5]}}}, [],
     "space: data.validation: uniform high 1.5: data.validation: expected 'test', 'none' or a fraction"),
    ({"space": {LR: {"uniform": [0.5, 0.1]}}}, [], "space: optimizer.learning_rate: uniform low 0.5 >= high 0.1"),
    ({"space": {LR: {"loguniform": [0.0, 0.1]}}}, [], "loguniform [0.0, 0.1] touches 0"),
    ({"space": {"model.w_init": {"choice": []}}}, [], "space: model.w_init: choice expects a non-empty list"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}, "objective": {"metric": "los"}}, [],
     "objective.metric: the runs will not log \"los\" — did you mean 'loss'?"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}, "objective": {"metric": "val_loss"}}, [],
     "this config has no validation data"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}, "sampler": "grid"}, [], "the grid sampler needs a choice list"),
    ({"space": {LR: {"choice": [0.1, 0.2, 0.3]}}, "sampler": "grid"}, ["--max-members", "2"],
     "space: 3 members (3 optimizer.learning_rate), more than --max-members 2"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}}, ["--storage", "postgres//nowhere"], "not a storage URL"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}}, ["--storage", "oracle://me@db/x"], "unknown database 'oracle'"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}}, ["--storage", "sqlite:///{tmp}/missing/study.db"],
     "missing does not exist"),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}}, ["--storage", "postgresql://me:secret@127.0.0.1:1/x"],
     "--storage postgresql://me:***@127.0.0.1:1/x: "),
    ({"space": {LR: {"uniform": [0.1, 0.2]}}}, ["--jobs", "0"], "--jobs: expected a positive number"),
    (None, [], "nothing to search: give --space FILE or a tune: section"),
]


@pytest.mark.parametrize("spec, args, expected", BAD_INPUT, ids=[e for _, _, e in BAD_INPUT])
def test_bad_searches_are_one_line_exit_2_before_any_trial(tmp_path, spec, args, expected):
    config = _write(tmp_path / "lin.yaml", {**BASE, **({"tune": spec} if spec else {})})
    result = _invoke("tune", config, "--runs-dir", tmp_path / "runs", *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert "secret" not in result.output and not (tmp_path / "runs").exists()


def test_a_space_file_and_its_problems(tmp_path):
    config = _write(tmp_path / "lin.yaml", BASE)
    space = _write(tmp_path / "space.yaml", {"space": {LR: {"loguniform": [1.0e-3, 0.5]}}, "trials": 0})
    result = _invoke("tune", config, "--space", space, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and f"error: {space}: trials: expected a positive integer, got 0" in result.stderr
    result = _invoke("tune", config, "--space", tmp_path / "nope.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "nope.yaml: no such space file" in result.stderr
    result = _invoke("tune", "--resume", tmp_path)
    assert result.exit_code == 2 and "not a tune study folder" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_spec_reads_durations_options_and_choice_lists():
    """TF-free: the spec's shapes, and list choices through Optuna and back."""
    import optuna

    from tftrain.commands.study import from_optuna, suggest_values, to_optuna
    from tftrain.labels import label, name_part
    from tftrain.spec.tune import parse_duration, read_spec

    assert [parse_duration(t) for t in ("2h", "30m", "1h30m", "45s", 90)] == [7200, 1800, 5400, 45, 90]
    spec = read_spec({"space": {"model.hidden": {"choice": [[64], [128, 64]]}, LR: {"loguniform": [1e-4, 0.1]}},
                      "sampler": {"name": "tpe", "n_startup_trials": 2}, "timeout": "1h",
                      "enqueue": [{"model.hidden": [128, 64]}]}, "spec")
    assert spec.sampler.options == {"n_startup_trials": 2, "multivariate": False, "constant_liar": True}
    assert spec.pruner.name == "median" and spec.pruner.options["n_startup_trials"] == 5
    assert spec.timeout_seconds() == 3600 and spec.trials == 20
    hidden, lr = spec.dimensions()
    assert to_optuna(hidden, [128, 64]) == "[128, 64]"  # Optuna stores scalars only
    study = optuna.create_study()
    study.enqueue_trial({"model.hidden": to_optuna(hidden, [128, 64])})
    values = suggest_values(study.ask(), [hidden, lr])
    assert values["model.hidden"] == [128, 64] and 1e-4 <= values[LR] <= 0.1
    assert from_optuna([hidden, lr], {"model.hidden": "[128, 64]", LR: 0.01}) == {"model.hidden": [128, 64], LR: 0.01}
    assert label(values | {LR: 0.012345}) == "hidden=[128, 64] learning_rate=0.01235"
    assert name_part({"model.hidden": [128, 64], "data.path": "/data/x/points.npz"}) == "hidden-128_64_path-points.npz"
