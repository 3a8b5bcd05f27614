"""`tftrain export` to TFLite (float and quantized) and ONNX, each file run here in its own
runtime (LiteRT, onnxruntime) against the Keras model; the SavedModel's raw-input signature; bad
input and failed conversions in one line (issue 20)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest


def _test_split(run):
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import split_for_evaluation
    from tftrain.runs import RunDir

    config = RunDir(run).config()
    return split_for_evaluation(load_data(config, config.seed), config, config.seed)


def _keras(run):
    import keras

    return keras.saving.load_model(run / "model.keras", compile=False)


def _litert(path: Path, x: np.ndarray) -> tuple[dict, dict]:
    """The file's serving_default outputs for x, from a fresh LiteRT interpreter; and its inputs."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return runner(inputs=x), runner.get_input_details()


def test_tflite_float_runs_in_litert_and_matches_keras_to_1e_5(cli, tiny_runs, tmp_path):
    run = tiny_runs["fashion"]
    target = tmp_path / "fashion.tflite"
    result = cli("export", run, "--format", "tflite", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target)
    assert "tflite run in LiteRT" in result.stderr and "max |Δ| probabilities" in result.stderr
    split = _test_split(run)
    outputs, inputs = _litert(target, split.x)  # raw uint8 images, as the data come
    assert inputs["inputs"]["dtype"] == np.uint8 and split.x.dtype == np.uint8
    expected = _keras(run).predict(split.x.astype(np.float32), verbose=0)  # softmax outputs
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(outputs["class"], expected.argmax(axis=1))


def test_tflite_quantized_files_run_and_int8_keeps_uint8_inputs(cli, tiny_runs, tmp_path):
    run = tiny_runs["fashion"]
    split = _test_split(run)
    expected = _keras(run).predict(split.x.astype(np.float32), verbose=0)
    sizes = {}
    for mode in ("dynamic", "float16", "int8"):
        target = tmp_path / f"{mode}.tflite"
        result = cli("export", run, "--format", "tflite", "--quantize", mode, "--output", target, "--json")
        assert result.exit_code == 0, result.output
        check = json.loads(result.stdout)["verification"]
        assert check["format"] == f"tflite {mode}" and check["tolerance"] is None and check["passed"]
        outputs, inputs = _litert(target, split.x)
        assert inputs["inputs"]["dtype"] == np.uint8
        assert outputs["probabilities"].dtype == np.float32  # dequantized: callers read probabilities
        difference = np.abs(outputs["probabilities"] - expected).max()
        assert difference == pytest.approx(check["max_difference"], rel=1e-4, abs=1e-7)
        assert difference < 0.1
        accuracy = float(np.mean(outputs["class"] == split.y))
        assert accuracy == pytest.approx(check["exported_quality"])
        sizes[mode] = target.stat().st_size
        assert sizes[mode] == check["exported_bytes"] < check["keras_bytes"]
    float_bytes = 4 * json.loads((run / "summary.json").read_text())["params"]  # what float32 weights take
    assert sizes["int8"] < float_bytes / 2 and sizes["dynamic"] < float_bytes / 2  # int8 weights: ~4x smaller
    assert sizes["float16"] < float_bytes * 0.75


def test_tflite_of_a_logits_binary_model_and_a_regression(cli, tiny_runs, tmp_path):
    binary = tiny_runs["binary"]
    result = cli("export", binary, "--format", "tflite", "--output", tmp_path / "b.tflite")
    assert result.exit_code == 0, result.output
    split = _test_split(binary)
    outputs, _ = _litert(tmp_path / "b.tflite", split.x)
    p1 = 1 / (1 + np.exp(-_keras(binary).predict(split.x, verbose=0)[:, 0]))  # the model gives logits
    np.testing.assert_allclose(outputs["probabilities"], np.stack([1 - p1, p1], axis=1), atol=1e-5)
    np.testing.assert_array_equal(outputs["class"], (p1 >= 0.5).astype(np.int64))
    regression = tiny_runs["regression"]
    result = cli("export", regression, "--format", "tflite", "--output", tmp_path / "r.tflite", "--json")
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["verification"]
    assert check["quality"] == "loss" and check["keras_quality"] == pytest.approx(check["exported_quality"], rel=1e-5)
    split = _test_split(regression)
    outputs, _ = _litert(tmp_path / "r.tflite", split.x)
    np.testing.assert_allclose(outputs["values"], _keras(regression).predict(split.x, verbose=0), atol=1e-5)


