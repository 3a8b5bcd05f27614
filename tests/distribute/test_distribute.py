"""training.distribute: MirroredStrategy on two logical CPUs, MultiWorkerMirroredStrategy with two
real worker processes on 127.0.0.1, and the errors around them.

TensorFlow fixes its devices and collective ops when it starts, so every distributed run here is a
real `tftrain run` in a fresh process, as users run it; the single-device runs they are compared
with run in-process. A worker blocked in a collective ignores SIGTERM, so every process a test
starts is SIGKILLed if it is still running when the test ends.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from tests.conftest import CONFIGS, REPO
from tests.kit import EVERY_STEPS, MID_EPOCH_KILLS, STEPS_PER_EPOCH, TINY, Child, assert_identical

# Seconds one distributed run may take on a busy 2-core machine (TensorFlow starts in ~5 s).
RUN_TIMEOUT = 600  # a hang guard only: two workers on a loaded 2-core machine can take minutes

# y = 3x + 2 + noise, 68 points: 51 train / 17 validation, batches of 16. For `custom` the last
# training batch (3) and the last validation batch (1) split unevenly over two replicas, and the
# data is reshuffled every epoch: the loop must still average over the global batch exactly.
REGRESSION = {
    "name": "reg", "seed": 0,
    "data": {"dataset": "synthetic_regression", "options": {"num_examples": 68, "w": 3.0, "b": 2.0, "noise": 1.0},
             "batch_size": 16, "validation": 0.25},
    "model": {"type": "linear"}, "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "metrics": ["mae"], "training": {"epochs": 2},
}
# Keras's fit under a strategy gives each replica's own mean the same weight, which differs from
# the global mean only on a batch that splits unevenly. So fit is compared on data where no batch
# does: 64 points (48 train / 16 validation). (Shuffling is no obstacle: batch `s` of a run is a
# function of (seed, s), however many batches Keras draws to build the model.)
LOOP_SETTINGS = {
    "custom": ["training.loop=custom"],
    "fit": ["training.loop=fit", "data.options.num_examples=64"],
}
MIRRORED = ["training.distribute=mirrored", "training.devices=[cpu:0,cpu:1]"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update(PYTHONPATH=str(REPO), TFTRAIN_OFFLINE="1", KERAS_HOME=str(tmp_path / "keras_home"),
               TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(scratch))  # TMPDIR: the scratch folders of workers
    return env


@contextmanager
def _tftrain(tmp_path: Path, *commands: list[str], tf_configs: list[str] | None = None):
    """Start `tftrain run ...` once per command, all at once (each with its TF_CONFIG, if given);
    SIGKILL whatever still runs at the end."""
    envs = [_env(tmp_path) if tf_configs is None else {**_env(tmp_path), "TF_CONFIG": tf_configs[i]}
            for i in range(len(commands))]
    procs = [subprocess.Popen([sys.executable, "-m", "tftrain", "run", *map(str, args)], cwd=tmp_path,
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args, env in zip(commands, envs)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _finish(procs) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each process, within RUN_TIMEOUT in all."""
    deadline = time.monotonic() + RUN_TIMEOUT
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        results.append((proc.returncode, out, err))
    return results


def _scratch(folder: Path) -> set[Path]:
    """What workers left in their TMPDIR, less Python's byte code for AutoGraph's generated modules."""
    return {p for p in folder.iterdir() if p.name != "__pycache__"}


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _one_device(config: Path, overrides: list[str], runs_dir: Path):
    """The same config trained in this process on one device."""
    from tftrain.spec.loading import load_config
    from tftrain.training.session import run_training

    return run_training(load_config(config, overrides), runs_dir, console=Console(file=io.StringIO()))


def _numbers(run) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if v != ""} for row in run.history()]


def _assert_same_history(run, reference, rel: float) -> None:
    got, want = _numbers(run), _numbers(reference)
    assert len(got) == len(want) > 0
    for row, expected in zip(got, want):
        assert row.keys() == expected.keys()
        assert row == pytest.approx(expected, rel=rel, abs=1e-6)


