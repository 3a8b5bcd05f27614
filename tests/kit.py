"""The shared test kit: tiny configs, child tftrain processes (paced or not) and in-process runs,
faults injected at a step through tftrain's public callbacks hook, bit-for-bit comparison of two
runs, waiting for a state that will come, and TensorBoard's HParams view of a folder.
Fixtures live in conftest.py; everything a test file imports lives here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import keras
import numpy as np

from tests.conftest import REPO

STEPS_PER_EPOCH = 9  # 36 training examples (48, a quarter held out), batch 4
EPOCHS = 4
EVERY_STEPS = 4  # resume points: 4 8 | 9 | 13 17 | 18 | 22 26 | 27 | 31 35 | 36
# Kill after the 5th to 7th step of an epoch: the newest checkpoint is then inside the epoch
# (its 4th step).
MID_EPOCH_KILLS = [k for k in range(1, EPOCHS * STEPS_PER_EPOCH) if 5 <= (k - 1) % STEPS_PER_EPOCH + 1 <= 7]

TINY = {
    "name": "tiny",
    "seed": 7,
    "deterministic": True,
    "data": {"dataset": "synthetic_binary", "options": {"num_examples": 48}, "batch_size": 4,
             "validation": 0.25},
    # Dropout makes the result depend on the RNG state too, not only on weights and data order.
    "model": {"type": "dense", "hidden": [8], "dropout": 0.5, "output_activation": "sigmoid"},
    "loss": "binary_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},  # slots and iterations to restore
    "metrics": ["accuracy"],
    # One step per compiled call: callbacks (and so a paced child's `@step N` lines, kills and
    # TensorBoard's batch points) run between calls, and these tests stop runs at chosen steps.
    "training": {"loop": "fit", "epochs": EPOCHS, "steps_per_execution": 1,
                 "checkpoint": {"every_steps": EVERY_STEPS}},
}


def child_env(root: Path) -> dict[str, str]:
    """The environment of a tftrain child process whose runs are compared bit for bit with runs in
    this process: this checkout on the path, its own Keras cache, and this process's intra-op
    thread count. A process keeps the count its first run set (apply_cpu_threads), so a pytest
    worker's count depends on which tests it ran before, and a convolution's last bits depend on
    the count (test_model_resume failed so once: 2 threads here, 1 in the child)."""
    from tftrain.training.performance import apply_cpu_threads

    threads = apply_cpu_threads(1)  # 1, as a tiny run sets, where TensorFlow has not started here yet
    return {**os.environ, "PYTHONPATH": str(REPO), "KERAS_HOME": str(root / "keras_home"),
            "TF_NUM_INTRAOP_THREADS": str(threads or len(os.sched_getaffinity(0)))}  # 0: one per core


class Child:
    """A tftrain process; stderr is read line by line. A paced one (tests/paced_tftrain.py)
    waits after each `@step N` line until this answers it; after `@step <at>` it is sent
    `signal` first, so the signal always lands at that step."""

    def __init__(self, args: list[str], cwd: Path, env: dict, paced: bool = False,
                 at: int | None = None, signal: int | None = None):
        program = [str(REPO / "tests" / "paced_tftrain.py")] if paced else ["-m", "tftrain"]
        self.args, self.at, self.signal, self.paced = args, at, signal, paced
        self.lines: list[str] = []
        self._stdout = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, *program, *args], cwd=cwd, env=env, text=True,
                                     stdin=subprocess.PIPE if paced else subprocess.DEVNULL,
                                     stdout=self._stdout, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if not (self.paced and line.startswith("@step ")):
                continue
            if self.at is not None and line.strip() == f"@step {self.at}":
                self.proc.send_signal(self.signal)
            try:  # go on (a process killed by the signal reads nothing more)
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def wait(self, timeout: float = 240) -> int:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        self._stdout.seek(0)
        self.stdout = self._stdout.read()
        self.stderr = "".join(self.lines)
        return self.proc.returncode

    def run_dir(self, cwd: Path) -> Path:
        """The run directory the child announced on stderr."""
        line = next(x for x in self.lines if x.startswith("run directory: "))
        return cwd / line.split(": ", 1)[1].strip()

    def __repr__(self):
        return f"tftrain {' '.join(self.args)} (at {self.at}):\n{''.join(self.lines)[-3000:]}"


def final_state(run: Path) -> dict[str, object]:
    """Every tensor of the run's newest checkpoint (model, optimizer, record without timings)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "state"))
    state = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter")):
            continue
        value = reader.get_tensor(name)
        if name.startswith("record/"):
            value = {k: v for k, v in json.loads(value).items() if k != "seconds"}
        state[name] = value
    return state


def assert_identical(run: Path, baseline: Path) -> None:
    """Same history.csv, same final model weights, same final training state, bit for bit."""

    assert (run / "history.csv").read_text() == (baseline / "history.csv").read_text()
    ours, theirs = (keras.saving.load_model(p / "model.keras", compile=False) for p in (run, baseline))
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        assert np.array_equal(a, b), "final weights differ"
    ours, theirs = final_state(run), final_state(baseline)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert np.array_equal(ours[name], theirs[name]) if isinstance(ours[name], np.ndarray) \
            else ours[name] == theirs[name], name


class AtStep(keras.callbacks.Callback):
    """Calls `act()` once training has done `step` steps: a fault or a signal injected through
    tftrain's public hook for extra callbacks. Steps are batches, counted from the epoch and the
    batch index (params["steps"] is the epoch's length), not by optimizer.iterations, which counts
    weight updates (fewer under gradient accumulation)."""

    def __init__(self, step: int, act):
        super().__init__()
        self.step, self.act, self.epoch = step, act, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch * self.params["steps"] + batch + 1 == self.step:
            self.act()


