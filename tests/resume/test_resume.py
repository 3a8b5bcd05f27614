"""Reliability promises, each shown with real processes on tiny data.

- a run SIGKILLed at a random step (mid-epoch) and resumed ends bit-identical to an
  uninterrupted one, for both loops; a half-written or corrupt newest checkpoint is skipped;
- SIGINT / SIGTERM: checkpoint, `status: interrupted`, the exact resume command, exit 130 / 143;
- NaN loss: `status: diverged` with the step, last good checkpoint and best model kept, exit 3;
- concurrent runs of one config get their own directories; same config + seed, same results
  (every resumed run is compared bit for bit with a baseline run of the same config);
- `seed: null` records the seed it picked, and the recorded config reruns identically;
- a crash is `status: failed`; a run held by a live process cannot be resumed twice.

The slow part is one module fixture: four paced tftrain processes, killed or interrupted at
random mid-epoch steps, while the uninterrupted baselines train in this process; then resumes.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from tests.kit import (
    MID_EPOCH_KILLS,
    STEPS_PER_EPOCH,
    TINY,
    AtStep,
    Child,
    InProcess,
    assert_identical,
    child_env,
    summary,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Start four paced processes, each killed or interrupted at a random mid-epoch step, and
    while they run, train the uninterrupted baselines here, on the same configs and into the
    same runs folder; then resume the four (and a copy of one with a half-written and a corrupt
    newest checkpoint)."""
    import signal

    root = tmp_path_factory.mktemp("reliability")
    env = child_env(root)
    (root / "fit.yaml").write_text(yaml.safe_dump(TINY))
    (root / "custom.yaml").write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"], "loop": "custom"}}))
    rng = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))
    steps = dict(zip(("kill_fit", "kill_custom", "term_fit", "int_custom"), rng.choices(MID_EPOCH_KILLS, k=4)))
    # The kill_fit copy gets its newest checkpoint corrupted, so it needs an older one to fall
    # back to: kill it after the first epoch (in epoch 1 only one checkpoint exists yet).
    steps["kill_fit"] = rng.choice([k for k in MID_EPOCH_KILLS if k > STEPS_PER_EPOCH])
    run = ["run", "--runs-dir", "runs"]
    children = {
        "kill_fit": Child([*run, "fit.yaml"], root, env, True, steps["kill_fit"], signal.SIGKILL),
        "kill_custom": Child([*run, "custom.yaml"], root, env, True, steps["kill_custom"], signal.SIGKILL),
        "term_fit": Child([*run, "fit.yaml"], root, env, True, steps["term_fit"], signal.SIGTERM),
        "int_custom": Child([*run, "custom.yaml"], root, env, True, steps["int_custom"], signal.SIGINT),
    }
    w = {"root": root, "steps": steps, "children": children}
    w["base"] = {loop: InProcess([*run, f"{loop}.yaml"], root) for loop in ("fit", "custom")}
    w["rc"] = {key: child.wait() for key, child in children.items()}
    w["dirs"] = {key: child.run_dir(root) for key, child in children.items()}
    w["dirs"].update({f"base_{loop}": base.run_dir(root) for loop, base in w["base"].items()})
    # What `tftrain runs` says of them before any is resumed.
    w["listed"] = {row["run"]: row for row in json.loads(InProcess(["runs", "runs", "--json"], root).output)}
    w["table"] = InProcess(["runs", "runs"], root).output

    # A copy of the SIGKILLed fit run as a kill during a checkpoint write leaves it (files of a
    # newer checkpoint, pointer not yet moved), whose newest listed checkpoint is also corrupt.
    damaged = root / "damaged" / w["dirs"]["kill_fit"].name
    shutil.copytree(w["dirs"]["kill_fit"], damaged)
    state = damaged / "checkpoints" / "state"
    newest = sorted(state.glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1]))[-1].stem
    (state / "ckpt-999.index").write_bytes(b"\x00" * 10)  # half-written: never listed in `checkpoint`
    (state / "ckpt-999.data-00000-of-00001").write_bytes(b"\x00" * 10)
    data = state / f"{newest}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    w["dirs"]["damaged"], w["damaged_newest"] = damaged, newest

    w["resumes"] = {key: InProcess(["run", "--resume", w["dirs"][key]], root)
                    for key in ("kill_fit", "kill_custom", "damaged")}
    for key in ("term_fit", "int_custom"):
        line = next((x for x in children[key].lines if "resume with: " in x), "")
        command = shlex.split(line.split("resume with: ", 1)[-1])
        assert command[:1] == ["tftrain"], children[key]
        w["resumes"][key] = InProcess(command[1:], root)  # the printed command, as printed, in its folder
    return w


