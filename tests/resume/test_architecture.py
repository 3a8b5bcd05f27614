"""The training core's contracts: resume state is a protocol (any stateful callback resumes, in
any callback order), one writer of summary.json, and no side effects when modules are imported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import REPO
from tests.kit import TINY, AtStep, assert_identical, summary

# Early stopping (patience used, best weights), best snapshot, history and the metric
# accumulators of a mid-epoch stop: every stateful callback tftrain has, in one config.
STATEFUL = {**TINY, "training": {
    "epochs": 4, "checkpoint": {"every_steps": 4}, "steps_per_execution": 1,  # AtStep(6) ends a call
    "early_stopping": {"monitor": "val_loss", "patience": 2, "min_delta": 0.02, "restore_best_weights": True}}}


class CountSteps(keras.callbacks.Callback):
    """A third-party stateful callback: counts the training calls it saw, across resumes."""

    state_key = "count_steps"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def get_state(self):
        return {"calls": self.calls, "seen": np.arange(self.calls)}  # arrays are state too

    def set_state(self, state):
        self.calls = state["calls"]
        assert np.array_equal(state["seen"], np.arange(self.calls))

    def on_train_batch_end(self, batch, logs=None):
        self.calls += 1


def _config(tmp_path, loop):
    from tftrain.spec.loading import validate

    return validate({**STATEFUL, "training": {**STATEFUL["training"], "loop": loop}})


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_callback_order_changes_nothing_and_any_stateful_callback_resumes(tmp_path, loop):
    """Shuffled callbacks, stopped by SIGTERM mid-epoch, resumed with another shuffle: the same
    history, weights and resume state, bit for bit, as the default order never stopped; the
    extra stateful callback counted every step once over both sessions."""
    from rich.console import Console

    from tftrain.errors import TrainingInterrupted
    from tftrain.training.session import resume_training, run_training

    quiet = Console(stderr=True, quiet=True)
    counted = CountSteps()
    base = run_training(_config(tmp_path, loop), tmp_path / "base", console=quiet, callbacks=[counted])
    first = CountSteps()
    with pytest.raises(TrainingInterrupted) as stopped:
        run_training(_config(tmp_path, loop), tmp_path / "runs", console=quiet, shuffle_callbacks=1,
                     callbacks=[first, AtStep(6, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    assert stopped.value.exit_code == 143 and first.calls == 6
    (run,) = (tmp_path / "runs").iterdir()
    second = CountSteps()
    resume_training(run, console=quiet, shuffle_callbacks=2, callbacks=[second])
    assert_identical(run, base.path)
    assert second.calls == counted.calls and summary(run)["status"] == "completed"
    record = json.loads(_newest_record(run))
    assert record["states"]["count_steps"]["calls"] == counted.calls


def _newest_record(run) -> str:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "state"))
    return reader.get_tensor("record/.ATTRIBUTES/VARIABLE_VALUE")


def test_two_components_with_one_state_key_are_refused(tmp_path):
    from rich.console import Console

    from tftrain.training.session import run_training

    with pytest.raises(ValueError, match="share a state_key"):
        run_training(_config(tmp_path, "fit"), tmp_path / "runs", console=Console(stderr=True, quiet=True),
                     callbacks=[CountSteps(), CountSteps()])


def test_summary_json_has_one_writer(tmp_path):
    from tftrain.runs import SUMMARY, RunDir, RunSummary

    run = RunDir.create(tmp_path, "x")
    with pytest.raises(ValueError, match="RunSummary"):
        run.write_json(SUMMARY, {"status": "completed"})
    RunSummary(run).started(seed=1)
    RunSummary(run).failed(OSError("disk"), seconds=1.0)
    RunSummary(run).resumed({"epoch": 1, "step_in_epoch": 0, "step": 0})
    info = run.summary()
    assert info["status"] == "running" and "error" not in info and info["seed"] == 1
    assert len(info["resumed"]) == 1


def test_importing_tftrain_changes_neither_the_environment_nor_the_umask():
    """TensorFlow is set up by the one function the CLI calls, not by importing modules."""
    code = f"""
import json, os, sys
sys.path.insert(0, {str(REPO)!r})
before = (dict(os.environ), os.umask(0o027))
import tftrain.cli, tftrain.training.session, tftrain.commands.evaluate, tftrain.commands.predict
import tftrain.commands.export, tftrain.training.smoke, tftrain.commands.sweep, tftrain.commands.plot
import tftrain.commands.tune, tftrain.commands.study, tftrain.commands.workers, tftrain.tracking, tftrain.hparams
import tftrain.commands.report, tftrain.commands.tflite, tftrain.commands.onnx_export, tftrain.commands.serving
import tftrain.commands.export_check, tftrain.commands.evaluation_report, tftrain.commands.evaluation_plots
after = (dict(os.environ), os.umask(0o022))
changed = sorted(k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k))
print(json.dumps({{"changed": changed, "umask": oct(after[1])}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"changed": [], "umask": "0o27"}
