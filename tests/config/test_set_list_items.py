"""Issue 32, item 8: `--set` addresses list items (`model.nodes[1].layer.conv2d.filters=32`), and
`epochs: 1e3` means the same to the editor's JSON Schema and to validate."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import CONFIGS


def test_set_reaches_into_lists(cli):
    result = cli("show", CONFIGS / "cifar10_resnet20.yaml", "--set", "model.nodes[0].layer.conv2d.filters=8",
                 "--set", "model.nodes.2.name=s2_first")
    assert result.exit_code == 0, result.output
    nodes = yaml.safe_load(result.stdout)["model"]["nodes"]
    assert nodes[0]["layer"]["conv2d"]["filters"] == 8 and nodes[2]["name"] == "s2_first"
    assert nodes[1]["name"] == "stem_bn"  # the rest as the file says


@pytest.mark.parametrize("key, message", [
    ("model.nodes[99].name", "--set model.nodes[99].name: model.nodes is a list of 26 items (0..25); "
                             "model.nodes[99] is not one of them"),
    ("model.nodes[0].layer.conv2d.filters[1]", "'model.nodes[0].layer.conv2d.filters' is an int, not a mapping"),
    ("model.nodes[x.name", "--set model.nodes[x.name: expected a key path such as model.nodes[1].layer.conv2d.filters"),
])
def test_set_on_a_missing_list_item_is_one_line(cli, key, message):
    result = cli("validate", CONFIGS / "cifar10_resnet20.yaml", "--set", f"{key}=1")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("epochs, valid", [(1000.0, True), (2.5, False), ("1000", False)])
def test_whole_numbers_written_as_floats_agree_with_the_json_schema(cli, write_config, epochs, valid):
    """YAML reads `epochs: 1e3` as 1000.0, which JSON Schema's `integer` accepts: so does validate
    (a fraction, or a quoted number, neither)."""
    import jsonschema

    from tftrain.commands.schema import config_schema

    raw = {"data": {"dataset": "synthetic_regression"}, "model": {"type": "linear"}, "loss": "mse",
           "training": {"epochs": epochs}}
    schema_ok = jsonschema.Draft202012Validator(config_schema()).is_valid(raw)
    result = cli("validate", write_config(raw))
    assert schema_ok == valid and (result.exit_code == 0) == valid, result.output
