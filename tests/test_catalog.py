"""The TF-free catalog must match what Keras really accepts, and the dataset registries agree."""

from __future__ import annotations

import inspect
import subprocess
import sys

import keras
import pytest

from tftrain import catalog


def _accepted(cls) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        names |= {p for p in inspect.signature(klass.__init__).parameters if p not in ("self", "kwargs", "args")}
    return names


@pytest.mark.parametrize("table,module", [
    (catalog.OPTIMIZERS, keras.optimizers),
    (catalog.LOSSES, keras.losses),
    (catalog.METRICS, keras.metrics),
])
def test_catalog_parameters_exist_in_keras(table, module):
    for name, (class_name, params) in table.items():
        cls = module.deserialize({"class_name": class_name, "config": {}}).__class__
        missing = set(params) - _accepted(cls)
        assert not missing, f"{name}: {sorted(missing)} not accepted by {cls.__name__}"


def test_dataset_registry_matches_catalog():
    from tftrain.data import DATASETS

    assert set(DATASETS) == set(catalog.DATASETS)


def test_cli_and_validate_do_not_import_tensorflow(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {dataset: synthetic_regression}\nmodel: {type: linear}\nloss: mse\n")
    code = ("import sys\nfrom tftrain.cli import app\n"
            "try:\n    app(['validate', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'\n")
    result = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
