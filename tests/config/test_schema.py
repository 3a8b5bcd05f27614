"""The JSON Schema of config files (`tftrain schema`, issue 17): valid draft-07, derived from the
schema classes (comments as descriptions, catalog names as enums), accepting every file in
configs/ and rejecting the bad configs of test_config that a schema of a file can express."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from tests.config.test_config import BAD_CONFIGS
from tests.conftest import CONFIGS
from tftrain.commands.schema import config_schema, field_comments
from tftrain.models import MODEL_TYPES, TAGS
from tftrain.spec import catalog
from tftrain.spec.base import NameCheck
from tftrain.spec.datasets import DATASETS
from tftrain.spec.loading import load_config

# Rules about keys being present, which a file that is a fragment (extended by or extending
# others) need not satisfy: `tftrain validate` checks them on the composed config.
NEEDS_THE_COMPOSED_CONFIG = {"set training.steps", "loss: required key is missing"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return config_schema()


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Draft7Validator:
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _plain(prop: dict) -> dict:
    """The restricted branch of a string that may also be a `${env:...}` reference."""
    branches = prop.get("anyOf", [])
    if len(branches) == 2 and branches[1].get("pattern") == r"\$\{env:":
        return branches[0]
    return prop


def _walk(node):
    """Every mapping in a JSON document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_schema_is_draft_07_and_requires_no_key(schema, validator):
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    text = json.dumps(schema)
    assert "$defs" not in text and "prefixItems" not in text  # keywords draft-07 editors do not read
    # `required` only inside the if/then clauses that pick a dataset's options or a component's names
    for node in _walk(schema):
        if "required" in node:
            assert set(node) <= {"properties", "required"}, node
    assert validator.is_valid({}) and validator.is_valid({"training": {"epochs": 2}})  # fragments are files too


def test_every_file_in_configs_validates(validator):
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 15 and any("extends" in path.read_text() for path in files)
    for path in files:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path, errors)


@pytest.mark.parametrize("raw,expected", BAD_CONFIGS, ids=[e for _, e in BAD_CONFIGS])
def test_the_bad_configs_that_a_file_schema_can_express_are_rejected(raw, expected, validator):
    if expected in NEEDS_THE_COMPOSED_CONFIG:
        assert validator.is_valid(raw)  # a fragment may leave it to another file
    else:
        assert not validator.is_valid(raw), expected


def test_the_good_configs_of_the_templates_and_extends_validate(validator, tmp_path, cli):
    from tftrain.commands.init import TEMPLATES

    for template in TEMPLATES:
        path = tmp_path / f"{template}.yaml"
        assert cli("init", "--template", template, path).exit_code == 0
        assert validator.is_valid(yaml.safe_load(path.read_text())), template
    assert validator.is_valid({"extends": ["a.yaml", "b.yaml"], "data": {"path": "${env:DATA,/data}"}})
    # files are checked as written: a reference stands for a value only composition knows
    assert validator.is_valid({"name": "run-${env:USER}", "data": {"dataset": "${env:DATASET,mnist}"},
                               "model": {"type": "${env:MODEL}"}, "loss": "${env:LOSS}"})
    assert not validator.is_valid({"extends": 3}) and not validator.is_valid({"extends": [""]})


def test_names_are_enums_derived_from_the_catalog_and_the_model_registry(schema):
    definitions = schema["definitions"]
    assert _plain(definitions["DataConfig"]["properties"]["dataset"])["enum"] == sorted(DATASETS)
    branches = schema["properties"]["model"]["anyOf"]
    assert [_plain(definitions[b["$ref"].rsplit("/", 1)[1]]["properties"]["type"])["const"]
            for b in branches] == list(TAGS)
    for cls, table, aliases in [("LossConfig", catalog.LOSSES, catalog.LOSS_ALIASES),
                                ("MetricConfig", catalog.METRICS, catalog.METRIC_ALIASES),
                                ("OptimizerConfig", catalog.OPTIMIZERS, {})]:
        names = sorted({*table, *aliases})
        bare, block = definitions[cls]["anyOf"]
        assert _plain(bare)["enum"] == names and _plain(block["properties"]["name"])["enum"] == names
    # every field of every model type that a NameCheck validates (activations today) lists its names
    checked = 0
    for model in MODEL_TYPES:
        for decorator in model.__pydantic_decorators__.field_validators.values():
            if isinstance(decorator.func, NameCheck):
                for field in decorator.info.fields:
                    prop = _plain(definitions[model.__name__]["properties"][field])  # `str`
                    strings = [_plain(b) for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]  # `str | None`
                    assert strings and all(b["enum"] == sorted(decorator.func.names) for b in strings)
                    checked += 1
    assert checked >= 5


