"""`tftrain run --launcher ray|slurm`: the flags and configs a launch refuses (one line, exit 2,
nothing written), SLURM's environment turned into the cluster by TensorFlow's resolver, and
(slow) real launches on 127.0.0.1 that must end bit for bit where the same config launched by
hand with `--workers H:P,H:P --worker-index I` ends: two Ray workers, two Ray workers of which
one is SIGKILLed mid-epoch (Ray restarts the group, tftrain resumes the run), and two tasks
driven by the variables `srun` sets.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from pathlib import Path

import pytest
import yaml

from tests.kit import MID_EPOCH_KILLS, TINY, Child, KillWorkerOnce, assert_identical, child_env, summary, wait_for

MULTI_WORKER = {**TINY, "training": {**TINY["training"], "distribute": "multi_worker"}}
RUN_TIMEOUT = 600  # a hang guard only: Ray and two TensorFlow workers on a loaded 2-core machine take minutes
_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))


def _config(root: Path, content: dict = MULTI_WORKER) -> Path:
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--launcher", "ray"], "--launcher ray needs --workers N (how many workers Ray places)"),
    (["--launcher", "ray", "--workers", "0"], "--workers: expected the number of workers (1 or more), got '0'"),
    (["--launcher", "ray", "--workers", "127.0.0.1:2222,127.0.0.1:2223"],
     "--workers: with --launcher ray it is the number of workers (Ray picks their addresses), got the address "
     "list '127.0.0.1:2222,127.0.0.1:2223'"),
    (["--launcher", "slurm", "--workers", "127.0.0.1:2222,127.0.0.1:2223"],
     "--workers: not with --launcher slurm (SLURM places the workers: srun --ntasks N starts N, one per task)"),
    (["--launcher", "ray", "--workers", "2", "--worker-index", "0"],
     "--worker-index: not with --launcher ray (the launcher gives every worker its index)"),
    (["--launcher", "ray", "--workers", "2", "--max-failures", "-2"],
     "--max-failures: expected 0 or more (-1: restart without limit), got -2"),
    (["--launcher", "ray", "--workers", "2", "--address", "127.0.0.1"], "--address: expected host:port, got '127.0.0.1'"),
    (["--launcher", "k8s"], "--launcher: expected one of ray, slurm, got 'k8s'"),
    (["--address", "127.0.0.1:6379"], "--address: only used with --launcher ray"),
    (["--launcher", "ray", "--workers", "2", "--smoke"],
     "--smoke: runs on this machine alone, so not with --launcher ray"),
    (["--launcher", "ray", "--workers", "2", "--set", "training.distribute=none"],
     "--launcher ray: starts the workers of a training.distribute: multi_worker run, and this config says none; "
     "set training.distribute: multi_worker (or --set training.distribute=multi_worker)"),
    (["--launcher", "slurm", "--set", "training.distribute=mirrored"],
     "--launcher slurm: starts the workers of a training.distribute: multi_worker run, and this config says "
     "mirrored"),
])
def test_launch_flags_that_are_refused(args, message, cli, tmp_path):
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_slurm_launcher_outside_a_job_step_names_the_missing_variables(cli, tmp_path, monkeypatch):
    for name in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")  # set by hand: the others are still missing
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "slurm")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "error: --launcher slurm: not inside a SLURM job step (SLURM_STEP_NUM_TASKS, SLURM_STEP_NODELIST, "
        "SLURM_STEP_TASKS_PER_NODE are not set); start tftrain with srun, inside sbatch or salloc, one task per worker")
    assert not (tmp_path / "runs").exists() and "TF_CONFIG" not in os.environ


def test_ray_address_where_no_cluster_answers(cli, tmp_path):
    """A port nobody listens on: refused at once, within the stated timeout in any case."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--workers", "2",
                 "--address", f"127.0.0.1:{port}")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: --address 127.0.0.1:{port}: no Ray cluster answers there (no connection within 10s: Connection "
        f"refused); start one with: ray start --head --port {port}, or leave --address out to start a local Ray "
        "instance")
    assert not (tmp_path / "runs").exists()