def _only_run(runs_dir: Path):
    from tftrain.runs import RunDir

    runs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return RunDir.open(runs[0])


# -- mirrored ---------------------------------------------------------------------------------


# fit is compared with one device by the two tests below (a long epoch; an uneven validation batch).
@pytest.mark.parametrize("loop", ["custom"])  # 68 points: batches that split unevenly over the replicas
def test_mirrored_on_two_cpus_matches_one_device(loop, tmp_path, write_config):
    config = write_config(REGRESSION)
    overrides = LOOP_SETTINGS[loop]
    with _tftrain(tmp_path, [config, "--runs-dir", tmp_path / "mirrored", *_sets(overrides + MIRRORED)]) as procs:
        reference = _one_device(config, overrides, tmp_path / "single")
        [(code, out, err)] = _finish(procs)
    assert code == 0, err[-3000:]
    run = _only_run(tmp_path / "mirrored")
    assert out.strip() == str(run.path)
    summary = run.summary()
    assert summary["status"] == "completed"
    assert summary["distribute"]["strategy"] == "mirrored"
    assert summary["distribute"]["replicas"] == 2
    assert summary["distribute"]["per_replica_batch"] == 8
    assert [d.rsplit("/", 1)[-1] for d in summary["distribute"]["local_devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert reference.summary()["distribute"] == {"strategy": "none", "replicas": 1, "global_batch": 16,
                                                 "per_replica_batch": 16}
    _assert_same_history(run, reference, rel=1e-5)


def test_mirrored_fit_whose_first_validation_batch_splits_unevenly(tmp_path, write_config):
    """43 points: 32 train (two batches of 16) and one validation batch of 11, which two replicas
    share as 6 and 5. Keras's fit "averages" that batch over the replicas to build the model
    (keras-team/keras#20585), which fails on such shapes unless tftrain's strategy steps in.
    Training and validation then match one device."""
    config = write_config(REGRESSION)
    overrides = ["training.loop=fit", "data.options.num_examples=43"]
    with _tftrain(tmp_path, [config, "--runs-dir", tmp_path / "mirrored", *_sets(overrides + MIRRORED)]) as procs:
        reference = _one_device(config, overrides, tmp_path / "single")
        [(code, _, err)] = _finish(procs)
    assert code == 0, err[-3000:]
    assert reference.summary()["data"]["train_examples"] == 32
    _assert_same_history(_only_run(tmp_path / "mirrored"), reference, rel=1e-5)


@pytest.mark.slow
def test_mirrored_epochs_long_enough_for_several_steps_per_call(tmp_path, write_config):
    """`steps_per_execution: auto` runs a 48-step epoch in calls of several steps. Keras's fit
    fails on that under a strategy (keras-team/keras#19246), so fit takes one step per call
    there; the custom loop keeps several. Both match one device."""
    config = write_config(REGRESSION)
    long_epoch = ["data.options.num_examples=1024", "training.epochs=1"]
    commands = {loop: [config, "--runs-dir", tmp_path / loop, *_sets([f"training.loop={loop}", *long_epoch, *MIRRORED])]
                for loop in ("fit", "custom")}
    with _tftrain(tmp_path, *commands.values()) as procs:
        references = {loop: _one_device(config, [f"training.loop={loop}", *long_epoch], tmp_path / f"single-{loop}")
                      for loop in commands}
        results = dict(zip(commands, _finish(procs)))
    for loop, (code, _, err) in results.items():
        assert code == 0, err[-3000:]
        summary = _only_run(tmp_path / loop).summary()
        assert summary["status"] == "completed"
        assert references[loop].summary()["steps_per_execution"] > 1
        assert summary["steps_per_execution"] == (1 if loop == "fit" else references[loop].summary()["steps_per_execution"])
        _assert_same_history(_only_run(tmp_path / loop), references[loop], rel=1e-5)


def test_mirrored_batch_must_split_evenly(tmp_path, write_config):
    config = write_config(REGRESSION)
    with _tftrain(tmp_path, [config, "--runs-dir", tmp_path / "runs", *_sets(MIRRORED + ["data.batch_size=15"])]) as procs:
        [(code, _, err)] = _finish(procs)
    assert code == 2
    assert ("error: data.batch_size: 15 does not split evenly over 2 replicas; use a multiple of 2 "
            "(data.batch_size is the global batch)") in err
    assert not (tmp_path / "runs").exists()


def test_mirrored_device_that_does_not_exist(cli, tmp_path, write_config):
    config = write_config(REGRESSION)
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "--set", "training.distribute=mirrored",
                 "--set", "training.devices=[gpu:0, gpu:1]")
    assert result.exit_code == 2
    assert "error: training.devices: gpu:0 does not exist; this process has /device:CPU:0" in result.output
    assert not (tmp_path / "runs").exists()


