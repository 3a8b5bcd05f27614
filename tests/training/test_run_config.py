"""`tftrain.training.run_config`, the one function that runs a config (the CLI, sweep and tune
workers, the in-process sweep call it), and `Outcome`, the one mapping from how a run ended to
its status and exit code; no layer below the commands imports a command or the CLI."""

from __future__ import annotations

import ast
import signal

import pytest
from rich.console import Console

from tests.conftest import REPO
from tests.kit import TINY

QUIET = Console(stderr=True, quiet=True)


def test_run_config_takes_a_dict_with_overrides_and_names_the_run(tmp_path):
    from tftrain.training import run_config

    raw = {k: v for k, v in TINY.items() if k != "name"}
    run = run_config(raw, ["training.epochs=1", "optimizer.learning_rate=0.05"], tmp_path, console=QUIET)
    assert run.path.parent == tmp_path and run.path.name.startswith("run-")
    assert run.summary()["status"] == "completed" and run.summary()["epochs_done"] == 1
    config = run.config()
    assert config.training.epochs == 1 and config.optimizer.learning_rate == 0.05
    assert raw["training"]["epochs"] != 1  # the caller's dict is left as it was


def test_run_config_resumes_and_trains_a_finished_run_on(tmp_path):
    from tftrain.spec.loading import validate
    from tftrain.training import Outcome, run_config

    first = run_config(validate({**TINY, "training": {**TINY["training"], "epochs": 1}}), runs_dir=tmp_path,
                       name="on", console=QUIET)
    again = run_config(resume=first.path, overrides=["training.epochs=2"], console=QUIET)
    assert again.path == first.path and again.summary()["epochs_done"] == 2
    assert Outcome.of(run=again) == Outcome("completed", 0, None, str(first.path))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"config": "c.yaml", "resume": "runs/r"}, "--resume takes the run directory alone"),
    ({"resume": "runs/r", "overrides": ["seed=1"]}, "the only override it takes is --set training.epochs=N"),
    ({}, "missing CONFIG"),
    ({"config": 3}, "expected a config file, a Config or a dict, got int"),
])
def test_run_config_refuses_what_tftrain_run_refuses(kwargs, message):
    from tftrain.errors import UserError
    from tftrain.training import run_config

    with pytest.raises(UserError, match=message):
        run_config(**kwargs, console=QUIET)


def test_outcome_maps_every_way_a_run_ends_to_a_status_and_exit_code():
    from tftrain.errors import ConfigError, DataReadError, DivergedError, TrainingInterrupted
    from tftrain.training import Outcome

    interrupted = TrainingInterrupted("SIGTERM after step 3", signal.SIGTERM, run_dir="runs/r")
    cases = [
        (KeyboardInterrupt(), ("interrupted", 130)),
        (interrupted, ("interrupted", 143)),
        (DivergedError("loss became NaN"), ("diverged", 3)),
        (ConfigError("training.epochs: bad"), ("failed", 2)),
        (DataReadError("a corrupt record"), ("failed", 1)),
        (ValueError("boom"), ("failed", 1)),
    ]
    for error, expected in cases:
        outcome = Outcome.of(error)
        assert (outcome.status, outcome.exit_code) == expected, error
        assert not outcome.ok
    assert Outcome.of(interrupted).run_dir == "runs/r"
    assert Outcome.of(ValueError("boom")).error == "ValueError: boom"
    assert Outcome.of() == Outcome("completed", 0)  # a multi_worker worker: no run directory
    assert Outcome.died(-9).error == "worker process died (exit code -9)" and Outcome.died(-9).exit_code == 1
    sent = Outcome.of(DivergedError("loss became NaN"))
    assert Outcome.from_json(sent.as_json()) == sent  # what a worker sends its parent


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_training_runs_and_trackers_import_no_command_and_nothing_re_enters_the_cli():
    """Training, the run directory and tracking sit below the commands; workers, sweeps and
    tune trials train through run_config, never through `cli.main`."""
    package = REPO / "tftrain"
    below = [*(package / "training").rglob("*.py"), *(package / "runs").rglob("*.py"), package / "tracking.py"]
    upward = {str(p.relative_to(REPO)): sorted(m for m in _imports(p) if m.startswith(("tftrain.commands", "tftrain.cli")))
              for p in below}
    assert {p: m for p, m in upward.items() if m} == {}
    commands = {str(p.relative_to(REPO)): sorted(m for m in _imports(p) if m == "tftrain.cli")
                for p in (package / "commands").rglob("*.py")}
    assert {p: m for p, m in commands.items() if m} == {}
