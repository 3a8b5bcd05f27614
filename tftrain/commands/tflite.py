"""TFLite export: the serving function (tftrain.commands.serving) converted by TensorFlow's
TFLiteConverter from a SavedModel, optionally quantized, and run back in the LiteRT interpreter.

    none     float32 weights and kernels: the Keras model's outputs to ~1e-6
    dynamic  int8 weights, float activations (weights of fewer than 1024 values stay float)
    float16  float16 weights, float kernels
    int8     int8 weights and activations, calibrated on examples of the run's training data;
             raw inputs stay as they are (uint8 images are not re-quantized: Rescaling becomes an
             int8 multiply or folds into the first convolution), outputs are dequantized to float32

The SavedModel route is used (not `from_concrete_functions`, which on Keras 3 models silently
keeps variable reads and returns NaN). Only TFLite's builtin ops are allowed: a file that needs
the Flex (TF Select) delegate would not run in a plain LiteRT interpreter on a device.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from tftrain.commands.serving import INPUT_NAME

QUANTIZE = ("none", "dynamic", "float16", "int8")
CALIBRATION_EXAMPLES = 300  # int8: enough to settle the activation ranges of small models (a few seconds)
RUN_BATCH = 256  # examples per interpreter call when verifying
# The TFLite converter's int8 calibrator builds a tf.lite.Interpreter, which warns on every call
# that it is deprecated in favour of ai_edge_litert (which has no converter).
_DEPRECATED = r".*tf\.lite\.Interpreter is deprecated.*"


def convert(saved_model: Path, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """The TFLite flatbuffer of `saved_model`'s serving_default signature."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        # The representative data must have the signature's dtype (uint8 images stay uint8).
        converter.representative_dataset = lambda: ({INPUT_NAME: calibration[i:i + 1]} for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings(), native_stderr_silenced():
        warnings.filterwarnings("ignore", message=_DEPRECATED)
        return converter.convert()


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide what the converter's C++ code writes to file descriptor 2 (MLIR diagnostics, calibration
    lines): a failure is explained from the exception it raises, in one line."""
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (embedded interpreters): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def interpreter_class():
    """LiteRT's interpreter (ai_edge_litert); TensorFlow's deprecated tf.lite.Interpreter where
    LiteRT is not installed (it gives bit-identical outputs)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        warnings.filterwarnings("ignore", message=_DEPRECATED)
        return tf.lite.Interpreter, f"tf.lite.Interpreter (TensorFlow {tf.__version__})"
    from importlib import metadata

    return Interpreter, f"LiteRT {metadata.version('ai-edge-litert')}"


def run(content: bytes, x: np.ndarray, batch_size: int = RUN_BATCH) -> dict[str, np.ndarray]:
    """The TFLite model's serving_default outputs for every example of `x`."""
    interpreter, _ = interpreter_class()
    with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        runner = interpreter(model_content=content).get_signature_runner("serving_default")
        parts = [runner(**{INPUT_NAME: x[i:i + batch_size]}) for i in range(0, len(x), batch_size)]
    return {name: np.concatenate([np.array(part[name]) for part in parts]) for name in parts[0]}


def explain(exc: Exception, layer_names: list[str], quantize: str) -> str:
    """One line for a failed conversion: the op, the layer it came from, and what to try."""
    op, layer = _failing_op(exc, layer_names)
    where = f" at op {op}" if op else ""
    where += f" in layer {layer!r}" if layer else ""
    reason = _first_error(exc)
    if op and "TensorList" in op:
        advice = (f"layer {layer or '?'!r} loops over time with TensorList ops, which TFLite's builtin ops lack: "
                  "set unroll=True on it, or export --format onnx or saved_model")
    elif quantize == "int8":
        advice = "int8 needs an int8 kernel for every op: try --quantize dynamic or float16, or --format onnx"
    else:
        advice = "TFLite's builtin ops lack it: try --format onnx or saved_model, or a model without that layer"
    return f"tflite: conversion failed{where}: {reason}; {advice}"


def _failing_op(exc: Exception, layer_names: list[str]) -> tuple[str | None, str | None]:
    """(op, layer) from the converter's structured errors (ConverterError.errors), preferring one
    that points into a layer; else the op quoted in the message."""
    found: tuple[str | None, str | None] = (None, None)
    for error in getattr(exc, "errors", None) or []:
        op = error.operator.name or None
        if op in (None, "tf.Const"):
            continue
        layer = _layer_of([call.name for call in error.location.call], layer_names)
        if layer:
            return op, layer
        found = found if found[0] else (op, None)
    if found[0] is None:
        quoted = re.search(r"'(tf\.\w+)' op", str(exc))
        found = (quoted.group(1) if quoted else None, None)
    return found


def _layer_of(locations: list[str], layer_names: list[str]) -> str | None:
    """The innermost Keras layer named in a converter location such as
    `functional_1_1/gru_1_1/TensorArrayV2_1@__inference_serve_2103` (traced name scopes get
    `_N` suffixes)."""
    names = set(layer_names)
    for location in locations:
        for part in reversed(location.split("@")[0].split("/")):
            while True:  # gru_1_1 -> gru_1 -> gru: the first one that is a layer's name
                if part in names:
                    return part
                shorter = re.sub(r"_\d+$", "", part)
                if shorter == part:
                    break
                part = shorter
    return None


def _first_error(exc: Exception) -> str:
    for error in getattr(exc, "errors", None) or []:
        if error.operator.name not in ("", "tf.Const") and error.error_message:
            return error.error_message.splitlines()[0][:200]
    text = str(exc).splitlines()
    lines = [line for line in text if "error:" in line] or text or [type(exc).__name__]
    return lines[0].split("error:")[-1].strip()[:200]