def test_smoke_test_runs_under_the_mirrored_strategy(tmp_path, write_config):
    """--smoke makes the strategy before its first stage touches TensorFlow, so logical CPUs
    can still be made, and the run it trains is a two-replica one."""
    config = write_config(REGRESSION)
    with _tftrain(tmp_path, [config, "--smoke", "--keep", "--runs-dir", tmp_path / "runs", *_sets(MIRRORED)]) as procs:
        [(code, out, err)] = _finish(procs)
    assert code == 0, err[-3000:]
    run = _only_run(tmp_path / "runs")
    assert out.strip() == str(run.path)
    smoke = json.loads((run.path / "smoke.json").read_text())
    assert smoke["ok"] and [s["stage"] for s in smoke["stages"]] == [
        "data + model", "train + validate + save", "reload", "evaluate"]
    assert run.summary()["distribute"]["replicas"] == 2


def test_smoke_and_sweep_refuse_multi_worker(cli, tmp_path, write_config):
    config = write_config(REGRESSION)
    smoke = cli("run", config, "--smoke", "--runs-dir", tmp_path / "runs", "--set", "training.distribute=multi_worker")
    assert smoke.exit_code == 2, smoke.output
    assert ("error: --smoke: runs on this machine alone, so not with training.distribute=multi_worker; "
            "smoke-test the config with --set training.distribute=none (or mirrored)") in smoke.output
    sweep = cli("sweep", config, "--runs-dir", tmp_path / "runs", "--grid", "optimizer.learning_rate=0.1,0.01",
                "--set", "training.distribute=multi_worker")
    assert sweep.exit_code == 2, sweep.output
    assert ("error: every sweep member is invalid; the first: training.distribute: multi_worker cannot be "
            "swept (a sweep trains its members one after another, or in worker processes on this machine); use "
            "mirrored, or start each member with tftrain run on every worker") in sweep.output
    assert not (tmp_path / "runs").exists()