def _resumed_from(resumed: InProcess) -> tuple[int, int]:
    line = next(x for x in resumed.lines if x.startswith("resuming from epoch "))
    epoch, step = line.removeprefix("resuming from epoch ").split(", step ")
    return int(epoch), int(step)


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(world, loop):
    key = f"kill_{loop}"
    assert world["base"][loop].exit_code == 0, world["base"][loop]
    assert world["rc"][key] == -9, world["children"][key]
    resumed = world["resumes"][key]
    assert resumed.exit_code == 0, resumed
    epoch, step = _resumed_from(resumed)
    assert 0 < step < STEPS_PER_EPOCH, f"killed after step {world['steps'][key]}: {resumed}"
    info = summary(world["dirs"][key])
    assert info["status"] == "completed" and info["resumed"][0]["epoch"] == epoch
    assert_identical(world["dirs"][key], world["dirs"][f"base_{loop}"])


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_tensorboard_steps_after_a_mid_epoch_resume_match_an_uninterrupted_run(world, loop):
    """Both sessions' event files, merged by TensorBoard's own reader (which drops the killed
    session's points past the checkpoint), give the uninterrupted run's batch and epoch steps."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
        accumulator = EventAccumulator(str(run / "tensorboard" / "train"), size_guidance={"tensors": 0})  # every point
        accumulator.Reload()
        return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
                for tag in accumulator.Tags()["tensors"]}

    resumed, base = scalars(world["dirs"][f"kill_{loop}"]), scalars(world["dirs"][f"base_{loop}"])
    steps = [step for step, _ in resumed["batch_loss"]]
    assert steps == sorted(set(steps)) and steps == [step for step, _ in base["batch_loss"]] == list(range(1, 37))
    assert resumed["batch_loss"] == base["batch_loss"] and resumed["epoch_loss"] == base["epoch_loss"]


def test_half_written_or_corrupt_newest_checkpoint_falls_back_to_previous(world):
    resumed = world["resumes"]["damaged"]
    assert resumed.exit_code == 0, resumed
    assert f"skipped unreadable checkpoint {world['damaged_newest']}" in resumed.output
    assert "ckpt-999" not in resumed.output  # never listed, never tried: an older listed one worked
    assert_identical(world["dirs"]["damaged"], world["dirs"]["base_fit"])


@pytest.mark.parametrize("key, code, name", [("term_fit", 143, "SIGTERM"), ("int_custom", 130, "SIGINT")])
def test_signal_checkpoints_marks_interrupted_prints_resume_and_exits(world, key, code, name):
    child, run = world["children"][key], world["dirs"][key]
    assert world["rc"][key] == code, child
    message = next(x for x in child.lines if x.startswith(f"interrupted: {name} after step "))
    stopped = int(message.split(" after step ")[1].split()[0])
    assert stopped == world["steps"][key], message  # the step at which the signal came
    assert child.stdout.strip() == str(run.relative_to(world["root"]))  # RUN=$(tftrain run ...) can resume it
    epoch, step = message.split(" (epoch ")[1].split(")")[0].split(", step ")
    assert f"resume with: tftrain run --resume {run.relative_to(world['root'])}" in message
    # The printed command continued the run to the very same result as an uninterrupted one.
    resumed = world["resumes"][key]
    assert resumed.exit_code == 0, resumed
    assert _resumed_from(resumed) == (int(epoch), int(step))
    final = summary(run)
    assert final["status"] == "completed" and "signal" not in final
    assert final["resumed"][0]["step"] == stopped
    assert_identical(run, world["dirs"]["base_fit" if key == "term_fit" else "base_custom"])


def test_runs_shows_a_killed_run_as_killed_with_its_resume_command(world):
    """kill -9 leaves `status: running` in summary.json (nothing runs at a SIGKILL), but no
    process holds the run's lock: every command shows it as killed, with what resumes it."""
    for key in ("kill_fit", "kill_custom"):
        name = world["dirs"][key].name
        row = world["listed"][name]
        assert row["status"] == "killed" and row["resume"] == f"tftrain run --resume runs/{name}"
        assert f"{name} was killed; resume with: tftrain run --resume runs/{name}" in world["table"]
    assert world["listed"][world["dirs"]["term_fit"].name]["status"] == "interrupted"
    assert world["listed"][world["dirs"]["base_fit"].name]["status"] == "completed"
    assert world["listed"][world["dirs"]["base_fit"].name]["resume"] is None


