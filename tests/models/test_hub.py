"""`model.type: hub`: keras-hub presets trained from a local folder on raw strings, LoRA, and the
one-line errors for presets, tasks and data that do not fit.

The presets are tiny random ones, built here with keras-hub's own classes and written with
`save_to_preset` (a 2-layer BERT with a 16-word vocabulary), so nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

keras_hub = pytest.importorskip("keras_hub")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "plot",
         "good", "great", "fine", "bad", "awful", "dull"]
POSITIVE, NEGATIVE, NEUTRAL = ["good", "great", "fine"], ["bad", "awful", "dull"], ["the", "a", "movie", "film", "plot"]


def write_bert_preset(folder: Path, max_sequence_length: int = 32) -> Path:
    """A 2-layer BERT (hidden 16) with its tokenizer and classifier preprocessor, as a preset."""
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=max_sequence_length)
    for part in (backbone, tokenizer, preprocessor):
        part.save_to_preset(str(folder))
    return folder


def write_reviews(path: Path, n_train: int = 48, n_test: int = 16, seed: int = 0) -> Path:
    """An .npz of raw strings (a word-level sentiment task a tiny BERT learns) and 0/1 labels."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 2, n)
        x = [" ".join([*rng.choice(NEUTRAL, 3), *rng.choice(POSITIVE if label else NEGATIVE, 2)]) for label in y]
        return np.array(x), y.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return write_bert_preset(tmp_path_factory.mktemp("presets") / "bert_tiny")


@pytest.fixture
def reviews(tmp_path) -> Path:
    return write_reviews(tmp_path / "reviews.npz")


def text_config(preset: Path, data: Path, **model) -> dict:
    return {
        "name": "hub", "seed": 3, "deterministic": True,
        "data": {"dataset": "npz", "path": str(data), "batch_size": 8},
        "model": {"type": "hub", "preset": str(preset), "task": "text_classifier", "sequence_length": 12, **model},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "metrics": ["accuracy"],
        "training": {"epochs": 2},
    }


def run_dir(result) -> Path:
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bert) -> dict[str, Path]:
    """text_config's run in each loop, trained once for the tests that read it (the same config
    and data as each test would train again). Tests that write into a run copy it first."""
    from typer.testing import CliRunner

    from tftrain.cli import app

    root = tmp_path_factory.mktemp("hub_runs")
    reviews = write_reviews(root / "reviews.npz")
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(root / "keras_home"))  # as each test's own (conftest)
        for loop in ("fit", "custom"):
            config = text_config(bert, reviews)
            config["training"]["loop"] = loop
            (root / f"{loop}.yaml").write_text(yaml.safe_dump(config))
            runs[loop] = run_dir(CliRunner().invoke(app, ["run", str(root / f"{loop}.yaml"), "--runs-dir",
                                                          str(root / loop)]))
    return runs


# -- training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_text_classifier_trains_on_raw_strings_and_evaluates(cli, trained, loop):
    run = trained[loop]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["data"]["train"]["x_dtype"].startswith("<U")
    evaluated = cli("evaluate", run, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["examples"] == 16  # the saved model took the raw test strings


def test_both_loops_train_the_same_hub_model(trained):
    histories = [np.genfromtxt(trained[loop] / "history.csv", delimiter=",", names=True) for loop in ("fit", "custom")]
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(histories[0][name], histories[1][name], rtol=1e-5, atol=1e-6)


def test_offline_switch_is_the_datasets_one():
    from tftrain.data.base import OFFLINE_ENV
    from tftrain.models.hub_preset import OFFLINE_ENV as HUB_OFFLINE_ENV

    assert HUB_OFFLINE_ENV == OFFLINE_ENV


# -- bad input: one line, exit 2, nothing written -----------------------------------------------
def _refused(cli, write_config, tmp_path, config, *expected, command="validate"):
    args = ("run", write_config(config), "--runs-dir", tmp_path / "runs") if command == "run" \
        else ("validate", write_config(config))
    result = cli(*args)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "Traceback" not in message
    for text in expected:
        assert text in message, message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    return message


def test_missing_preset_folder(cli, write_config, tmp_path, reviews):
    _refused(cli, write_config, tmp_path, text_config(tmp_path / "nowhere", reviews),
             "model.preset", "nowhere: no such folder", "keras-hub preset folder")


def test_folder_that_is_not_a_preset(cli, write_config, tmp_path, reviews):
    (tmp_path / "empty").mkdir()
    _refused(cli, write_config, tmp_path, text_config(tmp_path / "empty", reviews), "has no config.json")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"module": "transformers", "class_name": "Bert"}))
    _refused(cli, write_config, tmp_path, text_config(tmp_path / "other", reviews),
             "not a keras-hub preset", "transformers")