# -- multi_worker -----------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["custom", "fit"])
def test_two_workers_replay_the_readme_example(loop, tmp_path, tiny_mnist):
    """The two-machine command of docs/scaling.md, both machines on 127.0.0.1."""
    config = CONFIGS / "mnist_dense.yaml"
    overrides = [f"data.path={tiny_mnist}", "training.epochs=2", f"training.loop={loop}"]
    workers = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    command = [config, *_sets(overrides + ["training.distribute=multi_worker"]), "--workers", workers]
    with _tftrain(tmp_path, [*command, "--runs-dir", tmp_path / "runs", "--worker-index", "0"],
                  [*command, "--runs-dir", tmp_path / "worker1-runs", "--worker-index", "1"]) as procs:
        reference = _one_device(config, overrides, tmp_path / "single")
        (code0, out0, err0), (code1, out1, err1) = _finish(procs)
    assert code0 == 0, err0[-3000:]
    assert code1 == 0, err1[-3000:]

    # Only the chief wrote a run directory, complete, and printed it; the other left nothing behind.
    run = _only_run(tmp_path / "runs")
    assert out0.strip() == str(run.path)
    assert out1 == ""
    assert not (tmp_path / "worker1-runs").exists()
    assert _scratch(tmp_path / "tmp") == set()  # the worker left no scratch folder
    for name in ("config.yaml", "summary.json", "history.csv", "model.keras",
                 "checkpoints/last.keras", "checkpoints/best.keras"):
        assert (run.path / name).is_file(), name
    summary = run.summary()
    assert summary["status"] == "completed" and summary["epochs_done"] == 2
    assert {k: summary["distribute"][k] for k in ("strategy", "replicas", "per_replica_batch", "workers",
                                                  "worker_index")} == {
        "strategy": "multi_worker", "replicas": 2, "per_replica_batch": 16, "workers": 2, "worker_index": 0}

    # Both workers ended with the very same weights (bit for bit) ...
    reported = re.search(r"worker 1 of 2 done; weights sha256 ([0-9a-f]{64})", err1)
    assert reported, err1[-3000:]
    assert reported[1] == summary["distribute"]["weights_sha256"]
    # ... and trained what one process trains.
    _assert_same_history(run, reference, rel=1e-5)

    from tftrain.security import load_model

    for got, want in zip(load_model(run.path / "model.keras").get_weights(),
                         load_model(reference.path / "model.keras").get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


RESIDUAL_GRAPH = ("model={type: graph, nodes: [{name: f, layer: flatten}, {name: h, layer: {dense: {units: 16, "
                  "activation: relu}}}, {name: g, layer: {dense: {units: 16}}}, {name: s, layer: add, inputs: [h, g]}, "
                  "{name: out, layer: {dense: {units: 10, activation: softmax}}}]}")


def test_a_tf_config_cluster_with_a_chief_job(tmp_path, tiny_mnist):
    """A cluster manager's TF_CONFIG instead of the flags, with TensorFlow's separate `chief` job:
    the chief (not worker 0) writes the run directory, and the worker counts as worker 1 of 2.
    The model is a residual layer graph (issue 15): every model type is built in the strategy's scope."""
    config = CONFIGS / "mnist_dense.yaml"
    overrides = [f"data.path={tiny_mnist}", "training.epochs=1", RESIDUAL_GRAPH]
    chief_port, worker_port = _free_ports(2)
    cluster = {"chief": [f"127.0.0.1:{chief_port}"], "worker": [f"127.0.0.1:{worker_port}"]}
    tf_configs = [json.dumps({"cluster": cluster, "task": {"type": job, "index": 0}}) for job in ("chief", "worker")]
    command = [config, *_sets(overrides + ["training.distribute=multi_worker"])]
    with _tftrain(tmp_path, [*command, "--runs-dir", tmp_path / "runs"],
                  [*command, "--runs-dir", tmp_path / "worker-runs"], tf_configs=tf_configs) as procs:
        reference = _one_device(config, overrides, tmp_path / "single")
        (code0, out0, err0), (code1, out1, err1) = _finish(procs)
    assert code0 == 0, err0[-3000:]
    assert code1 == 0, err1[-3000:]
    run = _only_run(tmp_path / "runs")
    assert out0.strip() == str(run.path) and out1 == ""
    assert not (tmp_path / "worker-runs").exists()
    distribute = run.summary()["distribute"]
    assert (distribute["workers"], distribute["worker_index"], distribute["replicas"]) == (2, 0, 2)
    assert run.config().model.type == "graph"
    assert distribute["local_devices"] == ["/job:chief/replica:0/task:0/device:CPU:0"]
    reported = re.search(r"worker 1 of 2 done; weights sha256 ([0-9a-f]{64})", err1)
    assert reported and reported[1] == distribute["weights_sha256"], err1[-3000:]
    _assert_same_history(run, reference, rel=1e-5)


def test_resume_command_of_a_tf_config_cluster(monkeypatch):
    """The flags can say a cluster of workers, not one with a `chief` job: then every worker is
    told to keep its TF_CONFIG."""
    from tftrain.training.distribute import Distribution
    from tftrain.training.placement import Placement

    chief = Placement(Distribution("multi_worker", strategy=None, is_chief=True, worker_index=0, num_workers=2))
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "chief", "index": 0}}))
    assert chief.resume_command("runs/r 1") == ("tftrain run --resume 'runs/r 1' (on every worker, with "
                                                "TF_CONFIG set as for this run)")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert chief.resume_command("runs/r") == ("tftrain run --resume runs/r --workers a:1,b:1 --worker-index 1 "
                                              "(on every worker, each with its own --worker-index)")