def test_ray_missing_is_one_line(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives `import ray`
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--workers", "2")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: --launcher ray: Ray is not installed; pip install 'tftrain[ray]'"


@pytest.mark.parametrize("launcher", [["--launcher", "ray", "--workers", "2"], ["--launcher", "slurm"]])
def test_launch_refuses_to_resume_a_completed_run(launcher, cli, tmp_path):
    from tftrain.runs import CONFIG, RunDir, RunSummary

    run = RunDir.create(tmp_path / "runs", "tiny")
    run.write_text(CONFIG, _config(tmp_path).read_text())
    RunSummary(run).started(seed=7)
    RunSummary(run).completed({})
    before = {p: p.read_bytes() for p in run.path.iterdir()}
    result = cli("run", "--resume", run.path, *launcher)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {run.path}: the run has completed; there is nothing to resume"
    assert {p: p.read_bytes() for p in run.path.iterdir()} == before


def test_launcher_block_counts_restarts_of_one_launch(tmp_path):
    """summary.json's launcher block: the first group of a launch is restart 0, each later group
    one more; a run's start keeps it; another launch counts from 0 again."""
    from tftrain.runs import RunDir, RunSummary

    run = RunDir(tmp_path)
    RunSummary(run).launched("ray", "a", ["h:1", "h:2"])
    RunSummary(run).started(seed=1)
    assert summary(tmp_path)["status"] == "running" and summary(tmp_path)["launcher"]["restarts"] == 0
    RunSummary(run).launched("ray", "a", ["h:3", "h:4"])
    launcher = summary(tmp_path)["launcher"]
    assert (launcher["restarts"], launcher["workers"], summary(tmp_path)["seed"]) == (1, ["h:3", "h:4"], 1)
    RunSummary(run).launched("slurm", "b", ["n:1"])
    assert summary(tmp_path)["launcher"]["restarts"] == 0


# -- SLURM's environment -------------------------------------------------------------------------


def _srun_env(index: int, tasks: int, nodes: str, tasks_per_node: str, ports: str | None = None) -> dict[str, str]:
    """What srun sets in task `index` of a step (the variables the resolver reads, and others)."""
    env = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_PROCID": str(index), "SLURM_NTASKS": str(tasks),
           "SLURM_STEP_NUM_TASKS": str(tasks), "SLURM_STEP_NODELIST": nodes, "SLURM_JOB_NODELIST": nodes,
           "SLURM_STEP_TASKS_PER_NODE": tasks_per_node, "SLURM_TASKS_PER_NODE": tasks_per_node}
    if ports is not None:
        env["SLURM_STEP_RESV_PORTS"] = ports
    return env


@pytest.mark.parametrize(("nodes", "per_node", "ports", "workers"), [
    ("node[01-02]", "1(x2)", None, "node01:8888,node02:8888"),  # TensorFlow's port_base
    ("node07", "2", "12300-12301", "node07:12300,node07:12301"),  # srun --resv-ports
])
def test_slurm_environment_of_two_tasks_becomes_the_cluster(nodes, per_node, ports, workers, monkeypatch):
    from tftrain.training.launchers.slurm import slurm_cluster

    for index in (0, 1):
        for name, value in _srun_env(index, 2, nodes, per_node, ports).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        assert slurm_cluster() == (workers, index)
        assert "CUDA_VISIBLE_DEVICES" not in os.environ  # SLURM binds GPUs itself


# -- real launches (slow) -------------------------------------------------------------------------


def _free_port_pair() -> int:
    """p such that p and p + 1 are both free on 127.0.0.1 (a SLURM reserved range of two)."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two consecutive free ports")


@pytest.fixture(scope="module")
def by_hand(tmp_path_factory):
    """The reference: the config launched by hand as two workers on 127.0.0.1; its run dir."""
    root = tmp_path_factory.mktemp("by_hand")
    config = _config(root)
    port = _free_port_pair()
    workers = f"127.0.0.1:{port},127.0.0.1:{port + 1}"
    children = [Child(["run", str(config), "--runs-dir", "runs" if index == 0 else "worker-runs", "--workers", workers,
                       "--worker-index", str(index)], root, child_env(root)) for index in (0, 1)]
    for child in children:
        assert child.wait(RUN_TIMEOUT) == 0, child
    return children[0].run_dir(root)


def _ray_processes_left(marker: str) -> list[int]:
    """Processes (other than this one) whose environment carries `marker`: what the launch started."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                left.append(int(entry.name))
        except OSError:
            continue
    return left


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    """This process's environment as a launch's Ray processes inherit it: the children's settings
    (thread count, this checkout) and a marker to find them by afterwards."""
    for name in ("PYTHONPATH", "KERAS_HOME", "TF_NUM_INTRAOP_THREADS"):
        monkeypatch.setenv(name, child_env(tmp_path)[name])
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    marker = f"TFTRAIN_TEST_RAY={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    yield marker
    wait_for(lambda: not _ray_processes_left(marker), "every Ray process of the launch to end", timeout=120)


