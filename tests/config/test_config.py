"""Config validation and bad input: one line naming the key, exit 2, nothing written (issue 2)."""

from __future__ import annotations

import pytest
import yaml

from tftrain.errors import ConfigError
from tftrain.spec.loading import apply_override, load_config
from tftrain.spec.schema import Config

BASE = {
    "data": {"dataset": "synthetic_regression", "batch_size": 8},
    "model": {"type": "linear"},
    "loss": "mse",
}


def _with(**changes):
    """BASE with nested changes given as dotted keys: _with(**{"data.batch_size": 0})."""
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes.items():
        apply_override(raw, f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"
                       if not isinstance(value, str) else f"{key}={value}")
    return raw


BAD_CONFIGS = [
    # (raw config, text the one-line message must contain)
    ({**BASE, "optimiser": {"name": "sgd"}}, "unknown key 'optimiser' — did you mean 'optimizer'?"),
    (_with(**{"training.epochs": "many"}), 'training.epochs: expected a positive integer, got "many"'),
    ({**BASE, "training": {"epochs": "3"}}, 'training.epochs: expected a positive integer, got "3"'),
    (_with(**{"data.batch_size": 0}), "data.batch_size: expected a positive integer, got 0"),
    (_with(**{"data.batch_size": "big"}), 'data.batch_size: expected a positive integer, got "big"'),
    (_with(**{"data.dataset": "mnsit"}), "did you mean 'mnist'?"),
    (_with(**{"model.type": "dnse"}), "model.type: unknown model type \"dnse\" — did you mean 'dense'?"),
    ({**BASE, "optimizer": {"name": "adm"}}, "did you mean 'adam'?"),
    ({**BASE, "optimizer": {"name": "sgd", "momentm": 0.9}}, "did you mean 'momentum'?"),
    ({**BASE, "loss": "mean_squared_eror"}, "did you mean 'mean_squared_error'?"),
    ({**BASE, "metrics": ["acuracy"]}, "did you mean 'accuracy'?"),
    ({**BASE, "model": {"type": "linear", "w_int": 1.0}}, "unknown key 'w_int' in 'model' — did you mean 'w_init'?"),
    (_with(**{"data.validation": 1.5}), "data.validation: expected 'test', 'none' or a fraction"),
    (_with(**{"data.options": {"nosie": 0.0}}), "unknown option 'nosie' for dataset synthetic_regression — did you mean 'noise'?"),
    ({**BASE, "training": {"sampling": "with_replacement"}}, "set training.steps"),
    ({**BASE, "training": {"loop": "gradienttape"}}, "training.loop: unknown value"),
    ({**BASE, "name": "../escape"}, "name: expected letters, digits"),
    ({"data": BASE["data"], "model": BASE["model"]}, "loss: required key is missing"),
    ({**BASE, "optimizer": {"name": "sgd", "learning_rate": "0.1"}}, 'optimizer.learning_rate: expected a number, got "0.1"'),
]


@pytest.mark.parametrize("raw,expected", BAD_CONFIGS, ids=[e for _, e in BAD_CONFIGS])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(raw, expected, write_config, cli, tmp_path):
    path = write_config(raw)
    runs = tmp_path / "runs"
    result = cli("run", path, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not runs.exists()
    assert cli("validate", path).exit_code == 2


@pytest.mark.parametrize("text,expected", [
    ("data: [unclosed", "invalid YAML"),
    ("!!python/object/apply:os.system ['echo hacked']", "refused YAML tag"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_yaml_exit_2(text, expected, write_config, cli):
    result = cli("validate", write_config(text))
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output


def test_missing_config_file(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "no such config file" in result.output


def test_defaults_are_filled_and_resolved_config_round_trips(write_config, tmp_path):
    path = write_config(BASE, name="my run.yaml")
    config = load_config(path)
    assert config.name == "my-run"  # from the file name, made safe
    assert config.training.loop == "fit" and config.optimizer.learning_rate == 0.01
    assert config.data.options["num_examples"] == 201  # dataset defaults are filled in
    again = tmp_path / "again.yaml"
    again.write_text(config.to_yaml())
    assert load_config(again) == config


def test_set_overrides_any_key_and_is_validated_like_the_file(write_config):
    path = write_config(BASE)
    config = load_config(path, ["optimizer.learning_rate=0.5", "training.epochs=2",
                                "loss.reduction=sum", "data.options.noise=0.0"])
    assert config.optimizer.learning_rate == 0.5 and config.training.epochs == 2
    assert config.loss.name == "mse" and config.loss.params == {"reduction": "sum"}
    assert config.data.options["noise"] == 0.0
    with pytest.raises(ConfigError, match='training.epochs: expected a positive integer, got "x"'):
        load_config(path, ["training.epochs=x"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["training.epochs"])


def test_config_is_frozen(write_config):
    config = load_config(write_config(BASE))
    with pytest.raises(Exception):
        config.seed = 3  # type: ignore[misc]


def test_show_prints_every_default(write_config, cli):
    result = cli("show", write_config(BASE), "--set", "training.epochs=2")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown["training"]["epochs"] == 2 and shown["training"]["loop"] == "fit"
    Config.model_validate(shown)


def test_every_seed_config_validates(cli):
    from conftest import CONFIGS

    for path in sorted(CONFIGS.glob("*.yaml")):
        result = cli("validate", path)
        assert result.exit_code == 0, (path, result.output)


_BUILT = """
import json, sys
import pydantic.plugin._loader as plugins
from tftrain.spec.datasets import DATASETS
from tftrain.spec.loading import load_config
load_config(sys.argv[1])
built = sorted(name for name, entry in DATASETS.items() if entry.options.__pydantic_complete__)
print(json.dumps({"built": built, "plugins_looked_up": plugins._plugins is not None}))
"""


def test_validating_a_config_builds_only_what_it_uses(write_config):
    """Schema classes are built on first use (issue 21): a config builds its own dataset's
    options class and no other, so each dataset (or other per-name schema) added to the catalog
    costs `validate` nothing until a config names it; pydantic's plugin lookup (a scan of every
    installed distribution) is skipped."""
    import json
    import subprocess
    import sys

    from conftest import REPO

    path = write_config({**BASE, "data": {"dataset": "csv", "path": "x.csv", "validation": 0.1,
                                          "options": {"label": "y"}},
                         "loss": "sparse_categorical_crossentropy", "model": {"type": "dense"}}, name="csv.yaml")
    done = subprocess.run([sys.executable, "-c", _BUILT, str(path)], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"built": ["csv"], "plugins_looked_up": False}


def test_a_name_table_can_be_loaded_on_first_use():
    """NameCheck(kind, loader): the loader runs only when a value is checked (a config that
    leaves the field unset never imports the table) and `tftrain schema` reads the same names."""
    from pydantic import field_validator

    from tftrain.commands.schema import _name_checks
    from tftrain.spec.base import NameCheck, Strict

    calls = []

    def layers():
        calls.append(1)
        return {"dense": "Dense", "conv2d": "Conv2D"}

    class WithTable(Strict):
        layer: str | None = None  # unset: no table needed

        _known = field_validator("layer")(NameCheck("layer", layers))

    assert WithTable.model_validate({}).layer is None and not calls
    assert WithTable.model_validate({"layer": "conv2d"}).layer == "conv2d" and calls
    with pytest.raises(Exception, match="unknown layer \"conv2\" — did you mean 'conv2d'"):
        WithTable.model_validate({"layer": "conv2"})
    assert sorted(_name_checks(WithTable)["layer"].names) == ["conv2d", "dense"]