def test_a_components_parameters_follow_its_name(validator):
    assert validator.is_valid({"optimizer": {"name": "adam", "beta_1": 0.8}})
    assert not validator.is_valid({"optimizer": {"name": "sgd", "beta_1": 0.8}})  # an Adam parameter
    assert validator.is_valid({"loss": {"name": "mse", "reduction": "sum"}, "metrics": ["mae", {"name": "auc", "curve": "PR"}]})
    assert not validator.is_valid({"loss": {"name": "mse", "from_logits": True}})
    assert validator.is_valid({"data": {"dataset": "csv", "options": {"label": "y", "task": "regression"}}})
    assert not validator.is_valid({"data": {"dataset": "csv", "options": {"label": "y", "task": "guess"}}})
    assert not validator.is_valid({"data": {"dataset": "mnist", "options": {"label": "y"}}})  # takes none


def test_descriptions_are_the_comments_beside_the_defaults(schema):
    definitions = schema["definitions"]
    assert definitions["DataConfig"]["properties"]["batch_size"]["description"] == "Keras's default batch size"
    assert definitions["CsvOptions"]["properties"]["task"]["description"].startswith("auto: whole non-negative")
    assert schema["properties"]["training"]["description"] == "model.fit for 5 epochs"
    assert schema["properties"]["extends"]["description"].startswith("Files to compose first")
    # every key with a default says why, in every class of the schema
    missing = [f"{name}.{key}" for name, definition in definitions.items()
               for block in [definition, *definition.get("anyOf", [])] if "properties" in block
               for key, prop in block["properties"].items()
               if "default" in prop and not prop.get("description")]
    missing += [key for key, prop in schema["properties"].items() if not prop.get("description")]  # top level: all
    assert not missing


class _Commented(BaseModel):
    """A schema class written the ways the team writes them."""

    kind: Literal["a", "b"]
    inline: int = 3  # the comment on the line
    # a comment on the lines
    # above the field
    above: str = "x"
    spanning: Literal["one", "two",
                      "three"] = "one"  # on the last line of a field written over two
    bare: bool = False


class _Child(_Commented):
    inline: int = 4  # the subclass's own reason


def test_field_comments_are_read_from_the_source():
    assert field_comments(_Commented) == {"inline": "the comment on the line",
                                          "above": "a comment on the lines above the field",
                                          "spanning": "on the last line of a field written over two"}
    assert field_comments(_Child)["inline"] == "the subclass's own reason"
    assert field_comments(_Child)["above"] == "a comment on the lines above the field"


def test_schema_command_prints_or_writes_the_schema(cli, tmp_path, schema):
    printed = cli("schema")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == schema
    target = tmp_path / "tftrain.schema.json"
    written = cli("schema", "--output", target)
    assert written.exit_code == 0 and written.stdout.strip() == str(target)
    assert json.loads(target.read_text()) == schema
    for bad, says in [(tmp_path, "is a folder"), (tmp_path / "no" / "s.json", "does not exist")]:
        result = cli("schema", "--output", bad)
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert not (tmp_path / "no").exists()


def test_init_points_editors_at_the_schema(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    assert cli("init", "--template", "regression", "configs/r.yaml").exit_code == 0
    first = (tmp_path / "configs" / "r.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../tftrain.schema.json"  # relative to the file
    result = cli("init", "--schema", "schemas/tf.json", "here.yaml")
    assert result.exit_code == 0
    assert (tmp_path / "here.yaml").read_text().startswith("# yaml-language-server: $schema=schemas/tf.json\n")
    assert "tftrain schema --output schemas/tf.json" in result.stderr  # the file is not there yet: say how
    assert load_config(tmp_path / "here.yaml").data.dataset == "fashion_mnist"