def test_concurrent_runs_of_one_config_get_own_dirs(world):
    """Three processes trained fit.yaml into one runs folder at the same time (three custom.yaml)."""
    for loop in ("fit", "custom"):
        keys = [f"base_{loop}", *(k for k in world["children"] if k.endswith(loop))]
        dirs = [world["dirs"][k] for k in keys]
        assert len(set(dirs)) == 3 and len({p.parent for p in dirs}) == 1
        for key in keys:  # each directory holds its own process's work
            assert summary(world["dirs"][key])["loop"] == loop
    assert summary(world["dirs"]["base_fit"])["pid"] == os.getpid()
    assert world["base"]["fit"].lines[-1] == str(world["dirs"]["base_fit"].relative_to(world["root"]))


def test_a_killed_run_is_told_from_a_live_one_by_its_lock(tmp_path):
    """SIGKILL leaves `status: running` (nothing can run at a SIGKILL), but the OS drops the
    run's lock with the process, so readers can tell a killed run from a live one."""
    from tftrain.runs import RunDir

    run = RunDir.create(tmp_path, "x")
    with run.lock():
        assert run.active()
    assert not run.active()


def test_resume_refuses_a_run_another_process_holds(world, cli):
    run = world["dirs"]["base_custom"]
    from tftrain.runs import RunDir

    with RunDir(run).lock():
        result = cli("run", "--resume", run)
    assert result.exit_code == 2 and "another tftrain process is training this run" in result.output
    result = cli("run", "--resume", run)
    assert result.exit_code == 2 and "has completed; there is nothing to resume" in result.output


def test_resume_takes_the_run_directory_alone(cli, tmp_path, write_config):
    config = write_config(TINY)
    result = cli("run", config, "--resume", tmp_path)
    assert result.exit_code == 2 and "--resume takes the run directory alone" in result.output
    result = cli("run", "--resume", tmp_path / "nope")
    assert result.exit_code == 2 and "not a tftrain run directory" in result.output


def test_concurrent_run_directory_creation_never_shares(tmp_path):
    """Eight processes create runs of one name in the same second: eight directories."""
    code = ("import sys; from pathlib import Path; from tftrain.runs import RunDir; "
            "print(RunDir.create(Path(sys.argv[1]), 'same').path)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, text=True,
                              stdout=subprocess.PIPE) for _ in range(8)]
    paths = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(paths)) == 8 and len(list(tmp_path.iterdir())) == 8


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", "x y"])
def test_run_names_are_confined(cli, write_config, tmp_path, name):
    config = write_config({k: v for k, v in TINY.items() if k != "name"})
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "--name", name)
    assert result.exit_code == 2 and "--name: expected letters, digits" in result.output
    result = cli("run", write_config({**TINY, "name": name}, "named.yaml"), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "name: expected letters, digits" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "x").exists()


DIVERGES = {
    "name": "diverges", "seed": 0,
    "data": {"dataset": "synthetic_regression", "options": {"num_examples": 48}, "batch_size": 4,
             "validation": "none", "shuffle": False},
    "model": {"type": "linear"},
    "loss": "mse",
    # Far above the stable step size for x in [-2, 2]: the loss grows ~10x a step until inf/NaN.
    "optimizer": {"name": "sgd", "learning_rate": 1.2},
    "training": {"loop": "custom", "epochs": 30, "checkpoint": {"monitor": "loss"}},
}


