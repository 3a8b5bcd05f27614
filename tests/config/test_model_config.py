"""Model configs of any Keras model, checked without TensorFlow (issue 15): layer names and
arguments against the catalog, graphs (cycles, unknown and unused nodes, repeated groups),
backbones, init_from; each mistake one line, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import CONFIGS, REPO
from tftrain.spec.loading import validate

BASE = {"data": {"dataset": "npz", "path": "unused.npz"},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}}


def _seq(*layers):
    return {**BASE, "model": {"type": "sequential", "layers": list(layers)}}


def _graph(*nodes):
    return {**BASE, "model": {"type": "graph", "nodes": list(nodes)}}


def _node(name, layer, *inputs):
    return {"name": name, "layer": layer, **({"inputs": list(inputs)} if inputs else {})}


BAD = [
    (_seq({"conv2": {"filters": 8}}), "model.layers[0]: unknown layer \"conv2\" — did you mean 'conv2d'?"),
    (_seq({"conv2d": {"filter": 8, "kernel_size": 3}}),
     "model.layers[0] (conv2d): unknown parameter \"filter\" — did you mean 'filters'?; valid: filters, kernel_size"),
    (_seq({"conv2d": {"filters": "8", "kernel_size": 3}}),
     'model.layers[0] (conv2d).filters: expected an integer, got "8"'),
    (_seq({"conv2d": {"filters": 8, "kernel_size": 3, "padding": "smae"}}),
     "model.layers[0] (conv2d).padding: unknown value \"smae\" — did you mean 'same'?; expected one of: same, valid"),
    (_seq({"dense": {}}), "model.layers[0] (dense): required parameter 'units' is missing"),
    (_seq({"dense": {"units": 4, "activation": "rleu"}}),
     "model.layers[0] (dense).activation: unknown activation \"rleu\" — did you mean 'relu'?"),
    (_seq({"dense": {"units": 4, "kernel_regularizer": {"l3": 0.1}}}),
     'model.layers[0] (dense).kernel_regularizer: unknown regularizer "l3"'),
    (_seq({"dense": {"units": 4, "kernel_initializer": {"he_normal": {"sed": 1}}}}),
     "model.layers[0] (dense).kernel_initializer (he_normal): unknown parameter \"sed\" — did you mean 'seed'?"),
    (_seq({"dense": {"units": 4, "quantization_config": {}}}),
     "model.layers[0] (dense): parameter 'quantization_config' is not offered"),
    (_seq("flatten", {"lambda": {"function": "x"}}),
     'model.layers[1]: layer "lambda" is refused: a Lambda layer is a Python function; runs code'),
    (_seq({"Lambda": {}}), 'model.layers[0]: layer "Lambda" is refused: a Lambda layer is a Python function'),
    (_seq({"my_package>MyLayer": {}}),  # a plugin's layer (tests/security/test_plugins.py), with no plugin named
     'model.layers[0]: layer "my_package>MyLayer" is a plugin\'s registered name, but the config names no plugins'),
    (_seq({"my_package.MyLayer": {}}), "is refused: it is not a built-in Keras layer; a layer of your own is a plugin's"),
    (_seq({"TFSMLayer": {"filepath": "x"}}), "it loads and runs a TensorFlow SavedModel"),
    (_seq({"bidirectional": {"layer": {"lstmm": 4}}}),
     "model.layers[0] (bidirectional).layer: unknown layer \"lstmm\" — did you mean 'lstm'?"),
    (_seq({"dense": 4, "flatten": {}}), "model.layers[0]: expected a layer: a name, or a mapping of one name"),
    (_seq({"repeat": 0, "layers": ["flatten"]}), "model.layers[0].repeat: expected a positive integer, got 0"),
    (_seq({"repeat": 2, "layer": ["flatten"]}), "model.layers[0]: unknown key \"layer\" in a repeated group"),
    (_seq({"dense": {"units": 4, "name": "x"}}, {"dense": {"units": 4, "name": "x"}}),
     "model.layers: layer name 'x' is used twice"),
    ({**BASE, "model": {"type": "sequential", "layers": []}}, "model.layers: expected a non-empty list of layers"),
    (_graph(_node("a", "flatten"), _node("b", {"dense": 4}, "a", "c"), _node("c", "add", "a", "b")),
     "model.nodes[1] (b).inputs: dense takes one input, got 2"),
    (_graph(_node("a", {"dense": 4}, "b"), _node("b", {"dense": 4}, "a"), _node("out", "add", "input", "b")),
     "the graph has a cycle: a -> b -> a"),
    (_graph(_node("a", "flatten"), _node("b", {"dense": 4}, "z")),
     "model.nodes[1] (b).inputs: unknown node \"z\"; known here: a, b, input"),
    (_graph(_node("a", "flatten"), _node("c2", {"dense": 4}, "a"), _node("out", {"dense": 4}, "a")),
     "model.nodes[1] (c2): no node uses its output (the last node, out, is the model's output)"),
    (_graph(_node("a", "flatten"), _node("sum", "add", "a")), "model.nodes[1] (sum).inputs: add merges several inputs, got 1"),
    (_graph(_node("input", "flatten")), "model.nodes[0].name: 'input' names the model's input"),
    (_graph(_node("a", "flatten"), _node("a", {"dense": 4})), "model.nodes[1]: name 'a' is used twice (also model.nodes[0])"),
    (_graph({"name": "g", "repeat": 2, "nodes": [_node("a", {"dense": 4}, "b")]}),
     "model.nodes[0].nodes[0] (a).inputs: unknown node \"b\""),
    (_graph({"name": "g", "repeat": 2, "inputs": ["input", "input"], "nodes": [_node("a", {"dense": 4})]}),
     "model.nodes[0] (g).inputs: a group takes one input"),
    (_graph(_node("a", {"dense": {"units": 4, "name": "x"}})), "a node's layer takes the node's name"),
    (_graph({"name": "a", "layr": "flatten"}), "model.nodes[0]: unknown key \"layr\" in a node — did you mean 'layer'?"),
    ({**BASE, "model": {"type": "application", "name": "mobilenet_v3_smal"}},
     "model.name: unknown backbone \"mobilenet_v3_smal\" — did you mean 'mobilenet_v3_small'?"),
    ({**BASE, "model": {"type": "application", "name": "mobilenet_v2", "options": {"alfa": 0.5}}},
     "model.options: unknown option \"alfa\" for mobilenet_v2 — did you mean 'alpha'?"),
    ({**BASE, "model": {"type": "application", "name": "mobilenet_v2", "trainable": 0}}, "model.trainable"),
    ({**BASE, "model": {"type": "application", "name": "resnet50", "head": [{"dropot": 0.2}]}},
     "model.head[0]: unknown layer \"dropot\" — did you mean 'dropout'?"),
    ({**BASE, "model": {"type": "dense", "init_from": "old/model.h5"}},
     "model.init_from: 'old/model.h5' is a legacy HDF5 model, a format that can hold code"),
    ({**BASE, "model": {"type": "linear", "w_init": {"random_normall": {}}}},
     "model.w_init: expected a number or a Keras initializer; unknown initializer \"random_normall\""),
    ({**BASE, "model": {"type": "sequentail", "layers": []}}, "did you mean 'sequential'?"),
    # nested repeats would expand to 10**10 layers (a hang and gigabytes): counted, never expanded
    (_seq({"repeat": 100_000, "layers": [{"repeat": 100_000, "layers": [{"dense": {"units": 4}}]}]}, {"dense": {"units": 1}}),
     "model.layers: expands to 10,000,000,001 layers; a model has at most 10,000 (check the repeat counts)"),
    (_graph({"name": "block", "repeat": 5_001, "nodes": [_node("a", {"dense": {"units": 4}}),
                                                          _node("b", {"dense": {"units": 4}})]}),
     "model.nodes: expands to 10,002 layers; a model has at most 10,000"),
    ({**BASE, "data": {**BASE["data"], "normalize": "per_channel"},
      "model": {"type": "application", "name": "mobilenet_v3_small", "weights": None}},
     "data.normalize: per_channel would rescale the pixels a keras.applications backbone preprocesses itself"),
]


@pytest.mark.parametrize("raw, expected", BAD, ids=[e[:60] for _, e in BAD])
def test_bad_model_config_is_one_line_exit_2(raw, expected, cli, write_config, tmp_path):
    path = write_config(raw)
    result = cli("run", path, "--runs-dir", tmp_path / "runs")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()


def test_layer_entries_are_normalised_and_round_trip():
    config = validate(_seq("flatten", {"dropout": 0.25}, {"Conv2D": {"filters": 4, "kernel_size": [3, 3],
                                                                     "kernel_regularizer": {"l2": 1.0e-4}}},
                           {"activation": "relu"}, {"MaxPool2D": None}, {"re_lu": {"max_value": 6}}))
    assert config.model.layers == [
        {"flatten": {}}, {"dropout": {"rate": 0.25}},
        {"conv2d": {"filters": 4, "kernel_size": [3, 3], "kernel_regularizer": {"l2": {"l2": 1.0e-4}}}},
        {"activation": {"activation": "relu"}}, {"max_pooling2d": {}}, {"relu": {"max_value": 6}}]
    again = validate(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert [name for name, _ in config.model.layer_list()] == [
        "flatten", "dropout", "conv2d", "activation", "max_pooling2d", "relu"]
    assert config.model.output_activation_name() is None


def test_sequential_repeat_and_names():
    config = validate({**_seq({"repeat": 2, "layers": [{"dense": 8}, {"repeat": 2, "layers": [{"dropout": 0.1}]}]},
                              {"dense": {"units": 3, "activation": "softmax", "name": "head"}}),
                       "loss": "sparse_categorical_crossentropy"})
    names = [name for name, _ in config.model.layer_list()]
    assert names == ["dense", "dropout", "dropout_1", "dense_1", "dropout_2", "dropout_3", "head"]
    assert config.model.output_activation_name() == "softmax"


def test_graph_groups_expand_with_scoped_names_and_default_inputs():
    config = validate(_graph(
        _node("stem", {"dense": 4}),
        {"name": "block", "repeat": 3, "nodes": [_node("fc", {"dense": 4}), _node("add", "add", "input", "fc")]},
        _node("skip", "concatenate", "stem", "block"),
        _node("out", {"dense": {"units": 2, "activation": "sigmoid"}})) | {"loss": "binary_crossentropy"})
    nodes = config.model.graph()
    assert [(n.name, n.inputs) for n in nodes] == [
        ("stem", ("input",)), ("block_1_fc", ("stem",)), ("block_1_add", ("stem", "block_1_fc")),
        ("block_2_fc", ("block_1_add",)), ("block_2_add", ("block_1_add", "block_2_fc")),
        ("block_3_fc", ("block_2_add",)), ("block_3_add", ("block_2_add", "block_3_fc")),
        ("skip", ("stem", "block_3_add")), ("out", ("skip",))]
    assert config.model.output_activation_name() == "sigmoid"


def test_graph_nodes_may_come_in_any_order_and_run_in_dependency_order():
    config = validate(_graph(_node("b", {"dense": 4}, "a"), _node("a", {"dense": 4}, "input"),
                             _node("out", "add", "a", "b")))
    assert [n.name for n in config.model.graph()] == ["a", "b", "out"]


def test_show_prints_the_expanded_layers(cli):
    result = cli("show", CONFIGS / "cifar10_resnet20.yaml")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["model"]["nodes"][3]["repeat"] == 3  # stdout: the config as written, defaults filled in
    table = result.stderr
    assert "model: graph, 72 layers" in table
    assert "stage1_3_add" in table and "stage1_2_relu2, stage1_3_bn2" in table
    assert "kernel_regularizer=l2(l2=5e-05)" in table


def test_validate_of_a_200_layer_config_needs_no_tensorflow(tmp_path):
    """`validate` reads the catalog only (its speed is measured by bench/validate_speed.py)."""
    layers = [layer for i in range(100) for layer in (
        {"dense": {"units": 8 + i, "activation": "relu", "kernel_regularizer": {"l2": 1e-4}}}, {"dropout": 0.1})]
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(_seq(*layers)))
    code = ("import sys\nfrom tftrain.cli import app\n"
            "try:\n    app(['validate', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "sequential model" in done.stdout


@pytest.mark.parametrize("name", ["cifar10_resnet20", "fashion_mnist_cnn", "linear_regression_sgd"])
def test_new_seed_configs_validate(cli, name):
    result = cli("validate", CONFIGS / f"{name}.yaml")
    assert result.exit_code == 0, result.output
