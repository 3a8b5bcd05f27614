"""Console output of `tftrain run`: plain lines without control characters outside a terminal,
--quiet, --verbose, and NO_COLOR."""

from __future__ import annotations

import io
import re

import pytest

from tftrain.training.callbacks.progress import ProgressCallback, StepLogCallback

# Every C0 control character but newline and tab, and DEL: escape sequences, carriage returns, bells.
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
# SGR color parameters: 30-37/90-97 foreground, 40-47/100-107 background, 38;/48; extended colors.
COLOR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|4[0-7]|10[0-7]|38;|48;)[0-9;]*m")


@pytest.fixture
def regression(write_config):
    """16 points, batch 4, 2 epochs, a held-out quarter: 3 training steps per epoch."""
    return write_config({
        "name": "reg", "data": {"dataset": "synthetic_regression", "batch_size": 4, "validation": 0.25,
                                "options": {"num_examples": 16}},
        "model": {"type": "linear"}, "loss": "mse", "metrics": ["mae"],
        "training": {"epochs": 2}})


def test_output_outside_a_terminal_is_plain_lines_without_control_characters(cli, regression, tmp_path,
                                                                            monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # One step per call: --verbose prints its step lines between calls.
    result = cli("run", regression, "--runs-dir", tmp_path / "runs", "--verbose", "--set", "training.loop=custom",
                 "--set", "training.steps_per_execution=1")
    assert result.exit_code == 0, result.output
    assert not CONTROL.search(result.stderr_bytes), CONTROL.search(result.stderr_bytes)
    assert not CONTROL.search(result.stdout_bytes)
    lines = result.stderr.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss=" in line and "val_mae=" in line for line in epoch_lines)
    # --verbose: the resolved config and lines inside each epoch (steps 1 and 2 of 3).
    assert "steps_per_execution: 1" in result.stderr and "jit_compile: auto" in result.stderr
    assert [line.split("  ")[1] for line in lines if line.startswith("  step ")] == ["step 1/3", "step 2/3"] * 2


def test_quiet_prints_only_the_run_directory(cli, regression, tmp_path):
    result = cli("run", regression, "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    (path,) = result.stdout.splitlines()
    assert path.startswith(str(tmp_path / "runs" / "reg-"))
    both = cli("run", regression, "-q", "-v")
    assert both.exit_code == 2 and "choose one" in both.stderr


def test_quiet_still_reports_errors(cli, write_config):
    path = write_config({"data": {"dataset": "npz", "path": "missing.npz"}, "loss": "mse"})
    result = cli("run", path, "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: data.path: missing.npz does not exist")


def _drive_progress(console) -> None:
    callback = ProgressCallback(console, epochs=1, steps_per_epoch=3, steps_mode=False)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for step in range(3):
        callback.on_train_batch_end(step, {"loss": 1.0 / (step + 1)})
    callback.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.6})
    callback.on_train_end()


def test_progress_bars_on_a_terminal_are_colored_unless_no_color(monkeypatch):
    from rich.console import Console

    monkeypatch.delenv("NO_COLOR", raising=False)
    colored = io.StringIO()
    _drive_progress(Console(file=colored, force_terminal=True, color_system="truecolor", width=100))
    assert COLOR_SGR.search(colored.getvalue())  # the bar is drawn in color
    monkeypatch.setenv("NO_COLOR", "1")
    plain = io.StringIO()
    _drive_progress(Console(file=plain, force_terminal=True, color_system="truecolor", width=100))
    assert "\x1b[" in plain.getvalue()  # still a live terminal display (cursor control, bold)...
    assert not COLOR_SGR.search(plain.getvalue())  # ...with no color at all
    assert "epoch 1/1  loss=0.5  val_loss=0.6" in plain.getvalue()


def test_run_respects_no_color_on_a_terminal(cli, regression, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the captured stream as a color terminal
    monkeypatch.setenv("NO_COLOR", "1")
    result = cli("run", regression, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stderr  # styled terminal output (bars, bold headers)
    assert not COLOR_SGR.search(result.stderr)


def test_step_lines_are_printed_about_every_tenth_of_an_epoch():
    from rich.console import Console

    out = io.StringIO()
    callback = StepLogCallback(Console(file=out, width=120), steps_per_epoch=100)
    callback.on_epoch_begin(0)
    for end in range(8, 101, 8):  # steps_per_execution 8: called every 8 steps
        callback.on_train_batch_end(end - 1, {"loss": 0.5})
    steps = [int(line.split()[1].split("/")[0]) for line in out.getvalue().splitlines()]
    assert steps == [16, 24, 32, 40, 56, 64, 72, 80, 96]  # one per tenth crossed; 100 is the epoch line