def test_nan_loss_stops_marks_diverged_keeps_last_good_checkpoint(cli, write_config, tmp_path):
    import tensorflow as tf

    result = cli("run", write_config(DIVERGES), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 3, result.output
    assert "loss became NaN or infinite at step" in result.output
    (run,) = (tmp_path / "runs").iterdir()
    info = summary(run)
    assert info["status"] == "diverged" and info["diverged_at_step"] > 12  # after a good first epoch
    assert not (run / "model.keras").exists()  # no final model made of NaNs
    for name in ("best.keras", "last.keras"):  # the best and last good models, finite
        model = keras.saving.load_model(run / "checkpoints" / name, compile=False)
        assert all(np.isfinite(w).all() for w in model.get_weights())
    latest = tf.train.latest_checkpoint(str(run / "checkpoints" / "state"))
    record = json.loads(tf.train.load_checkpoint(latest).get_tensor("record/.ATTRIBUTES/VARIABLE_VALUE"))
    assert record["global_step"] < info["diverged_at_step"]
    assert all(np.isfinite(row["loss"]) for row in record["states"]["history"]["rows"])


def test_seed_null_is_recorded_and_the_recorded_config_reruns_identically(cli, write_config, tmp_path):
    config = {**TINY, "seed": None, "training": {"loop": "custom", "epochs": 1}}
    first = cli("run", write_config(config), "--runs-dir", tmp_path / "a")
    assert first.exit_code == 0, first.output
    (run,) = (tmp_path / "a").iterdir()
    recorded = yaml.safe_load((run / "config.yaml").read_text())["seed"]
    assert isinstance(recorded, int) and summary(run)["seed"] == recorded
    again = cli("run", run / "config.yaml", "--runs-dir", tmp_path / "b")
    assert again.exit_code == 0, again.output
    (rerun,) = (tmp_path / "b").iterdir()
    assert summary(rerun)["seed"] == recorded

    a, b = (keras.saving.load_model(p / "model.keras", compile=False) for p in (run, rerun))
    assert (run / "history.csv").read_text() == (rerun / "history.csv").read_text()
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def test_every_steps_is_validated(cli, write_config):
    bad = {**TINY, "training": {**TINY["training"], "checkpoint": {"every_steps": 0}}}
    result = cli("validate", write_config(bad))
    assert result.exit_code == 2
    assert "training.checkpoint.every_steps: expected a positive integer, got 0" in result.output


EARLY = {**TINY, "training": {
    "loop": "fit", "epochs": 5, "steps_per_execution": 3,
    # Never improves by 100 after the first epoch: stops after the second, keeping the first's weights.
    "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 100.0, "restore_best_weights": True},
    "checkpoint": {"every_steps": 3}}}
SAMPLED = {**TINY, "training": {
    "loop": "custom", "steps": 24, "log_every": 8, "sampling": "with_replacement", "steps_per_execution": 4}}


@pytest.mark.parametrize("config, at", [(EARLY, 12), (SAMPLED, 12)], ids=["fit-early-stopping", "custom-sampled-steps"])
def test_sigterm_in_process_then_resume_matches_for_early_stopping_and_sampling(
        cli, write_config, tmp_path, config, at):
    """Early stopping's state (patience used, best value, best weights), steps-mode sampling with
    replacement and several steps per call survive an interruption exactly. The signal is real,
    sent by this process to itself after step `at`, with tftrain's handlers in place."""
    import signal

    path = write_config(config)
    baseline = cli("run", path, "--runs-dir", tmp_path / "base")
    assert baseline.exit_code == 0, baseline.output
    stopped = cli("run", path, "--runs-dir", tmp_path / "run",
                  callbacks=[AtStep(at, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    assert stopped.exit_code == 143, stopped.output
    assert f"interrupted: SIGTERM after step {at} " in stopped.output
    (run,) = (tmp_path / "run").iterdir()
    assert summary(run)["status"] == "interrupted"
    resumed = cli("run", "--resume", run)
    assert resumed.exit_code == 0, resumed.output
    (base,) = (tmp_path / "base").iterdir()
    if config is EARLY:
        assert len(summary(base)["final"]) and summary(base)["epochs_done"] == 2  # it did stop early
    assert_identical(run, base)

    # Killed after its last checkpoint but before the final model was written: a resume only
    # finishes (restoring early stopping's best weights, as the uninterrupted run did).
    (run / "model.keras").unlink()
    (run / "summary.json").write_text(json.dumps({**summary(run), "status": "running"}))
    finished = cli("run", "--resume", run)
    assert finished.exit_code == 0, finished.output
    assert_identical(run, base)


def test_a_crash_marks_failed_and_the_run_still_resumes(cli, write_config, tmp_path):
    """Any other error mid-training (here a full disk) is `status: failed` with the error; the
    last checkpoint is intact, so the run can be resumed once the cause is fixed."""
    def disk_full():
        raise OSError(28, "No space left on device")

    config = write_config({**TINY, "training": {**TINY["training"], "loop": "custom", "epochs": 2}})
    crashed = cli("run", config, "--runs-dir", tmp_path / "runs", callbacks=[AtStep(14, disk_full)])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, OSError)
    (run,) = (tmp_path / "runs").iterdir()
    info = summary(run)
    assert info["status"] == "failed" and info["error"] == "OSError: [Errno 28] No space left on device"
    resumed = cli("run", "--resume", run)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from epoch 2, step 4" in resumed.output  # the checkpoint at step 13
    assert summary(run)["status"] == "completed" and "error" not in summary(run)