@pytest.mark.slow
def test_workers_whose_peer_never_comes_up_fail_within_the_timeout(tmp_path, write_config):
    """Worker 0 hosts the cluster's coordination service and worker 1 registers with it: each
    is started alone (two separate clusters, at once), and each gives up with a clear message."""
    config = write_config(REGRESSION)
    ports = _free_ports(4)
    alone = [(0, f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"), (1, f"127.0.0.1:{ports[3]}", f"127.0.0.1:{ports[2]}")]
    started = time.monotonic()
    with _tftrain(tmp_path, *[[config, "--runs-dir", tmp_path / "runs", "--worker-index", index,
                               "--workers", ",".join([me, peer] if index == 0 else [peer, me]),
                               *_sets(["training.distribute=multi_worker", "training.distribute_timeout=3"])]
                              for index, me, peer in alone]) as procs:
        results = _finish(procs)
    assert time.monotonic() - started < 60
    for (index, me, peer), (code, out, err) in zip(alone, results):
        assert code == 1, err[-3000:]
        assert (f"error: worker {index} ({me}) could not reach its peers {peer} within 3s "
                "(training.distribute_timeout): start every worker with the same --workers list") in err
        assert out == ""
    assert not (tmp_path / "runs").exists()


# -- resume -----------------------------------------------------------------------------------
# A distributed run stopped mid-epoch and resumed ends bit for bit where an uninterrupted one
# does. The reference is an uninterrupted `mirrored` run on two logical CPUs: two workers of one
# device each train the same two replicas (same dropout streams, same two-term all-reduce), so
# a multi_worker run must match it exactly too.

MIRRORED_TINY = {**TINY, "training": {**TINY["training"], "distribute": "mirrored", "devices": ["cpu:0", "cpu:1"]}}
MULTI_WORKER_TINY = {**TINY, "training": {**TINY["training"], "distribute": "multi_worker"}}
_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))


