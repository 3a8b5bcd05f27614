"""CLI conventions: help with an example on every command, exit codes documented, `python -m
tftrain`, TensorFlow-free start-up, `show`, and `init` templates that validate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO  # noqa: E402
from tftrain.cli import app
from tftrain.commands.init import TEMPLATES
from tftrain.spec.datasets import DATASETS
from tftrain.spec.loading import load_config

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_every_command_is_registered():
    assert set(COMMANDS) >= {"run", "evaluate", "validate", "show", "init", "runs", "compare", "plot",
                             "sweep", "tune", "predict", "export", "schema", "report"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example: tftrain " + command in " ".join(result.stdout.split())


def test_top_level_help_documents_the_exit_codes(cli):
    result = cli("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 ok, 1 failed, 2 bad input, 3 diverged, 130/143 interrupted." in text


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_python_dash_m_tftrain_is_the_same_program():
    result = subprocess.run([sys.executable, "-m", "tftrain", "--help"], capture_output=True, text=True,
                            cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage: tftrain" in result.stdout and "sweep" in result.stdout


# The commands that must start without TensorFlow (nor Keras, NumPy, matplotlib): help, validate,
# show, schema, init, runs. Nor rich's Markdown renderer, markdown-it or pygments, which typer's
# rich help would import on every --help (issue 21: more than typer itself costs).
_NO_TF = """
import sys
from tftrain.cli import app
try:
    app(sys.argv[1:], prog_name="tftrain")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("tensorflow", "keras", "numpy", "matplotlib", "rich.markdown", "markdown_it",
                           "pygments") if m in sys.modules)
print("HEAVY:" + ",".join(heavy), "EXIT:" + str(code))
"""


@pytest.mark.parametrize("args", [
    ["--help"],
    ["run", "--help"],
    ["validate", "--help"],
    ["validate", "configs/linear_regression.yaml"],
    ["show", "configs/linear_regression.yaml"],
    ["validate", "configs/experiments/mnist_quick.yaml"],
    ["show", "--sources", "configs/experiments/fashion_mnist_adam.yaml"],
    ["schema"],
    ["schema", "--output", "{tmp}/tftrain.schema.json"],
    ["runs", "runs", "--json"],
    ["init", "--template", "binary", "{tmp}/new.yaml"],
    ["tune", "--help"],
], ids=["help", "run-help", "validate-help", "validate", "show", "validate-extends", "show-sources", "schema",
        "schema-output", "runs", "init", "tune-help"])
def test_light_commands_never_import_tensorflow(args, tmp_path):
    result = _python(_NO_TF, *[a.format(tmp=tmp_path) for a in args])
    assert "EXIT:0" in result.stdout, result.stdout + result.stderr
    assert "HEAVY: EXIT:0" in result.stdout  # nothing heavy was imported


def test_show_prints_every_default_and_round_trips(cli, tmp_path):
    result = cli("show", REPO / "configs" / "linear_regression.yaml", "--set", "training.epochs=2")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["training"]["epochs"] == 2
    assert shown["training"]["steps_per_execution"] == "auto"  # a default the file does not mention
    assert shown["data"]["options"]["x_min"] == -2.0  # and a dataset option default
    (tmp_path / "shown.yaml").write_text(result.stdout)
    assert load_config(tmp_path / "shown.yaml").to_yaml() == result.stdout


def test_show_reports_bad_input_in_one_line(cli, write_config):
    path = write_config({"data": {"dataset": "mnist", "batch_size": "big"}, "loss": "mse"})
    result = cli("show", path)
    assert result.exit_code == 2
    assert result.stderr.strip() == 'error: data.batch_size: expected a positive integer, got "big"'


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_init_templates_are_commented_and_validate(cli, tmp_path, template):
    if template == "cifar10" and "cifar10" not in DATASETS:
        pytest.skip("the cifar10 dataset is not registered in this build (datasets issue)")
    path = tmp_path / f"{template}.yaml"
    result = cli("init", "--template", template, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(path)
    text = path.read_text()
    assert sum(line.lstrip().startswith("#") or " # " in line for line in text.splitlines()) >= 8
    assert f"tftrain run {path}" in text
    config = load_config(path)
    assert config.name and config.training.epochs >= 1


def test_init_never_overwrites_without_force(cli, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("mine\n")
    result = cli("init", path)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert path.read_text() == "mine\n"
    assert cli("init", "--template", "regression", "--force", path).exit_code == 0
    assert load_config(path).data.dataset == "synthetic_regression"
    result = cli("init", "--template", "mnst", tmp_path / "other.yaml")
    assert result.exit_code == 2 and "unknown template 'mnst'" in result.stderr
    assert not (tmp_path / "other.yaml").exists()


def test_templates_without_validation_monitor_a_training_metric(tmp_path):
    """A template that validates on nothing picks its best model (and early stopping, when
    uncommented) by a metric the run logs: `loss`, not `val_loss`."""
    from tftrain.commands.init import render

    for template in TEMPLATES:
        path = tmp_path / f"{template}.yaml"
        text = render(template, path)
        path.write_text(text)
        config = load_config(path)
        if config.data.validation == "none":
            assert config.training.checkpoint.monitor == "loss", template
            assert "val_" not in text.split("training:", 1)[1], template
        else:
            assert config.training.checkpoint.monitor.startswith("val_"), template


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)")
def test_the_default_template_works_offline(cli, tmp_path):
    """`tftrain init && tftrain run config.yaml` with no network (TFTRAIN_OFFLINE=1, an empty Keras
    cache: see conftest): the default template finds Fashion-MNIST in Debian's package."""
    from tftrain.commands.init import DEFAULT_TEMPLATE, render

    path = tmp_path / "config.yaml"
    assert cli("init", path).exit_code == 0
    assert path.read_text().split("\n", 1)[1] == render(DEFAULT_TEMPLATE, path)  # after the schema line
    assert load_config(path).data.dataset == "fashion_mnist"
    result = cli("run", path, "--smoke", "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
