"""The layer-list model types trained for real on tiny data (issue 15): a sequential CNN with batch
normalization, a residual graph, a keras.applications backbone (mobilenet_v3_small, weights
null, 32x32 and grey 28x28 images), init_from a finished run, mixed precision, --smoke,
evaluate, predict and export, and shape problems reported before any run directory exists."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.conftest import CONFIGS

CLASSES = 4


@pytest.fixture
def images(tmp_path) -> Path:
    """An .npz of 24 train / 8 test random 16x16x3 uint8 images, 4 classes."""
    rng = np.random.default_rng(3)
    path = tmp_path / "images.npz"
    np.savez(path, x_train=rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8),
             y_train=(np.arange(24) % CLASSES).astype(np.uint8),
             x_test=rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
             y_test=(np.arange(8) % CLASSES).astype(np.uint8))
    return path


def _config(data: Path, model: dict, **training) -> dict:
    return {"name": "m", "seed": 1, "deterministic": True,
            "data": {"dataset": "npz", "path": str(data), "batch_size": 8},
            "model": model, "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
            "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
            "training": {"epochs": 2, **training}}


CNN = {"type": "sequential", "layers": [
    {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False,
                "kernel_regularizer": {"l2": 1.0e-4}, "kernel_initializer": "he_normal"}},
    "batch_normalization", {"activation": "relu"}, "max_pooling2d", "flatten", {"dense": CLASSES}]}
RESIDUAL = {"type": "graph", "nodes": [
    {"name": "stem", "layer": {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same"}}},
    {"name": "block", "repeat": 2, "nodes": [
        {"name": "conv", "layer": {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same", "use_bias": False}}},
        {"name": "bn", "layer": "batch_normalization"},
        {"name": "add", "layer": "add", "inputs": ["input", "bn"]},
        {"name": "relu", "layer": {"activation": "relu"}}]},
    {"name": "pool", "layer": "global_average_pooling2d"},
    {"name": "out", "layer": {"dense": CLASSES}}]}


def _run(cli, write_config, config: dict, runs: Path, *extra: str) -> Path:
    result = cli("run", write_config(config, f"{runs.name}.yaml"), "--runs-dir", runs, *extra)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def _weights(run: Path) -> list[np.ndarray]:
    from tftrain.security import load_model

    return load_model(run / "model.keras").get_weights()  # safe mode: the saved model holds no code


def _history(run: Path) -> list[dict[str, float]]:
    import csv

    with open(run / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize("model", [CNN, RESIDUAL], ids=["sequential-cnn-bn", "residual-graph"])
def test_both_loops_train_the_same_model(cli, write_config, tmp_path, images, model):
    """fit and the GradientTape loop give the same history and weights (batch-norm statistics
    included) to ~1e-5; the model reloads in safe mode and evaluates to the final val_loss."""
    runs = {loop: _run(cli, write_config, _config(images, model, loop=loop), tmp_path / loop) for loop in ("fit", "custom")}
    fit, custom = (_history(runs[loop]) for loop in ("fit", "custom"))
    assert len(fit) == 2 and fit[0].keys() == custom[0].keys()
    for a, b in zip(fit, custom):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    names = [w.path for w in keras.saving.load_model(runs["fit"] / "model.keras").weights]
    assert any("moving_mean" in name for name in names)
    for a, b in zip(_weights(runs["fit"]), _weights(runs["custom"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    evaluated = cli("evaluate", runs["custom"], "--checkpoint", "last", "--json")  # the final weights
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"]["loss"] == pytest.approx(custom[-1]["val_loss"], rel=1e-4)


def test_sequential_predict_export_and_smoke(cli, write_config, tmp_path, images):
    import tensorflow as tf

    run = _run(cli, write_config, _config(images, CNN, epochs=1), tmp_path / "runs")
    x = np.load(images)["x_test"][:3]
    np.save(tmp_path / "x.npy", x)
    Image.fromarray(x[0]).save(tmp_path / "0.png")
    predicted = cli("predict", run, tmp_path / "x.npy", tmp_path / "0.png", "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    logits = keras.saving.load_model(run / "model.keras").predict(x.astype("float32"), verbose=0)
    assert [r["class"] for r in rows] == [*logits.argmax(-1).tolist(), int(logits[0].argmax())]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # logits -> softmax
    assert [r["probability"] for r in rows[:3]] == pytest.approx(probabilities.max(-1).tolist(), rel=1e-5)
    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    served = tf.saved_model.load(exported.stdout.strip().splitlines()[-1]).signatures["serving_default"]
    out = served(inputs=tf.constant(x))  # raw uint8 pixels in, as the data (tftrain.commands.export)
    np.testing.assert_allclose(out["probabilities"].numpy(), probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["class"].numpy(), logits.argmax(-1))
    smoke = cli("run", write_config(_config(images, RESIDUAL), "graph.yaml"), "--smoke", "--keep", "--runs-dir", tmp_path / "smoke")
    assert smoke.exit_code == 0, smoke.output
    smoked = json.loads((Path(smoke.stdout.strip()) / "smoke.json").read_text())
    assert smoked["ok"] and len(smoked["stages"]) == 4


APPLICATION = {"type": "application", "name": "mobilenet_v3_small", "weights": None,
               "options": {"minimalistic": True}, "head": [{"dropout": 0.2}]}


def test_application_backbone_on_32x32_images_trains_predicts_raw_pixels_and_exports(cli, write_config, tmp_path):
    rng = np.random.default_rng(4)
    data = tmp_path / "rgb.npz"
    np.savez(data, x_train=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
             y_train=(np.arange(16) % CLASSES).astype(np.uint8),
             x_test=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), y_test=(np.arange(8) % CLASSES).astype(np.uint8))
    run = _run(cli, write_config, _config(data, APPLICATION, epochs=1, loop="custom"), tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    model = keras.saving.load_model(run / "model.keras")
    assert [layer.name for layer in model.layers] == ["inputs", "MobileNetV3Small", "pool", "dropout", "outputs"]
    x = np.load(data)["x_test"][:2]
    Image.fromarray(x[0]).save(tmp_path / "0.png")
    predicted = cli("predict", run, tmp_path / "0.png", "--json")  # raw pixels: preprocessing is in the model
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["predictions"][0]["class"] == int(model.predict(x[:1], verbose=0).argmax())
    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    assert "inputs (None, 32, 32, 3) float32 -> output_0 (None, 4) float32" in exported.stderr


def test_application_on_grey_28x28_images_repeats_channels_and_resizes(cli, write_config, tmp_path, tiny_mnist):
    """MobileNet needs 32x32 RGB: grey 28x28 images are repeated to 3 channels and resized to
    32x32 inside the model (model.fit), and trainable: 10 freezes all but the last 10 layers."""
    config = _config(tiny_mnist, {**APPLICATION, "name": "MobileNetV3Small", "trainable": 10}, epochs=1, loop="fit")
    config["data"] = {"dataset": "mnist", "path": str(tiny_mnist), "batch_size": 16, "validation": "none"}
    config["model"]["weights"] = None
    run = _run(cli, write_config, config, tmp_path / "runs")
    model = keras.saving.load_model(run / "model.keras")
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["inputs", "add_channel", "grey_to_rgb", "resize"] and model.layers[3].output.shape[1:] == (32, 32, 3)
    backbone = model.get_layer("MobileNetV3Small")
    trainable = {layer.name for layer in backbone.layers if layer.trainable_weights}
    assert trainable and trainable <= {layer.name for layer in backbone.layers[-10:]}
    assert not any(isinstance(backbone.get_layer(name), keras.layers.BatchNormalization) for name in trainable)
    before = keras.saving.load_model(run / "checkpoints" / "best.keras").get_layer("MobileNetV3Small")
    assert len(backbone.trainable_weights) < len(backbone.weights) and before.count_params() == backbone.count_params()


def test_imagenet_weights_offline_name_the_file_and_the_folder(cli, write_config, tmp_path, images):
    config = _config(images, {"type": "application", "name": "mobilenet_v3_small", "weights": "imagenet",
                              "image_size": [32, 32]})
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    folder = tmp_path / "keras_home" / "models"
    assert message.startswith("error: model.weights: imagenet weights of mobilenet_v3_small: "
                              f"weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 is not in {folder}; download https://")
    assert message.endswith("and put it there (downloads are off: TFTRAIN_OFFLINE is set)")
    assert not (tmp_path / "runs").exists()


SHAPE_ERRORS = [
    ({"data": "regression", "model": {"type": "sequential", "layers": [{"conv2d": {"filters": 4, "kernel_size": 3}}, "flatten", {"dense": 1}]}},
     "model.layers[0] (conv2d): cannot take an input of shape (None, 1): expected min_ndim=4, found ndim=2 "
     "(the examples of synthetic_regression have shape (1,))"),
    ({"model": {"type": "sequential", "layers": ["flatten", {"dense": 5}]}},
     "model.layers[1] (dense): the model's output has shape (None, 5), but the loss needs (None, 4): 4 outputs, "
     "one per class of npz; give the last layer 4 units"),
    ({"model": {"type": "sequential", "layers": [{"conv2d": {"filters": 4, "kernel_size": 3}}, {"dense": 4}]}},
     "model.layers[1] (dense): the model's output has shape (None, 14, 14, 4), but the loss needs (None, 4)"),
    ({"model": {"type": "graph", "nodes": [
        {"name": "a", "layer": {"conv2d": {"filters": 4, "kernel_size": 3}}},
        {"name": "b", "layer": {"conv2d": {"filters": 8, "kernel_size": 3}}, "inputs": ["input"]},
        {"name": "sum", "layer": "add", "inputs": ["a", "b"]}, {"name": "p", "layer": "global_max_pooling2d"},
        {"name": "out", "layer": {"dense": 4}}]}},
     "model.nodes[2] (sum): cannot take an input of shape (None, 14, 14, 4), (None, 14, 14, 8)"),
    ({"model": {**APPLICATION, "image_size": [16, 16]}}, "model.image_size: 16x16 is below the 32x32 that mobilenet_v3_small needs"),
    ({"model": {**APPLICATION, "trainable": 5000}}, "model.trainable: 5000 layers, but mobilenet_v3_small has "),
    ({"model": {**APPLICATION, "weights": "missing.weights.h5"}}, "model.weights: missing.weights.h5: no such weights file"),
    ({"data": "regression", "model": APPLICATION},
     "model.type application needs images of shape (height, width[, channels]) with 1 or 3 channels; the examples "
     "of synthetic_regression have shape (1,)"),
]


@pytest.mark.parametrize("change, message", SHAPE_ERRORS, ids=[m[:50] for _, m in SHAPE_ERRORS])
def test_shape_problems_are_one_line_before_the_run_directory(cli, write_config, tmp_path, images, change, message):
    config = _config(images, change["model"])
    if change.get("data") == "regression":
        config.update(data={"dataset": "synthetic_regression", "batch_size": 8}, loss="mse", metrics=[])
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()


def test_init_from_a_finished_run_with_a_new_head_and_a_refused_architecture(cli, write_config, tmp_path, images):
    """The second run starts from the first one's weights (SGD at a negligible learning rate
    keeps them), by run directory or by .keras file; with 2 classes instead of 4 the output layer
    is new; a model whose conv layer has other shapes is refused, naming the layer."""
    first = _run(cli, write_config, _config(images, CNN, epochs=1), tmp_path / "first")
    still = {"optimizer": {"name": "sgd", "learning_rate": 1.0e-12}}
    same = {**_config(images, {**CNN, "init_from": str(first)}, epochs=1), **still}
    result = cli("run", write_config(same, "same.yaml"), "--runs-dir", tmp_path / "same")
    assert result.exit_code == 0, result.output
    assert f"init_from {first / 'model.keras'}: loaded 3 of 3 layers (conv2d, batch_normalization, dense)" in result.output
    kernel = [w for w in _weights(first) if w.ndim == 4]
    np.testing.assert_allclose([w for w in _weights(Path(result.stdout.strip())) if w.ndim == 4], kernel, atol=1e-6)

    rng = np.random.default_rng(5)
    binary = tmp_path / "binary.npz"
    np.savez(binary, x_train=rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8), y_train=np.arange(16) % 2)
    layers = [*CNN["layers"][:-1], {"dense": 2}]
    new_head = {**_config(binary, {"type": "sequential", "layers": layers, "init_from": str(first / "model.keras")},
                          epochs=1), **still}
    new_head["data"]["validation"] = "none"
    result = cli("run", write_config(new_head, "head.yaml"), "--runs-dir", tmp_path / "head")
    assert result.exit_code == 0, result.output
    assert ("loaded 2 of 3 layers (conv2d, batch_normalization); new head: dense (4 -> 2 outputs, freshly "
            "initialised)") in result.output

    wider = [{"conv2d": {**CNN["layers"][0]["conv2d"], "filters": 8}}, *CNN["layers"][1:]]
    other = _config(images, {"type": "sequential", "layers": wider, "init_from": str(first)})
    result = cli("run", write_config(other, "other.yaml"), "--runs-dir", tmp_path / "other")
    assert result.exit_code == 2, result.output
    assert ("error: model.init_from: layer 'conv2d' does not fit: its weights have shapes (3, 3, 3, 8) here and "
            f"(3, 3, 3, 4) in {first / 'model.keras'}") in result.output
    assert not (tmp_path / "other").exists()
    missing = cli("run", write_config(_config(images, {**CNN, "init_from": str(tmp_path / "nope")}), "nope.yaml"),
                  "--runs-dir", tmp_path / "nope")
    assert missing.exit_code == 2 and "no such run directory or .keras file" in missing.output


@pytest.mark.parametrize("model", [CNN, RESIDUAL], ids=["sequential", "graph"])
def test_mixed_precision_computes_the_output_layer_in_float32(cli, write_config, tmp_path, images, model):
    run = _run(cli, write_config, _config(images, model, epochs=1, precision="mixed_bfloat16"), tmp_path / "runs")
    loaded = keras.saving.load_model(run / "model.keras")
    assert loaded.layers[-1].dtype_policy.compute_dtype == "float32"
    assert {layer.dtype_policy.compute_dtype for layer in loaded.layers if isinstance(layer, keras.layers.Conv2D)} == {
        "bfloat16"}
    assert np.isfinite(_history(run)[-1]["loss"])


def test_linear_regression_sgd_seed_config(cli, tmp_path):
    result = cli("run", CONFIGS / "linear_regression_sgd.yaml", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip())
    rows = _history(run)
    assert [int(r["step"]) for r in rows] == [25, 50, 75, 100]  # a line every 25 steps
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps_done"] == 100 and "x from N(1.0, 0.1)" in summary["data"]["source"]
    assert (run / "plots" / "loss.png").is_file() and (run / "plots" / "parameters.png").is_file()
    assert rows[-1]["loss"] < rows[0]["loss"] / 10  # SGD from random-normal b and a fits the line


def test_seed_configs_build_the_documented_models(tmp_path):
    """ResNet-20 has ~0.27M parameters (274,042); the Fashion-MNIST CNN, a layer list, is the
    `type: cnn` model that issue 16's recipe was tuned on (1,011,754), layer for layer (symbolic builds)."""
    from tftrain.models import ModelSpec
    from tftrain.spec.loading import load_config, validate

    for name, shape, expected in (("cifar10_resnet20", (32, 32, 3), 274_042), ("fashion_mnist_cnn", (28, 28), 1_011_754)):
        config = load_config(CONFIGS / f"{name}.yaml")
        spec = ModelSpec(shape, 1 / 255, 10, "float32", name, "classes")
        config.model.check(spec)
        assert config.model.build(spec).count_params() == expected, name
    cnn = validate({**config.model_dump(exclude={"model"}), "model": {
        "type": "cnn", "conv": [32, 64], "batch_norm": True, "dense": [128], "dropout": 0.4}}).model.build(spec)
    layers = config.model.build(spec)
    assert [(type(a).__name__, a.count_params()) for a in cnn.layers] == \
        [(type(b).__name__, b.count_params()) for b in layers.layers]