class KillWorkerOnce(keras.callbacks.Callback):
    """SIGKILL the process of worker `worker` right after training step `step`, once: the marker
    file it writes first stops the restarted group's worker from doing it again. Pickled to
    the workers of a launch (tftrain's public hook for extra callbacks), so it lives here, in a
    module they can import."""

    def __init__(self, step: int, worker: int, marker: str):
        super().__init__()
        self.step, self.worker, self.marker, self.epoch = step, worker, marker, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        if index == self.worker and self.epoch * self.params["steps"] + batch + 1 == self.step \
                and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


class InProcess:
    """`tftrain ARGS` run in this process: TensorFlow is imported here once, which is cheaper
    than a new process (and still another process than one that was stopped)."""

    def __init__(self, args: list, cwd: Path, callbacks=()):
        from typer.testing import CliRunner

        from tftrain.cli import app

        self.args = args
        before = os.getcwd()
        os.chdir(cwd)  # relative paths as a user in that folder would type them
        try:  # callbacks: Keras callbacks the run adds (tftrain's public hook, as the cli fixture passes them)
            result = CliRunner().invoke(app, [str(a) for a in args], obj={"callbacks": list(callbacks)})
        finally:
            os.chdir(before)
        self.exit_code, self.output = result.exit_code, result.output
        self.lines = self.output.splitlines()

    def run_dir(self, cwd: Path) -> Path:
        line = next(x for x in self.lines if x.startswith("run directory: "))
        return cwd / line.split(": ", 1)[1].strip()

    def __repr__(self):
        return f"tftrain {' '.join(map(str, self.args))}:\n{self.output[-3000:]}"


def killed_and_resumed(root: Path, config: dict, kill_at: int) -> tuple[Path, Path]:
    """Run `config` in a paced child SIGKILLed after step `kill_at`, and uninterrupted here
    meanwhile; resume the child's run here. Returns (resumed run, baseline run)."""
    resumed, baseline = killed_resumed_and_baseline(root, config, kill_at)
    return resumed, baseline.run_dir(root)


def killed_resumed_and_baseline(root: Path, config: dict, kill_at: int, callbacks=()) -> tuple[Path, InProcess]:
    """killed_and_resumed, where the uninterrupted run also adds `callbacks` (so a test can watch
    the baseline it compares with instead of training the same config once more); returns
    (resumed run, the baseline's InProcess: its output and run_dir)."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    # One step per compiled call unless the config says otherwise, so that step `kill_at` ends a
    # call: callbacks, and so the paced child's `@step N` lines, run between calls.
    config = {**config, "training": {"steps_per_execution": 1, **config.get("training", {})}}
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["run", "--runs-dir", "runs", "c.yaml"]
    child = Child(args, root, child_env(root), True, kill_at, signal.SIGKILL)
    baseline = InProcess(args, root, callbacks)
    assert baseline.exit_code == 0, baseline
    assert child.wait() == -9, child
    resumed = InProcess(["run", "--resume", child.run_dir(root)], root)
    assert resumed.exit_code == 0, resumed
    assert "resuming from epoch" in resumed.output, resumed
    return child.run_dir(root), baseline


def wait_for(condition, what: str, timeout: float = 300):
    """Wait for a state that will come (a file, a line, a process gone); fail after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hparams_groups(logdir: Path) -> dict[str, dict]:
    """What TensorBoard's HParams dashboard shows for `tensorboard --logdir LOGDIR`: each session
    group (named by its run directory) with its hparams, status and metric values, read by
    TensorBoard's own event multiplexer and HParams request handler."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=1000, allowed_statuses=[
        api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
    response = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()
    groups = {}
    for group in response.session_groups:
        (session,) = group.sessions
        groups[group.name] = {
            "hparams": {k: getattr(v, v.WhichOneof("kind")) for k, v in group.hparams.items()},
            "status": api_pb2.Status.Name(session.status),
            "metrics": {(m.name.group, m.name.tag): m.value for m in group.metric_values},
        }
    return groups


def run_refused(cli, tmp_path: Path, config) -> str:
    """`tftrain run CONFIG` refused as bad input should be: exit 2, one `error:` line, no
    traceback, no run directory written. Returns the line."""
    runs = tmp_path / "runs"
    result = cli("run", config, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert not runs.exists()
    return lines[0]



def mirrored_beside_one_device(config: Path, root: Path, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """(run dir under `distribute: mirrored` on two logical CPUs, run dir on one device) of the
    config file `config`. The mirrored run is a child process (logical devices exist only before
    TensorFlow starts), running while this process trains the one-device run."""
    from rich.console import Console

    from tftrain.spec.loading import load_config
    from tftrain.training.session import run_training

    env = env or {**os.environ, "PYTHONPATH": str(REPO), "KERAS_HOME": str(root / "keras_home"),
                  "TF_CPP_MIN_LOG_LEVEL": "2"}
    mirrored = subprocess.Popen(
        [sys.executable, "-m", "tftrain", "run", str(config), "--runs-dir", str(root / "mirrored"), "-q",
         "--set", "training.distribute=mirrored", "--set", "training.devices=[cpu:0,cpu:1]"],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        single = run_training(load_config(config), root / "single", console=Console(stderr=True, quiet=True))
        out, err = mirrored.communicate(timeout=300)
    finally:
        if mirrored.poll() is None:
            mirrored.kill()
    assert mirrored.returncode == 0, err[-3000:]
    run = Path(out.strip())
    assert summary(run)["distribute"]["replicas"] == 2
    return run, single.path