def test_onnx_runs_in_onnxruntime_and_matches_keras_to_1e_4(cli, tiny_runs, tmp_path):
    import onnx
    import onnxruntime

    run = tiny_runs["fashion"]
    target = tmp_path / "fashion.onnx"
    result = cli("export", run, "--format", "onnx", "--output", target)
    assert result.exit_code == 0, result.output
    assert "onnx run in onnxruntime" in result.stderr
    onnx.checker.check_model(onnx.load(str(target)))
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    [given] = session.get_inputs()
    assert given.name == "inputs" and given.type == "tensor(uint8)" and given.shape[1:] == [28, 28]
    split = _test_split(run)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"inputs": split.x})))
    expected = _keras(run).predict(split.x.astype(np.float32), verbose=0)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(outputs["class"], expected.argmax(axis=1))
    regression = tiny_runs["regression"]
    result = cli("export", regression, "--format", "onnx", "--output", tmp_path / "r.onnx")
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    split = _test_split(regression)
    [values] = session.run(["values"], {"inputs": split.x.astype(np.float32)})
    np.testing.assert_allclose(values, _keras(regression).predict(split.x, verbose=0), atol=1e-4)


def test_onnx_without_the_extra_says_what_to_install(cli, tiny_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if tf2onnx were not installed: import fails
    result = cli("export", tiny_runs["fashion"], "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --format onnx needs tf2onnx: pip install 'tftrain[onnx]'"
    assert not (tmp_path / "m.onnx").exists()


def test_saved_model_serves_raw_uint8_images_and_returns_probabilities_and_class(cli, tiny_runs, tmp_path):
    import tensorflow as tf

    run = tiny_runs["fashion"]
    target = tmp_path / "serving" / "fashion" / "1"
    result = cli("export", run, "--format", "saved_model", "--output", target)
    assert result.exit_code == 0, result.output
    assert ("serving_default: inputs (None, 28, 28) uint8 -> class (None,) int64, probabilities (None, 10) float32"
            in result.stderr)
    loaded = tf.saved_model.load(str(target))
    split = _test_split(run)
    served = loaded.signatures["serving_default"](inputs=tf.constant(split.x))
    expected = _keras(run).predict(split.x.astype(np.float32), verbose=0)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(served["class"].numpy(), expected.argmax(axis=1))
    # Keras's own endpoint stays: float inputs, the model's outputs.
    np.testing.assert_allclose(loaded.serve(tf.constant(split.x, tf.float32)).numpy(), expected, atol=1e-6)


def test_export_bad_input_is_one_line_and_writes_nothing(cli, tiny_runs, tmp_path):
    run = tiny_runs["fashion"]
    cases = [
        (["--format", "saved_model", "--quantize", "int8"], "error: --quantize: applies to --format tflite only"),
        (["--format", "tflite", "--quantize", "int4"], "error: --quantize: expected one of none, dynamic, float16, "
                                                       "int8, got 'int4'"),
        (["--format", "tflite", "--output", tmp_path / "m.onnx"], "ending in .tflite"),
    ]
    for args, message in cases:
        result = cli("export", run, *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "taken.tflite").write_text("mine")
    result = cli("export", run, "--format", "tflite", "--output", tmp_path / "taken.tflite")
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (tmp_path / "taken.tflite").read_text() == "mine"
    empty = shutil.copytree(run, tmp_path / "no-model")
    shutil.rmtree(empty / "checkpoints")
    (empty / "model.keras").unlink()
    result = cli("export", empty, "--format", "tflite")
    assert result.exit_code == 2 and "no last model" in result.stderr
    assert not (empty / "export").exists()


def test_int8_refuses_inputs_that_are_not_numbers(cli, tmp_path, write_config):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (40, 6)).astype(bool)
    np.savez(tmp_path / "flags.npz", x_train=x[:32], y_train=x[:32, 0].astype(np.int64),
             x_test=x[32:], y_test=x[32:, 0].astype(np.int64))
    config = write_config({"name": "flags", "data": {"dataset": "npz", "path": str(tmp_path / "flags.npz"),
                                                     "batch_size": 8},
                           "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
                           "training": {"epochs": 1}})
    trained = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert trained.exit_code == 0, trained.output
    run = Path(trained.stdout.strip())
    result = cli("export", run, "--format", "tflite", "--quantize", "int8")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --quantize int8: the model's inputs are bool, not numbers, so there is "
                                     "nothing to calibrate int8 ranges on; use --quantize dynamic or float16")
    assert not (run / "export").exists()


def test_a_failed_conversion_names_the_op_and_layer_and_what_to_try(cli, tiny_runs, tmp_path):
    """A GRU loops with TensorList ops, which TFLite's builtin ops lack (the converter refuses)."""
    import keras

    run = shutil.copytree(tiny_runs["fashion"], tmp_path / "run")
    model = keras.Sequential([keras.Input((28, 28), name="inputs"), keras.layers.Rescaling(1 / 255),
                              keras.layers.GRU(4, name="gru"), keras.layers.Dense(10, activation="softmax")])
    model.save(run / "model.keras")
    shutil.rmtree(run / "checkpoints")
    result = cli("export", run, "--format", "tflite")
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith("error: tflite: conversion failed at op tf.TensorListReserve in layer 'gru': ")
    assert "set unroll=True on it, or export --format onnx or saved_model" in line
    assert not (run / "export" / "model.tflite").exists()

