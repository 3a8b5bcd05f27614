"""The TF-free catalog must match what Keras really accepts, and the dataset registries agree."""

from __future__ import annotations

import inspect
import subprocess
import sys

import keras
import pytest

from tftrain.spec import catalog
from tftrain.spec.schedules import SCHEDULES, schedule_own_keys


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
        cls = getattr(module, class_name)  # (deserializing would need the required arguments some take)
        missing = set(params) - _accepted(cls)
        assert not missing, f"{name}: {sorted(missing)} not accepted by {cls.__name__}"


def test_schedules_exist_in_keras_with_these_arguments():
    """Every schedule's keys, but tftrain's own (warmup for schedules Keras gives none,
    boundary_epochs), are arguments of its Keras class; the required ones are required there too."""
    for name, (class_name, schema) in SCHEDULES.items():
        cls = getattr(keras.optimizers.schedules, class_name)
        keys = set(schema.model_fields) - schedule_own_keys(schema)
        parameters = inspect.signature(cls.__init__).parameters
        assert keys <= set(parameters), f"{name}: {sorted(keys - set(parameters))} not accepted by {class_name}"
        required = {p for p, v in parameters.items() if v.default is inspect.Parameter.empty and p != "self"}
        assert required <= keys | {"boundaries"}, f"{name}: {class_name} requires {sorted(required - keys)}"


def test_augmentations_exist_in_keras_with_these_arguments():
    for name, (class_name, params) in catalog.AUGMENTATIONS.items():
        cls = getattr(keras.layers, class_name)
        missing = set(params) - _accepted(cls)
        assert not missing, f"{name}: {sorted(missing)} not accepted by {class_name}"
        assert "seed" in _accepted(cls)  # tftrain seeds every one of them
        assert issubclass(cls, keras.layers.Layer)
    assert catalog.LABEL_MIXING <= set(catalog.AUGMENTATIONS)


@pytest.mark.parametrize("table,module", [
    (catalog.OPTIMIZERS, keras.optimizers),
    (catalog.LOSSES, keras.losses),
    (catalog.METRICS, keras.metrics),
])
def test_every_parameter_has_a_rule_that_keras_defaults_pass(table, module):
    """validate checks each parameter's value (type, range); the rules must agree with Keras:
    every default in Keras's signatures passes them."""
    for name, (class_name, params) in table.items():
        cls = getattr(module, class_name)  # (deserializing would need the required arguments some take)
        defaults = {}
        for klass in reversed(cls.__mro__):
            if klass is not object and "__init__" in vars(klass):
                defaults.update({p.name: p.default for p in inspect.signature(klass.__init__).parameters.values()
                                 if p.default is not inspect.Parameter.empty})
        for param in params:
            rule = catalog.PARAMETERS.get(param)
            assert rule is not None, f"{name}.{param} has no rule in catalog.PARAMETERS"
            default = defaults.get(param)
            if default is not None and param != "name":
                assert rule.problem(default) is None, f"{name}.{param}: Keras's default {default!r} fails the rule"


def test_parameter_rules_refuse_wrong_types_and_ranges():
    rules = catalog.PARAMETERS
    assert rules["from_logits"].problem("true") == 'expected true or false, got "true"'
    assert rules["label_smoothing"].problem(1.5) == "expected a finite number in [0, 1], got 1.5"
    assert rules["beta_1"].problem(1.0) and rules["beta_1"].problem(0.9) is None
    assert rules["clipnorm"].problem(None) is None and rules["clipnorm"].problem(0) is not None
    assert rules["num_thresholds"].problem(10**9) and rules["num_thresholds"].problem(200) is None
    assert rules["epsilon"].problem(float("nan")) and rules["k"].problem(2.5)
    assert rules["thresholds"].problem([0.2, 0.5]) is None and rules["thresholds"].problem([0.2, 3])


def test_dataset_registry_matches_catalog():
    from tftrain.data import LOADERS
    from tftrain.spec.datasets import DATASETS

    assert set(LOADERS) == set(DATASETS)


def test_cli_and_validate_do_not_import_tensorflow(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data: {dataset: synthetic_regression}\nmodel: {type: linear}\nloss: mse\n")
    code = ("import sys\nfrom tftrain.cli import app\n"
            "try:\n    app(['validate', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'\n")
    result = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
