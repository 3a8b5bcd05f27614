"""A new user's first hour (issue 14): a quiet start, a clean Ctrl-C on a terminal, versions,
numbers as ML people write them, training a finished run on, smoke tests that leave nothing."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIGS, REPO
from tests.kit import TINY, assert_identical, summary


def _env(tmp_path: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    return {**env, "PYTHONPATH": str(REPO), "KERAS_HOME": str(tmp_path / "keras_home"), **extra}


def test_tensorflow_start_up_noise_stays_off_the_console_unless_verbose(tmp_path):
    run = [sys.executable, "-m", "tftrain", "run", str(CONFIGS / "linear_regression.yaml"),
           "--runs-dir", str(tmp_path / "runs"), "--set", "training.epochs=1"]
    quiet = subprocess.run([*run, "-q"], capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    plain = subprocess.run(run, capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.splitlines()[0].startswith("run directory: ")  # a pipe gets no status line
    assert not re.search(r"absl::InitializeLog|cudart_stub|cuInit|cpu_feature_guard", plain.stderr)
    verbose = subprocess.run([*run, "-v"], capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert verbose.returncode == 0 and "absl::InitializeLog" in verbose.stderr  # TensorFlow's own log, asked for


def test_start_up_filter_keeps_every_line_that_is_not_known_noise():
    from tftrain.tf_setup import STARTUP_NOISE

    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1796 12 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
             "E0000 00:00:1796 12 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"]
    real = ["ImportError: libcudnn.so.9: cannot open shared object file",
            "W0000 00:00:1796 12 op_kernel.cc:1857] OP_REQUIRES failed at save_restore_v2_ops.cc"]
    assert all(STARTUP_NOISE.search(line) for line in noise)
    assert not any(STARTUP_NOISE.search(line) for line in real)


def test_version_names_tftrain_tensorflow_and_keras(cli):
    import keras
    import tensorflow as tf

    import tftrain

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"tftrain {tftrain.__version__} (TensorFlow {tf.__version__}, "
                                    f"Keras {keras.__version__}, Python ")


def test_numbers_as_papers_write_them_are_numbers_in_files_and_in_set(write_config):
    from tftrain.spec.loading import load_config

    path = write_config("data: {dataset: synthetic_regression}\nmodel: {type: linear}\nloss: mse\n"
                        "optimizer: {name: adam, learning_rate: 3e-4, epsilon: 1E-7, beta_1: .9}\n")
    config = load_config(path)
    assert config.optimizer.learning_rate == 3e-4 and config.optimizer.params["epsilon"] == 1e-7
    assert config.optimizer.params["beta_1"] == 0.9
    assert load_config(path, ["optimizer.learning_rate=1e-3"]).optimizer.learning_rate == 1e-3
    from tftrain.errors import ConfigError

    with pytest.raises(ConfigError, match=r'training.epochs: expected a positive integer, got "3"'):
        load_config(path, ['training.epochs="3"'])  # a real string is still refused


class _Terminal:
    """A paced tftrain process on a pseudo-terminal, as in a user's shell: rich draws live bars."""

    def __init__(self, args: list[str], cwd: Path, env: dict, paced: bool = True):
        master, slave = pty.openpty()
        self.master, self.output, self.steps = master, b"", []
        program = [str(REPO / "tests" / "paced_tftrain.py")] if paced else ["-m", "tftrain"]
        self.proc = subprocess.Popen([sys.executable, *program, *args], cwd=cwd,
                                     env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
                                     stdin=slave, stdout=subprocess.PIPE, stderr=slave, close_fds=True)
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            self.output += chunk
            for found in re.findall(rb"@step (\d+)", chunk):
                self.steps.append(int(found))
                self.on_step(int(found))

    def on_step(self, step: int):
        os.write(self.master, b"\n")  # go on

    def run(self, timeout: float = 240) -> int:
        self.reader.start()
        code = self.proc.wait(timeout)
        self.stdout = self.proc.stdout.read().decode()
        self.reader.join(10)
        os.close(self.master)
        return code


