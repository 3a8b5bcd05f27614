"""The config layer (tftrain.spec): it stands alone at the bottom of the house, and RunFacts is
the one answer to "does this run validate, what does it log" that every command asks."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tftrain.errors import ConfigError
from tftrain.spec.checks import CHECKS, RunFacts
from tftrain.spec.loading import validate
from tftrain.spec.tune import read_spec
from tftrain.spec.tune_checks import check_against

SPEC = REPO / "tftrain" / "spec"
# What spec may import of tftrain: itself, the error classes, the model types' schema classes, and
# the plugins module (validate imports the modules a config names, to check their registered names).
ALLOWED = ("tftrain.spec", "tftrain.errors", "tftrain.models", "tftrain.plugins")


def _tftrain_imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tftrain"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tftrain")}
    return found


def test_spec_imports_nothing_of_tftrain_above_it():
    above = {f"{path.name}: {module}" for path in SPEC.glob("*.py") for module in _tftrain_imports(path)
             if not module.startswith(ALLOWED) or module.startswith("tftrain.models.")}
    assert not above, above


def test_spec_imports_no_tensorflow_in_a_fresh_process(tmp_path):
    code = """
import json, sys
import tftrain.spec.loading, tftrain.spec.tune_checks, tftrain.spec.datasets
from tftrain.spec.loading import load_config
load_config(sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "numpy", "optuna"))
print(json.dumps(heavy))
"""
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "configs" / "mnist_dense.yaml")],
                          capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def _config(dataset: str, validation="test", **options):
    return validate({"name": "t", "data": {"dataset": dataset, "validation": validation, "options": options},
                     "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]})


@pytest.mark.parametrize(("dataset", "options", "validation", "expected"), [
    ("mnist", {}, "test", "test"),
    ("tfds", {"name": "mnist"}, "test", "test"),  # split_test: test is the default
    ("tfds", {"name": "mnist", "split_test": None}, 0.2, "fraction"),
    ("npz", {}, "test", "maybe"),  # the file says: known when it is read
    ("synthetic_binary", {}, "test", "none"),  # generated data has no test split
    ("mnist", {}, "none", "none"),
])
def test_run_facts_know_where_validation_comes_from(dataset, options, validation, expected):
    facts = RunFacts.of(_config(dataset, validation, **options))
    assert facts.validation == expected
    assert ("val_accuracy" in facts.logged) == (expected != "none")
    assert facts.task == "classes" and facts.read_as == "multiclass"


def test_tune_on_a_tfds_config_with_a_test_split_optimizes_val_loss():
    """The bug three owners made: tune believed a tfds config logs no val_* values."""
    base = _config("tfds", name="mnist")
    space = {"space": {"optimizer.learning_rate": {"loguniform": [0.001, 0.1]}}}
    assert check_against(read_spec(space, "space"), base) == ("val_loss", "minimize")
    chosen = read_spec({**space, "objective": {"metric": "val_accuracy"}}, "space")
    assert check_against(chosen, base) == ("val_accuracy", "maximize")


def test_tune_refuses_val_metrics_where_the_run_has_no_validation():
    base = _config("synthetic_binary", validation="none")
    spec = read_spec({"space": {"optimizer.learning_rate": {"loguniform": [0.001, 0.1]}},
                      "objective": {"metric": "val_accuracy"}}, "space")
    with pytest.raises(ConfigError, match="no validation data"):
        check_against(spec, base)


def test_checks_are_a_registry_of_named_functions_with_docstrings():
    names = [check.__name__ for check in CHECKS]
    assert len(names) == len(set(names)) >= 5
    assert all(check.__doc__ for check in CHECKS)