def _launched_run(result, runs_dir: Path) -> Path:
    """The one run directory the launch made, which it printed (on a line of its own, among the
    lines Ray relays from the workers)."""
    assert result.exit_code == 0, result.output[-5000:]
    [run] = runs_dir.iterdir()
    assert str(run.absolute()) in result.output.splitlines()
    return run


@pytest.mark.slow
def test_two_ray_workers_train_what_two_workers_started_by_hand_train(cli, tmp_path, by_hand, ray_env):
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--workers", "2")
    run = _launched_run(result, tmp_path / "runs")
    launched = summary(run)
    assert launched["status"] == "completed" and launched["distribute"]["workers"] == 2
    assert launched["launcher"]["name"] == "ray" and launched["launcher"]["restarts"] == 0
    assert len(launched["launcher"]["workers"]) == 2 and "resumed" not in launched
    assert launched["distribute"]["weights_sha256"] == summary(by_hand)["distribute"]["weights_sha256"]
    assert_identical(run, by_hand)


@pytest.mark.slow
def test_ray_restarts_a_group_whose_worker_was_killed_and_the_run_resumes_exactly(cli, tmp_path, by_hand, ray_env):
    at = _RNG.choice([k for k in MID_EPOCH_KILLS if k > 4])  # a checkpoint (every 4 steps) before the kill
    marker = tmp_path / "killed"
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--workers", "2",
                 "--max-failures", "1", callbacks=[KillWorkerOnce(at, 1, str(marker))])
    run = _launched_run(result, tmp_path / "runs")
    assert marker.exists(), "worker 1 was never killed"
    launched = summary(run)
    assert launched["status"] == "completed" and launched["launcher"]["restarts"] == 1
    assert len(launched["resumed"]) == 1 and 0 < launched["resumed"][0]["step"] < at, launched["resumed"]
    assert_identical(run, by_hand)


@pytest.mark.slow
def test_two_slurm_tasks_on_127_0_0_1_train_what_two_workers_started_by_hand_train(tmp_path, by_hand):
    """The variables srun sets for a step of 2 tasks on one node (named 127.0.0.1), with a
    reserved port range: each task runs `tftrain run --launcher slurm`."""
    config, port = _config(tmp_path), _free_port_pair()
    tasks = [Child(["run", str(config), "--runs-dir", "runs", "--launcher", "slurm"], tmp_path,
                   {**child_env(tmp_path), **_srun_env(index, 2, "127.0.0.1", "2", f"{port}-{port + 1}")})
             for index in (0, 1)]
    for task in tasks:
        assert task.wait(RUN_TIMEOUT) == 0, task
    run = tasks[0].run_dir(tmp_path)
    assert tasks[0].stdout.strip() == str(run.relative_to(tmp_path)) and tasks[1].stdout == ""
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]
    assert summary(run)["distribute"]["workers"] == 2
    assert_identical(run, by_hand)


@pytest.mark.slow
def test_ray_launch_whose_restarts_are_used_up_fails_in_one_line_and_keeps_the_run(cli, tmp_path, ray_env):
    """--max-failures 0 and a worker SIGKILLed after step 6: the launch ends with exit 1 and one
    line saying how to resume the run, which keeps its checkpoints."""
    marker = tmp_path / "killed"
    result = cli("run", _config(tmp_path), "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--workers", "2",
                 callbacks=[KillWorkerOnce(6, 1, str(marker))])
    assert result.exit_code == 1, result.output[-5000:]
    [run] = (tmp_path / "runs").iterdir()
    [line] = [x for x in result.output.splitlines() if x.startswith("error: ")]
    assert line.startswith("error: ray: the workers failed (0 restarts allowed, --max-failures): ")
    assert line.endswith(f"; its newest checkpoint resumes the run: tftrain run --resume {run.absolute()} "
                         "--launcher ray --workers 2")
    assert marker.exists() and summary(run)["launcher"]["restarts"] == 0
    assert (run / "checkpoints" / "state").is_dir()