def test_ctrl_c_on_a_terminal_leaves_a_clean_screen_and_the_cursor_shown(tmp_path):
    # One step per call: Ctrl-C comes after step 3, and a stop lands only between calls.
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "training": {"epochs": 2, "steps_per_execution": 1}}))

    class CtrlC(_Terminal):
        def on_step(self, step):
            if step == 3:
                self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
            super().on_step(step)

    terminal = CtrlC(["run", "tiny.yaml", "--runs-dir", "runs"], tmp_path, _env(tmp_path))
    assert terminal.run() == 130, terminal.output.decode(errors="replace")[-3000:]
    text = terminal.output.decode(errors="replace")
    assert text.rfind("\x1b[?25l") < text.rfind("\x1b[?25h")  # the cursor is shown again at the end
    notice = text.index("SIGINT: stopping after this step")
    final = text.index("interrupted: SIGINT after step 3")
    assert notice < final and re.search(r"[\r\n](\x1b\[[0-9;?]*[A-Za-z])*interrupted: SIGINT", text)
    assert "epoch 1/2" in text[:notice] and "━" in text[:notice]  # a live bar was drawn ...
    assert "━" not in text[notice:]  # ... and not again after the stop notice
    run = next((tmp_path / "runs").iterdir())
    assert terminal.stdout.strip() == f"runs/{run.name}"  # the run directory, for RUN=$(tftrain run ...)
    assert summary(run)["status"] == "interrupted"


def test_a_terminal_is_told_what_happens_before_tensorflow_starts(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "training": {"epochs": 1}}))
    terminal = _Terminal(["run", "tiny.yaml", "--runs-dir", "runs"], tmp_path, _env(tmp_path), paced=False)
    assert terminal.run() == 0, terminal.output.decode(errors="replace")[-3000:]
    text = terminal.output.decode(errors="replace")
    status = text.index("training tiny.yaml (synthetic_binary, dense model, fit loop): starting TensorFlow")
    assert status < text.index("run directory: ")
    assert not re.search(r"absl::InitializeLog|cudart_stub|cuInit", text)