def test_task_the_preset_cannot_do(cli, write_config, tmp_path, bert, reviews):
    config = text_config(bert, reviews)
    config["model"].update(task="image_classifier")
    del config["model"]["sequence_length"]
    _refused(cli, write_config, tmp_path, config, "cannot do task image_classifier", "image_converter.json",
             "task: text_classifier?")


def test_sequence_length_past_the_position_embedding(cli, write_config, tmp_path, bert, reviews):
    _refused(cli, write_config, tmp_path, text_config(bert, reviews, sequence_length=64),
             "sequence_length: 64", "32 tokens", "BertBackbone")


def test_lora_with_a_frozen_backbone_is_contradictory(cli, write_config, tmp_path, bert, reviews):
    _refused(cli, write_config, tmp_path, text_config(bert, reviews, lora={"rank": 2}, trainable=False),
             "lora", "trainable: false")


def test_validate_imports_no_tensorflow(tmp_path, write_config, bert, reviews):
    import subprocess
    import sys

    from tests.conftest import REPO

    path = write_config(text_config(bert, reviews, lora={"rank": 2}))
    code = ("import sys; from tftrain.cli import main; rc = main(['validate', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules and 'numpy' not in sys.modules; "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_offline_handle_names_the_folder_to_fill(cli, write_config, tmp_path, monkeypatch, bert, reviews):
    monkeypatch.setenv("TFTRAIN_OFFLINE", "1")
    handle = "kaggle://keras/bert/keras/bert_tiny_en_uncased/2"
    folder = tmp_path / "keras_home" / "presets" / "kaggle" / "keras/bert/keras/bert_tiny_en_uncased/2"
    message = _refused(cli, write_config, tmp_path, text_config(handle, reviews), "downloads are off", str(folder))
    assert "TFTRAIN_OFFLINE" in message
    shutil.copytree(bert, folder)  # filled as the message says: the same config now validates
    assert cli("validate", write_config(text_config(handle, reviews))).exit_code == 0


def test_strings_for_a_model_that_takes_images(cli, write_config, tmp_path, reviews):
    """(A dense model reads an npz of strings as one text column: tests/training/test_distill_hub.py.)"""
    config = {**text_config(Path("."), reviews), "model": {"type": "cnn", "output_activation": None}}
    _refused(cli, write_config, tmp_path, config, "model.type cnn needs images", "shape (1,)", command="run")


def test_text_classifier_on_images(cli, write_config, tmp_path, bert, tiny_images):
    config = text_config(bert, tiny_images)
    _refused(cli, write_config, tmp_path, config, "text_classifier takes one string per example", "uint8",
             command="run")


def test_num_classes_that_the_labels_contradict(cli, write_config, tmp_path, bert, reviews):
    _refused(cli, write_config, tmp_path, text_config(bert, reviews, num_classes=5), "model.num_classes: 5",
             "2 classes", command="run")


# -- LoRA -------------------------------------------------------------------------------------
class Weights(keras.callbacks.Callback):
    """Every weight of the model when training begins and ends, by path; and the predictions
    of the trained (unmerged) model on `probe`."""

    def __init__(self, probe: np.ndarray):
        super().__init__()
        self.probe = probe

    def on_train_begin(self, logs=None):
        self.before = {w.path: np.array(w) for w in self.model.weights}
        self.trainable = {w.path for w in self.model.trainable_weights}

    def on_train_end(self, logs=None):
        self.after = {w.path: np.array(w) for w in self.model.weights}
        self.predictions = self.model.predict(self.probe, verbose=0)


PROBE = np.array(["the movie good great", "a film awful dull", "plot fine bad"])


# -- LoRA: what trains, the export, and kill -9 and resume bit-identical -------------------------
@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_lora_trains_only_adapters_and_head_resumes_bit_identical_and_export_merges(tmp_path, cli, bert, reviews,
                                                                                     loop):
    """A LoRA run killed mid-epoch (kill -9 after step 9 of 18, 6 an epoch, a checkpoint every 2)
    and resumed ends bit-identical to the uninterrupted one; that uninterrupted run, watched,
    trained every adapter and the head and nothing else, and its export merges the adapters."""
    from tests.kit import assert_identical, killed_resumed_and_baseline

    config = text_config(bert, reviews, lora={"rank": 2, "alpha": 4})
    config["model"]["sequence_length"] = 8
    config["training"] = {"loop": loop, "epochs": 3, "checkpoint": {"every_steps": 2}}
    watch = Weights(PROBE)
    resumed, result = killed_resumed_and_baseline(tmp_path / loop, config, kill_at=9, callbacks=[watch])
    run = result.run_dir(tmp_path / loop)
    assert_identical(resumed, run)
    changed = {path for path in watch.before if not np.array_equal(watch.before[path], watch.after[path])}
    assert changed == watch.trainable  # every trainable weight moved, and nothing else did
    kinds = {path.rsplit("/", 1)[-1] for path in changed}
    assert kinds == {"lora_kernel_a", "lora_kernel_b", "kernel", "bias"}
    assert all("lora_kernel" in path or path.startswith("logits/") for path in changed), sorted(changed)
    assert any("query" in path for path in changed) and any("value" in path for path in changed)
    assert "trainable" in result.output and "frozen" in result.output  # the parameter table says which
    # `tftrain export --format keras`: Keras writes the adapters merged into the kernels.
    exported = cli("export", run, "--format", "keras")
    assert exported.exit_code == 0, exported.output
    merged = keras.saving.load_model(run / "export" / "model.keras", compile=False, safe_mode=True)
    assert not any("lora" in w.path for w in merged.weights)
    np.testing.assert_allclose(merged.predict(PROBE, verbose=0), watch.predictions, rtol=1e-5, atol=1e-5)
    base = keras_hub.models.Backbone.from_preset(str(bert))
    query = next(w for w in merged.weights if w.path.endswith("query/kernel"))
    assert not np.allclose(np.array(query), np.array(base.get_layer("transformer_layer_0")._self_attention_layer
                                                        ._query_dense.kernel))
    separate_export_predicts_the_same(cli, run, tmp_path / "separate", base, watch.predictions)


def separate_export_predicts_the_same(cli, run: Path, out: Path, base, predictions: np.ndarray) -> None:
    """`--lora separate`: model.keras holds the preset's kernels and the trained head, model.lora.h5
    the adapters (keras-hub's file); put together they predict as the unmerged model. The
    SavedModel's variables include the adapters, and it serves the same probabilities."""
    import h5py
    import tensorflow as tf

    exported = cli("export", run, "--format", "keras", "--lora", "separate", "--output", out / "model.keras")
    assert exported.exit_code == 0, exported.output
    model = keras.saving.load_model(out / "model.keras", compile=False, safe_mode=True)
    for ours, preset in zip(model.backbone.weights, base.weights, strict=True):
        np.testing.assert_array_equal(np.array(ours), np.array(preset), err_msg=ours.path)
    with h5py.File(out / "model.lora.h5", "r") as file:
        rank, alpha = int(file["lora/vars/rank"][()]), float(file["lora"].attrs["alpha"])
        targets = [str(t) for t in file["lora"].attrs["targets"]]
        layers = [name for name in file["lora"] if name != "vars"]
        assert len(layers) == 4 and all(set(file[f"lora/{n}/vars"]) == {"lora_kernel_a", "lora_kernel_b"}
                                        for n in layers)
    assert (rank, alpha, targets) == (2, 4.0, ["query", "value"])
    model.backbone.enable_lora(rank, target_layer_names=targets)  # keras-hub's own loading, as documented
    for layer in model.backbone._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            layer.lora_alpha = alpha
    model.backbone.load_lora_weights(str(out / "model.lora.h5"))
    np.testing.assert_allclose(model.predict(PROBE, verbose=0), predictions, rtol=1e-5, atol=1e-5)
    exported = cli("export", run, "--format", "saved_model", "--lora", "separate", "--output", out / "saved_model")
    assert exported.exit_code == 0, exported.output
    loaded = tf.saved_model.load(str(out / "saved_model"))
    assert sum("lora_kernel" in v.name for v in loaded.variables) == 8  # a and b, query and value, 2 layers
    served = loaded.signatures["serving_default"](inputs=tf.constant(PROBE))["probabilities"].numpy()
    np.testing.assert_allclose(served, keras.ops.convert_to_numpy(keras.ops.softmax(predictions)), rtol=1e-5,
                               atol=1e-6)


def test_lora_target_that_names_no_layer(cli, write_config, tmp_path, bert, reviews):
    _refused(cli, write_config, tmp_path, text_config(bert, reviews, lora={"targets": ["querry"]}),
             "model.lora.targets", "'querry'", "did you mean", "query", command="run")


def test_predict_takes_raw_strings(cli, tmp_path, trained):
    run = Path(shutil.copytree(trained["fit"], tmp_path / "run"))  # its exports are written into the run
    (tmp_path / "reviews.txt").write_text("the movie good great\n\na film awful dull\n")
    np.save(tmp_path / "more.npy", np.array(["plot fine bad"]))
    result = cli("predict", run, tmp_path / "reviews.txt", tmp_path / "more.npy", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["predictions"]
    assert [(Path(r["source"]).name, r["index"]) for r in rows] == [("reviews.txt", 0), ("reviews.txt", 1),
                                                                     ("more.npy", 0)]
    model = keras.saving.load_model(run / "model.keras", compile=False)
    expected = model.predict(np.array(["the movie good great", "a film awful dull", "plot fine bad"]), verbose=0)
    assert [r["class"] for r in rows] == expected.argmax(axis=1).tolist()
    np.save(tmp_path / "numbers.npy", np.zeros((2, 3)))
    refused = cli("predict", run, tmp_path / "numbers.npy")
    assert refused.exit_code == 2 and "takes one string per example" in refused.output, refused.output
    saved_model_serves_raw_strings_as_predict(cli, run, tmp_path, rows)


SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer's ops, as for any SavedModel holding them
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(inputs=tf.constant(json.loads(sys.argv[2])))
assert "keras_hub" not in sys.modules
print(json.dumps({"class": out["class"].numpy().tolist(), "p": out["probabilities"].numpy().max(axis=1).tolist()}))
"""


def saved_model_serves_raw_strings_as_predict(cli, run: Path, tmp_path: Path, rows: list[dict]) -> None:
    """The SavedModel takes raw strings (the tokenizer inside) and, loaded in a process without
    keras-hub or tftrain, answers as `tftrain predict`; TFLite and ONNX are refused in one line."""
    import os
    import subprocess
    import sys

    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    assert "serving_default: inputs (None,) string -> class (None,) int64, probabilities (None, 2)" in exported.output
    texts = ["the movie good great", "a film awful dull", "plot fine bad"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    served = subprocess.run([sys.executable, "-c", SERVE, str(run / "export" / "saved_model"), json.dumps(texts)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["class"] == [r["class"] for r in rows]
    assert answer["p"] == pytest.approx([r["probability"] for r in rows], rel=1e-5)
    refused = cli("export", run, "--format", "tflite")
    assert refused.exit_code == 2 and "tensorflow-text ops" in refused.output, refused.output
    for args, expected in ((("--format", "keras", "--lora", "separate"), "no LoRA adapters"),
                           (("--format", "h5", "--lora", "separate"), "applies to --format keras or saved_model"),
                           (("--format", "keras", "--lora", "apart"), "expected one of merged, separate")):
        refused = cli("export", run, *args)
        assert refused.exit_code == 2 and expected in refused.output and "Traceback" not in refused.output, \
            refused.output
    assert not (run / "export" / "model.keras").exists()


# -- image classifier -------------------------------------------------------------------------
def write_resnet_preset(folder: Path) -> Path:
    """A one-block ResNet (64 filters, keras-hub's least) with its image converter (resize to 16x16, rescale), as a preset."""
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64], stackwise_num_blocks=[1],
        stackwise_num_strides=[1], block_type="basic_block")
    converter = keras_hub.layers.ResNetImageConverter(image_size=(16, 16), scale=1 / 255.0)
    preprocessor = keras_hub.models.ResNetImageClassifierPreprocessor(converter)
    for part in (backbone, preprocessor):
        part.save_to_preset(str(folder))
    return folder


def test_image_classifier_fine_tunes_on_raw_pixels_predicts_and_exports(cli, write_config, tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = (rng.integers(0, 96, (40, 24, 24, 3)) + 128 * y[:, None, None, None]).astype(np.uint8)  # dark | bright
    np.savez(tmp_path / "images.npz", x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:])
    config = {**text_config(write_resnet_preset(tmp_path / "resnet"), tmp_path / "images.npz"),
              "training": {"epochs": 3}}
    config["model"] = {"type": "hub", "preset": str(tmp_path / "resnet"), "task": "image_classifier"}
    run = run_dir(cli("run", write_config(config), "--runs-dir", tmp_path / "runs"))
    history = np.genfromtxt(run / "history.csv", delimiter=",", names=True)
    assert history["loss"][-1] < history["loss"][0]
    np.save(tmp_path / "new.npy", x[32:])
    predicted = cli("predict", run, tmp_path / "new.npy", "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert [r["class"] for r in rows] == model.predict(x[32:], verbose=0).argmax(axis=1).tolist()
    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    assert "serving_default: inputs (None, 24, 24, 3) uint8 -> class" in exported.output
    import tensorflow as tf

    served = tf.saved_model.load(str(run / "export" / "saved_model")).signatures["serving_default"]
    answer = served(inputs=tf.constant(x[32:]))
    assert answer["class"].numpy().tolist() == [r["class"] for r in rows]
    np.testing.assert_allclose(answer["probabilities"].numpy().max(axis=1), [r["probability"] for r in rows],
                               rtol=1e-5)


# -- keras-hub layers from YAML (issue 28) ----------------------------------------------------
def test_token_position_embedding_and_transformer_encoder_from_yaml(cli, write_config, tmp_path):
    from tests.data.test_text import cnn_config, write_text_folder

    config = cnn_config(write_text_folder(tmp_path / "texts", per_class=40))
    config["model"]["layers"] = [
        {"token_and_position_embedding": {"vocabulary_size": 64, "sequence_length": 16, "embedding_dim": 16}},
        {"transformer_encoder": {"intermediate_dim": 32, "num_heads": 2}},
        "global_average_pooling1d", {"dense": 2}]
    config["training"]["epochs"] = 6
    run = run_dir(cli("run", write_config(config), "--runs-dir", tmp_path / "runs"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["val_accuracy"] >= 0.85, summary["final"]
    evaluated = cli("evaluate", run, "--json")  # model.keras loaded in safe mode: keras-hub's registered classes
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"]["accuracy"] == pytest.approx(summary["final"]["val_accuracy"])
    graph = {**config, "model": {"type": "graph", "nodes": [
        {"name": "tokens", "layer": {"embedding": {"input_dim": 64, "output_dim": 16}}, "inputs": ["input"]},
        {"name": "positions", "layer": {"position_embedding": {"sequence_length": 16}}, "inputs": ["tokens"]},
        {"name": "both", "layer": "add", "inputs": ["tokens", "positions"]},
        {"name": "encoded", "layer": {"transformer_encoder": {"intermediate_dim": 32, "num_heads": 2}},
         "inputs": ["both"]},
        {"name": "pooled", "layer": "global_average_pooling1d", "inputs": ["encoded"]},
        {"name": "out", "layer": {"dense": 2}, "inputs": ["pooled"]}]}}
    graph["training"]["epochs"] = 1
    trained = run_dir(cli("run", write_config(graph, "graph.yaml"), "--runs-dir", tmp_path / "graph"))
    assert json.loads((trained / "summary.json").read_text())["status"] == "completed"
    graph["model"]["nodes"][3]["layer"] = {"transformer_encoder": {"intermediate_dim": 32}}
    refused = cli("validate", write_config(graph, "graph.yaml"))
    assert refused.exit_code == 2 and "transformer_encoder" in refused.output and "num_heads" in refused.output


def test_keras_hub_layer_without_keras_hub_is_one_line(cli, write_config, tmp_path, monkeypatch):
    from tests.data.test_text import cnn_config

    monkeypatch.setattr("tftrain.models.layer_config.keras_hub_installed", lambda: False)
    config = cnn_config(tmp_path)
    config["model"]["layers"][1] = {"transformer_encoder": {"intermediate_dim": 32, "num_heads": 2}}
    _refused(cli, write_config, tmp_path, config, "model.layers[1] (transformer_encoder): a keras-hub layer",
             "pip install 'tftrain[hub]'")
