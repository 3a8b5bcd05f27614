"""Issue 32, item 4: the editor schema knows what validate knows. Layer entries (sequential,
graph nodes, application heads), augmentation entries and backbone names follow tftrain's
catalogs, so `conv2dd:` and `filter:` are flagged as validate flags them; every shipped config
passes; hover text says what a key is, not why it has no default. Checked with the jsonschema
package, as an editor's YAML language server checks a file (YAML 1.2, draft-07)."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from tests.conftest import CONFIGS
from tftrain.spec.schedules import SCHEDULES


@pytest.fixture(scope="module")
def validator():
    from tftrain.commands.schema import config_schema

    return jsonschema.Draft7Validator(config_schema())


def _read(path):
    from tftrain.spec.safe_yaml import parse_yaml

    return parse_yaml(path.read_text(), source=str(path))


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_passes(validator, path):
    assert [e.message for e in validator.iter_errors(_read(path))] == []


SEQUENTIAL = {"data": {"dataset": "mnist"}, "loss": "sparse_categorical_crossentropy",
              "model": {"type": "sequential", "layers": [{"conv2d": {"filters": 8, "kernel_size": 3}}, "flatten",
                                                         {"dropout": 0.25}, {"repeat": 2, "layers": ["relu"]},
                                                         {"Dense": {"units": 10}}]}}


@pytest.mark.parametrize("change, wrong", [
    (lambda c: c["model"]["layers"].__setitem__(0, {"conv2dd": {"filters": 8, "kernel_size": 3}}), "conv2dd"),
    (lambda c: c["model"]["layers"].__setitem__(0, {"conv2d": {"filter": 8, "kernel_size": 3}}), "filter"),
    (lambda c: c["model"]["layers"].__setitem__(0, {"conv2d": {"filters": 8, "kernel_size": 3, "padding": "sam"}}),
     "sam"),
    (lambda c: c["model"]["layers"].__setitem__(1, "flaten"), "flaten"),
    (lambda c: c.__setitem__("model", {"type": "graph", "nodes": [{"name": "c", "layer": {"conv2dd": {}}}]}),
     "conv2dd"),
    (lambda c: c["data"].__setitem__("augmentation", [{"random_flipp": {}}]), "random_flipp"),
    (lambda c: c["data"].__setitem__("augmentation", [{"random_flip": {"mod": "horizontal"}}]), "mod"),
    (lambda c: c.__setitem__("model", {"type": "application", "name": "resnet5"}), "resnet5"),
])
def test_typos_validate_refuses_are_flagged_in_the_editor(validator, cli, write_config, change, wrong):
    assert not list(validator.iter_errors(SEQUENTIAL))
    config = copy.deepcopy(SEQUENTIAL)
    change(config)
    assert list(validator.iter_errors(config)), f"{wrong} not flagged"
    assert cli("validate", write_config(config)).exit_code == 2  # validate refuses it too


def _names(prop) -> set:
    """The names a string accepts (its branch beside the `${env:...}` pattern every string allows)."""
    return set(prop["enum"] if "enum" in prop else prop["anyOf"][0]["enum"])


def test_completions_and_hover_text(validator):
    from tftrain.commands.schema import config_schema

    schema = config_schema()
    definitions = schema["definitions"]
    assert {"conv2d", "batch_normalization", "Conv2D", "dense"} <= _names(definitions["Layer"]["anyOf"][0])
    conv2d = definitions["layer.conv2d"]["anyOf"][0]["properties"]
    assert _names(conv2d["padding"]) == {"valid", "same"} and "filters" in conv2d
    assert "mobilenet_v3_small" in _names(definitions["ApplicationModel"]["properties"]["name"])
    assert {"random_flip", "mix_up"} <= _names(definitions["Augmentation"]["anyOf"][0])
    rate = definitions["OptimizerConfig"]["anyOf"][1]["properties"]["learning_rate"]
    branches = [definitions[b["$ref"].rsplit("/", 1)[1]] for b in rate["anyOf"] if "$ref" in b]
    assert {b["properties"]["schedule"]["anyOf"][0]["const"] for b in branches} == set(SCHEDULES)
    assert "cosine_decay" in rate["description"]
    texts = [p.get("description", "") for d in definitions.values() for p in d.get("properties", {}).values()]
    assert not [t for t in texts if "no sensible default" in t or t.startswith("required:")]
    assert definitions["ApplicationModel"]["properties"]["name"]["description"].startswith("The keras.applications")