def test_resume_cleans_what_a_cut_short_checkpoint_write_left(cli, write_config, tmp_path):
    config = write_config({**TINY, "training": {"epochs": 1}})
    result = cli("run", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    partial = run / "checkpoints" / "state" / "ckpt-5_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 8)
    again = cli("run", "--resume", run, "--set", "training.epochs=2")
    assert again.exit_code == 0, again.output
    assert not partial.exists()


def test_resume_with_more_epochs_trains_a_finished_run_on_exactly(cli, write_config, tmp_path):
    path = write_config({**TINY, "training": {"loop": "custom", "epochs": 2, "checkpoint": {"every_steps": 4}}})
    short = cli("run", path, "--runs-dir", tmp_path / "runs")
    assert short.exit_code == 0, short.output
    (run,) = (tmp_path / "runs").iterdir()
    long = cli("run", path, "--runs-dir", tmp_path / "base", "--set", "training.epochs=4")
    assert long.exit_code == 0, long.output
    (base,) = (tmp_path / "base").iterdir()
    extended = cli("run", "--resume", run, "--set", "training.epochs=4")
    assert extended.exit_code == 0, extended.output
    assert "resuming from epoch 3, step 0" in extended.output
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["epochs"] == 4
    info = summary(run)
    assert info["status"] == "completed" and info["epochs_done"] == 4 and info["resumed"][0]["to_epochs"] == 4
    assert_identical(run, base)  # the same as four epochs from the start

    before = (run / "config.yaml").read_text()
    for sets, message in ((["training.epochs=3"], "already trains 4 epochs"),
                          (["training.epochs=0"], "expected a positive integer"),
                          (["optimizer.learning_rate=0.1"], "the only override it takes is --set training.epochs=N"),
                          (["training.epochs=5", "seed=1"], "the only override it takes")):
        refused = cli("run", "--resume", run, *[a for s in sets for a in ("--set", s)])
        assert refused.exit_code == 2 and message in refused.output, refused.output
    assert (run / "config.yaml").read_text() == before
    completed = cli("run", "--resume", run)
    assert completed.exit_code == 2 and "--set training.epochs=N" in completed.output


def test_a_run_stopped_early_is_not_extended(cli, write_config, tmp_path):
    early = {**TINY, "training": {"epochs": 5, "early_stopping": {"patience": 0, "min_delta": 100.0}}}
    result = cli("run", write_config(early), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    assert summary(run)["epochs_done"] < 5
    refused = cli("run", "--resume", run, "--set", "training.epochs=8")
    assert refused.exit_code == 2 and "was stopped early" in refused.output
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


MISTAKES = [
    # (config changes, the one line validate must print) -- each trains silently to nonsense otherwise
    ({"model": {"type": "dense", "output_activation": None}},
     "error: loss: sparse_categorical_crossentropy expects probabilities, but the model's output layer has no "
     "activation (it outputs logits): set loss: {name: sparse_categorical_crossentropy, from_logits: true}"),
    ({"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}},
     "error: loss: sparse_categorical_crossentropy has from_logits: true, but the model's output layer applies "
     "softmax (it outputs probabilities)"),
    ({"loss": "binary_crossentropy"}, "error: model: softmax over the one output unit loss binary_crossentropy "
                                      "trains is always 1: use sigmoid"),
    ({"data": {"dataset": "csv", "path": "t.csv", "options": {"label": "y"}}},
     "error: data.validation: test, but csv data has a test split only with data.options.test_path"),
]


@pytest.mark.parametrize("changes, message", MISTAKES, ids=["logits", "from-logits", "softmax-one-unit", "csv-test"])
def test_mistakes_are_caught_by_validate_before_any_data(cli, write_config, changes, message):
    config = {"data": {"dataset": "mnist", "path": "never-read.npz"}, "loss": "sparse_categorical_crossentropy",
              **changes}
    result = cli("validate", write_config(config))
    assert result.exit_code == 2 and result.output.splitlines() == [message + result.output.split(message)[1].rstrip()]
    assert result.output.startswith(message)


def test_every_problem_of_a_config_is_reported_at_once_typos_first(cli, write_config):
    path = write_config({"data": {"dataset": "synthetic_regression", "batch_size": 0}, "optimiser": {"name": "sgd"},
                         "model": {"type": "linear", "w_int": 1.0}, "training": {"epochs": "many"}})
    result = cli("validate", path)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [line.split(" — ")[0].split(":")[1].strip() for line in lines[:2]] == [
        "unknown key 'w_int' in 'model'", "unknown key 'optimiser'"]
    assert lines[2:] == ["error: loss: required key is missing",
                         "error: data.batch_size: expected a positive integer, got 0",
                         'error: training.epochs: expected a positive integer, got "many"']


def test_integer_csv_targets_read_as_classes_with_a_regression_loss(cli, write_config, tmp_path):
    (tmp_path / "visits.csv").write_text("age,visits\n" + "".join(f"{i},{(i * 7) % 300}\n" for i in range(40)))
    config = {"data": {"dataset": "csv", "path": str(tmp_path / "visits.csv"), "validation": 0.25,
                       "options": {"label": "visits"}},
              "model": {"type": "linear"}, "loss": "mse"}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()
    assert result.output.strip().splitlines() == [
        "error: data: the csv label column 'visits' holds whole numbers, read as class labels (40 distinct values, "
        "data.options.task: auto), but loss mse is a regression loss: set data.options.task: regression "
        "to train on the values (or use a classification loss such as sparse_categorical_crossentropy)"]
    fixed = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "--set", "data.options.task=regression",
                "--set", "training.epochs=1")
    assert fixed.exit_code == 0, fixed.output


def test_no_test_split_under_validation_test_says_what_happens(cli, write_config, tmp_path):
    config = {"data": {"dataset": "synthetic_regression", "options": {"num_examples": 16}, "batch_size": 8},
              "model": {"type": "linear"}, "loss": "mse", "training": {"epochs": 1}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert ("warning: synthetic_regression data has no test split, so nothing is validated (data.validation: test) "
            "and checkpoints/best.keras follows the training loss") in result.output


def test_predict_names_classes_and_warns_about_inputs_unlike_the_training_data(cli, tiny_runs, tmp_path):
    import numpy as np

    from tftrain.data.images.fashion_mnist import CLASS_NAMES

    rng = np.random.default_rng(0)
    np.save(tmp_path / "raw.npy", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    result = cli("predict", tiny_runs["fashion"], tmp_path / "raw.npy", "--json")
    assert result.exit_code == 0 and "warning" not in result.output.split("{")[0], result.output
    rows = json.loads(result.stdout)["predictions"]
    assert all(row["label"] == CLASS_NAMES[row["class"]] for row in rows)
    table = cli("predict", tiny_runs["fashion"], tmp_path / "raw.npy")
    assert table.exit_code == 0 and rows[0]["label"] in table.stdout
    np.save(tmp_path / "scaled.npy", rng.random((2, 28, 28)).astype(np.float32))  # already divided by 255
    scaled = cli("predict", tiny_runs["fashion"], tmp_path / "scaled.npy", "--json")
    assert scaled.exit_code == 0
    assert (f"warning: {tmp_path / 'scaled.npy'}: values lie in [0, 1], but the model was trained on uint8 pixels "
            "0..255 and rescales them itself: pass the raw pixel values") in scaled.stderr