def test_init_from_copies_a_backbone_layer_by_layer_with_a_new_head(tmp_path):
    """init_from walks into nested models: every layer of the backbone is matched by its path
    (MobileNetV3Small/conv, ...), the output layer is new when the number of classes differs."""
    from tftrain.models import ModelSpec
    from tftrain.runs.init_from import read_initial_weights
    from tftrain.spec.loading import validate

    config = validate({"data": {"dataset": "npz", "path": "x.npz"},
                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                       "model": {**APPLICATION, "head": []}})
    trained = config.model.build(ModelSpec((32, 32, 3), None, 4, "float32", "x", "classes"))
    trained.save(tmp_path / "trained.keras")
    fresh = config.model.build(ModelSpec((32, 32, 3), None, 2, "float32", "x", "classes"))
    note = read_initial_weights(str(tmp_path / "trained.keras")).copy_into(fresh, 2)
    backbone = [w for w in trained.get_layer("MobileNetV3Small").weights]
    assert "MobileNetV3Small/conv" in note and "new head: outputs (4 -> 2 outputs, freshly initialised)" in note
    for a, b in zip(backbone, fresh.get_layer("MobileNetV3Small").weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_application_takes_in_model_augmentation_before_its_preprocessing(tmp_path):
    """data.augmentation_on: model puts the random layers on the raw pixels, before grey -> RGB,
    the resize and preprocess_input; a random crop's smaller images are resized to the backbone's."""
    from tftrain.models import ModelSpec
    from tftrain.spec.loading import validate

    config = validate({"data": {"dataset": "npz", "path": "x.npz"},
                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                       "model": {**APPLICATION, "head": []}})
    layers = (("RandomFlip", {"mode": "horizontal"}), ("RandomCrop", {"height": 24, "width": 24}))
    spec = ModelSpec((28, 28), None, 3, "float32", "x", "classes", augmentation=layers, seed=3)
    config.model.check(spec)
    model = config.model.build(spec)
    names = [layer.name for layer in model.layers]
    # (MobileNetV3 preprocesses 0..255 pixels inside itself: no preprocess layer before it)
    assert names.index("augment_add_channel") < names.index("grey_to_rgb") < names.index("resize") \
        < names.index("MobileNetV3Small")
    assert model.get_layer("resize").output.shape[1:] == (32, 32, 3)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28)).astype("float32")
    assert model(pixels, training=True).shape == (2, 3)
