"""Hostile input: configs and models that others send are data, never code.

- YAML: Python tags refused with a clear message; an alias bomb refused at once.
- Models: `.keras` in Keras safe mode only; a Lambda layer or a class from outside Keras is
  refused with the reason; .h5, SavedModel directories and URLs need --unsafe, which unlocks
  that one load and never the process; Keras older than 3.13.2 is refused.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

LINEAR = {
    "name": "lin", "seed": 0,
    "data": {"dataset": "synthetic_regression", "options": {"num_examples": 16}, "batch_size": 8,
             "validation": "none"},
    "model": {"type": "linear"}, "loss": "mse",
    "training": {"epochs": 1},
}


# -- YAML -------------------------------------------------------------------------------------

def test_python_tags_are_refused_and_never_run(cli, write_config, tmp_path):
    marker = tmp_path / "pwned"
    config = write_config(f'name: !!python/object/apply:os.system ["touch {marker}"]\n'
                          "data: {dataset: mnist}\nloss: mse\n")
    result = cli("validate", config)
    assert result.exit_code == 2
    assert "refused YAML tag" in result.output and "configs hold plain data only" in result.output
    assert not marker.exists()
    result = cli("validate", write_config(LINEAR), "--set", f'name=!!python/object/apply:os.system ["touch {marker}"]')
    assert result.exit_code == 2 and "refused YAML tag" in result.output
    assert not marker.exists()


def test_an_alias_bomb_is_refused_quickly(cli, write_config):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):  # 9 levels of 9 aliases: 9**9 (387 million) strings once expanded
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    config = write_config("\n".join(lines) + "\n")
    started = time.perf_counter()
    result = cli("validate", config)
    seconds = time.perf_counter() - started
    assert result.exit_code == 2 and "alias bomb" in result.output
    assert seconds < 2, f"took {seconds:.1f}s"


# -- models -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch run (y = w*x + b, one input) to evaluate models against."""
    import yaml
    from typer.testing import CliRunner

    from tftrain.cli import app

    root = tmp_path_factory.mktemp("security")
    (root / "c.yaml").write_text(yaml.safe_dump(LINEAR))
    result = CliRunner().invoke(app, ["run", str(root / "c.yaml"), "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


def _lambda_model():
    import keras

    return keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda x: x * 2.0, name="double"),
                             keras.layers.Dense(1)])


def test_runs_own_models_load_in_safe_mode(cli, trained):
    for which in ("best", "last"):
        result = cli("evaluate", trained, "--checkpoint", which, "--json")
        assert result.exit_code == 0, result.output
    result = cli("evaluate", trained, "--checkpoint", "lats")
    assert result.exit_code == 2 and "--checkpoint: expected last, best or a model file, got 'lats'" in result.output


def test_a_lambda_layer_is_refused_with_the_reason(cli, trained, tmp_path):
    path = tmp_path / "lambda.keras"
    _lambda_model().save(path)
    result = cli("evaluate", trained, "--checkpoint", path)
    assert result.exit_code == 2
    assert "layer 'double' is a Lambda layer, a Python function stored in the file" in result.output
    assert "Keras safe mode" in result.output and "--unsafe" in result.output
    # Explicitly trusted: it loads (and its function runs), for this one load only.
    from keras.src.saving import serialization_lib

    result = cli("evaluate", trained, "--checkpoint", path, "--unsafe", "--json")
    assert result.exit_code == 0, result.output
    assert serialization_lib.in_safe_mode() is not False  # never switched off for the process
    assert cli("evaluate", trained, "--checkpoint", path).exit_code == 2


def test_classes_from_outside_keras_are_refused(cli, trained, tmp_path):
    """A .keras whose config names a class from another module (the sender's code) is refused,
    even if that module could be imported here."""
    import keras

    source, path = tmp_path / "plain.keras", tmp_path / "custom.keras"
    keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="out")]).save(source)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = config["config"]["layers"][-1]
                layer.update(module="os", class_name="system", registered_name="evil>system")
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    result = cli("evaluate", trained, "--checkpoint", path)
    assert result.exit_code == 2
    assert "it uses 'evil>system', a class that is not part of Keras" in result.output


@pytest.mark.parametrize("kind", ["h5", "saved_model", "url", "other"])
def test_other_formats_need_unsafe(cli, trained, tmp_path, kind):
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    if kind == "h5":
        target = tmp_path / "model.h5"
        model.save(target)
        reason = "legacy HDF5 model"
    elif kind == "saved_model":
        target = tmp_path / "exported"
        model.export(target, verbose=False)
        reason = "TensorFlow SavedModel"
    elif kind == "url":
        target = "https://example.com/model.keras"
        reason = "a URL"
    else:
        target = tmp_path / "model.pkl"
        target.write_bytes(b"not a model")
        reason = "not a .keras file"
    result = cli("evaluate", trained, "--checkpoint", target)
    assert result.exit_code == 2
    assert f"{target}: refused: " in result.output and reason in result.output and "--unsafe" in result.output
    if kind in ("h5", "saved_model"):
        result = cli("evaluate", trained, "--checkpoint", target, "--unsafe", "--json")
        assert result.exit_code == 0, result.output


def test_keras_older_than_the_cve_fixes_is_refused():
    from tftrain.errors import TftrainError
    from tftrain.security import check_keras_version

    for ok in ("3.13.2", "3.14.0", "4.0.0rc1"):
        check_keras_version(ok)
    for old in ("3.13.1", "3.8.0", "2.15.0"):
        with pytest.raises(TftrainError, match=f"keras {old} is installed, but tftrain needs keras >= 3.13.2"):
            check_keras_version(old)
    check_keras_version()  # the installed one passes


def test_nothing_enables_unsafe_deserialization_globally():
    offenders = [p for p in (REPO / "tftrain").rglob("*.py")
                 if "enable_unsafe_deserialization" in p.read_text() or "safe_mode=False" in p.read_text()]
    assert offenders == []