def _tiny(root: Path, base: dict, loop: str) -> str:
    name = f"{base['training']['distribute']}_{loop}.yaml"
    (root / name).write_text(yaml.safe_dump({**base, "training": {**base["training"], "loop": loop}}))
    return name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted two-replica run of each loop, trained side by side: loop -> run dir."""
    root = tmp_path_factory.mktemp("uninterrupted")
    children = {loop: Child(["run", "--runs-dir", "runs", _tiny(root, MIRRORED_TINY, loop)], root, _env(root))
                for loop in ("fit", "custom")}
    for child in children.values():
        assert child.wait(RUN_TIMEOUT) == 0, child
    return {loop: child.run_dir(root) for loop, child in children.items()}


def _paced_env(root: Path) -> dict[str, str]:
    return _env(root)


def _resume_line(child: Child) -> list[str]:
    """The resume command a stopped process printed, as arguments after `tftrain`."""
    line = next((x for x in child.lines if "resume with: " in x), "")
    command = shlex.split(line.split("resume with: ", 1)[-1].split(" (on every worker")[0])
    assert command[:1] == ["tftrain"], child
    return command[1:]


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_mirrored_run_stopped_mid_epoch_resumes_bit_identical(loop, tmp_path, uninterrupted):
    at = _RNG.choice(MID_EPOCH_KILLS)
    stopped = Child(["run", "--runs-dir", "runs", _tiny(tmp_path, MIRRORED_TINY, loop)], tmp_path,
                    _paced_env(tmp_path), paced=True, at=at, signal=signal.SIGTERM)
    assert stopped.wait(RUN_TIMEOUT) == 143, stopped
    # The mid-epoch checkpoint holds each replica's own metric accumulators, not only their sums.
    record = _newest_record(stopped.run_dir(tmp_path))
    metrics = record["states"]["metrics"]
    assert record["step"] > 0 and metrics["replica_values"].keys() == metrics["values"].keys()
    for path, by_replica in metrics["replica_values"].items():
        assert len(by_replica) == 2
        assert np.allclose(np.sum(by_replica, axis=0), metrics["values"][path], rtol=1e-6)
    resumed = Child(_resume_line(stopped), tmp_path, _env(tmp_path))
    assert resumed.wait(RUN_TIMEOUT) == 0, resumed
    run = stopped.run_dir(tmp_path)
    assert resumed.stdout.strip() == str(run.relative_to(tmp_path))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["distribute"]["replicas"] == 2
    assert summary["resumed"][0]["step"] == at, stopped
    assert_identical(run, uninterrupted[loop])


def _newest_record(run: Path) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "state"))
    return json.loads(reader.get_tensor("record/.ATTRIBUTES/VARIABLE_VALUE"))


def _workers(root: Path, loop: str, at: int, stop: int, to: int) -> list[Child]:
    """Two paced workers of a new multi_worker run on 127.0.0.1; worker `to` gets signal `stop`
    right after step `at`."""
    addresses = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    config = _tiny(root, MULTI_WORKER_TINY, loop)
    return [Child(["run", config, "--runs-dir", "runs" if index == 0 else "worker-runs", "--workers", addresses,
                   "--worker-index", str(index)], root, _paced_env(root), paced=True,
                  at=at if index == to else None, signal=stop)
            for index in (0, 1)]


def _resume_workers(root: Path, run: Path, chief_command: list[str]) -> Child:
    """Run the command the chief printed on both workers (each with its own --worker-index) and
    check that they finished the run together, only the chief writing to it."""
    assert chief_command[-2:] == ["--worker-index", "0"], chief_command
    scratch_before = _scratch(root / "tmp")  # a SIGKILLed worker cannot delete its scratch folder
    chief, worker = Child(chief_command, root, _env(root)), Child([*chief_command[:-1], "1"], root, _env(root))
    for child in (chief, worker):
        assert child.wait(RUN_TIMEOUT) == 0, child
    assert chief.stdout.strip() == str(run.relative_to(root)) and worker.stdout == ""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["distribute"]["workers"] == 2
    reported = re.search(r"worker 1 of 2 done; weights sha256 ([0-9a-f]{64})", worker.stderr)
    assert reported and reported[1] == summary["distribute"]["weights_sha256"], worker
    assert not (root / "worker-runs").exists() and _scratch(root / "tmp") == scratch_before
    return chief


@pytest.mark.slow
def test_multi_worker_chief_signalled_all_stop_at_one_step_and_resume(tmp_path, uninterrupted):
    """SIGTERM to the chief alone: both workers stop after the same step (exit 143), the chief
    with a checkpoint; the resume command it prints, run on both workers, finishes the run as
    if it had never stopped."""
    # The workers compare signals about every 0.2 s (2 or 3 paced steps): signal the chief after
    # the 5th step of an epoch before the last, so they stop inside that epoch or at its end.
    at = _RNG.choice([k for k in MID_EPOCH_KILLS if (k - 1) % STEPS_PER_EPOCH == 4][:-1])
    chief, worker = _workers(tmp_path, "custom", at, signal.SIGTERM, to=0)
    assert chief.wait(RUN_TIMEOUT) == 143, chief
    assert worker.wait(RUN_TIMEOUT) == 143, worker
    said = [next(x for x in child.lines if x.startswith("interrupted: SIGTERM after step ")) for child in (chief, worker)]
    steps = {int(x.split(" after step ")[1].split()[0]) for x in said}
    assert len(steps) == 1 and at <= steps.pop() <= at + STEPS_PER_EPOCH - 5, said
    assert "; checkpoint saved; resume with: tftrain run --resume runs/" in said[0]
    assert "; the chief saved the checkpoint; resume with: tftrain run --resume RUN_DIR --workers " in said[1]
    run = chief.run_dir(tmp_path)
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"

    _resume_workers(tmp_path, run, _resume_line(chief))
    assert_identical(run, uninterrupted["custom"])


@pytest.mark.slow
def test_multi_worker_run_that_lost_a_worker_resumes_from_the_chiefs_checkpoint(tmp_path, uninterrupted):
    """Worker 1 SIGKILLed mid-epoch (its machine lost): the chief stops with a one-line error and
    `status: failed`; every worker then resumes from the chief's newest periodic checkpoint, read
    from the chief's run directory. A worker that reads a different checkpoint (a stale copy) is
    refused on every worker before anything is written."""
    at = _RNG.choice([k for k in MID_EPOCH_KILLS if k > STEPS_PER_EPOCH])  # the stale copy needs an older checkpoint
    chief, worker = _workers(tmp_path, "fit", at, signal.SIGKILL, to=1)
    assert worker.wait(RUN_TIMEOUT) == -9, worker
    assert chief.wait(RUN_TIMEOUT) == 1, chief
    assert re.search(r"error: worker 0 lost contact with (worker 1|another worker) \(\w+Error in a collective op\); "
                     "every worker has to stop: resume them all from the chief's run directory", chief.stderr), chief
    assert "Traceback" not in chief.stderr
    run = chief.run_dir(tmp_path)
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    command = ["run", "--resume", str(run.relative_to(tmp_path)), "--workers", None, "--worker-index", "0"]

    # A stale copy for worker 1: the chief's run without its newest checkpoint.
    stale = tmp_path / "stale" / run.name
    shutil.copytree(run, stale)
    state = stale / "checkpoints" / "state"
    newest = max(state.glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1])).stem
    for path in state.glob(f"{newest}.*"):
        path.unlink()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    command[4] = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    mismatched = [Child(command, tmp_path, _env(tmp_path)),
                  Child([*command[:2], str(stale.relative_to(tmp_path)), *command[3:-1], "1"], tmp_path, _env(tmp_path))]
    assert [child.wait(RUN_TIMEOUT) for child in mismatched] == [2, 2], mismatched
    for child in mismatched:
        assert "error: the workers restored different checkpoints (step " in child.stderr, child
        assert "every worker must resume from the chief's run directory itself" in child.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before

    command[4] = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    resumed = _resume_workers(tmp_path, run, command)
    epoch_step = next(x for x in resumed.lines if x.startswith("resuming from epoch "))
    assert int(epoch_step.rsplit(", step ", 1)[1]) == EVERY_STEPS, epoch_step  # killed after step 5 to 7
    assert_identical(run, uninterrupted["fit"])


def test_multi_worker_resume_needs_the_run_directory_on_every_worker(cli, tmp_path):
    result = cli("run", "--resume", tmp_path / "runs" / "nope", "--workers", "127.0.0.1:2222,127.0.0.1:2223",
                 "--worker-index", "1")
    assert result.exit_code == 2
    assert (f"error: --resume: {tmp_path / 'runs' / 'nope'} does not exist on this machine; every worker resumes "
            "from the chief's run directory, so it must be on storage that all workers read") in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "127.0.0.1:2222,127.0.0.1:2223", "--worker-index", "0"],
     "--workers/--worker-index: only used with training.distribute=multi_worker (it is none)"),
    (["--set", "training.distribute=multi_worker", "--workers", "127.0.0.1:2222,127.0.0.1:2223"],
     "--workers needs --worker-index as well"),
    (["--set", "training.distribute=multi_worker", "--worker-index", "1"],
     "--worker-index needs --workers as well"),
    (["--set", "training.distribute=multi_worker", "--workers", "127.0.0.1:2222,127.0.0.1", "--worker-index", "0"],
     "--workers: expected host:port, got '127.0.0.1'"),
    (["--set", "training.distribute=multi_worker", "--workers", "a:1,a:1", "--worker-index", "0"],
     "--workers: a:1 is listed twice"),
    (["--set", "training.distribute=multi_worker", "--workers", "a:1,b:1", "--worker-index", "2"],
     "--worker-index: expected 0 to 1 (one of the 2 --workers), got 2"),
    (["--set", "training.distribute=multi_worker"],
     "training.distribute multi_worker needs the cluster: pass --workers host:port,... --worker-index I"),
])
def test_cluster_flag_errors(args, message, cli, tmp_path, write_config, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = cli("run", write_config(REGRESSION), "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.output
    assert not (tmp_path / "runs").exists()
    assert "TF_CONFIG" not in os.environ


@pytest.mark.parametrize(("tf_config", "message"), [
    ("{not json", "TF_CONFIG: invalid JSON (Expecting property name enclosed in double quotes at character 1)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     'TF_CONFIG: task {"type": "worker", "index": 3} is not one of the cluster\'s tasks (worker 0..0)'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "TF_CONFIG: cluster.ps: multi_worker takes 'chief' and 'worker' jobs"),
])
def test_tf_config_errors(tf_config, message, cli, tmp_path, write_config, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    result = cli("run", write_config(REGRESSION), "--runs-dir", tmp_path / "runs",
                 "--set", "training.distribute=multi_worker")
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.output
    assert not (tmp_path / "runs").exists()


def test_flags_become_tf_config():
    from tftrain.training.distribute import read_tf_config, tf_config_from_flags

    text = tf_config_from_flags("10.0.0.1:2222, 10.0.0.2:2222", 1)
    assert json.loads(text) == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                                "task": {"type": "worker", "index": 1}}
    assert read_tf_config(text) == json.loads(text)


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("training", "message"), [
    ({"devices": ["cpu:0", "cpu:1"]},
     "training.devices: only used with distribute: mirrored (distribute is none)"),
    ({"distribute": "mirrored", "devices": ["cpu:0", "tpu:0"]},
     'training.devices: expected device names such as gpu:0 or cpu:1, got "tpu:0"'),
    ({"distribute": "mirrored", "devices": ["gpu:0", "/device:GPU:0"]},
     "training.devices: /device:GPU:0 is listed twice"),
    ({"distribute": "mirrored", "jit_compile": True},
     "training.jit_compile: true cannot be combined with distribute: mirrored"),
    ({"distribute": "multi_worker", "steps_per_execution": 4},
     "training.steps_per_execution: 4 cannot be combined with loop: fit and distribute: multi_worker "
     "(Keras's fit fails on it under tf.distribute, keras-team/keras#19246); use 1 or auto, or loop: custom"),
    ({"distribute": "multi-worker"},
     "training.distribute: unknown value \"multi-worker\" — did you mean 'multi_worker'?"),
    ({"distribute": "multi_worker", "distribute_timeout": 0},
     "training.distribute_timeout: expected a positive integer, got 0"),
])
def test_config_errors(training, message, cli, write_config):
    result = cli("validate", write_config({**REGRESSION, "training": training}))
    assert result.exit_code == 2
    assert f"error: {message}" in result.output


def test_defaults_train_on_one_device():
    from tftrain.spec.training import TrainingConfig

    training = TrainingConfig()
    assert (training.distribute, training.devices, training.distribute_timeout) == ("none", None, 300)
