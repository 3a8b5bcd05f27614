"""ONNX export (the optional extra `pip install 'tftrain[onnx]'`): the serving function
(tftrain.commands.serving) converted by tf2onnx, run back in onnxruntime.

tf2onnx >= 1.17 converts Keras 3 models on TensorFlow 2.21 (1.16 and older fail on Keras 3 and on
NumPy 2: onnx/tensorflow-onnx#2329, #2373). The uint8 input stays uint8 (the first op is a Cast),
the batch axis stays open, and the outputs keep their names (probabilities, class, ...).
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager

import numpy as np

from tftrain.commands.serving import INPUT_NAME
from tftrain.errors import TftrainError

OPSET = 17  # ONNX 1.12 (2022): run by every onnxruntime since 1.12 and by most other runtimes
INSTALL = "pip install 'tftrain[onnx]'"
RUN_BATCH = 256  # examples per onnxruntime call when verifying


def require() -> None:
    """Fail in one line, saying what to install, when tf2onnx or onnxruntime is missing."""
    missing = []
    for module in ("tf2onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise TftrainError(f"--format onnx needs {' and '.join(missing)}: {INSTALL}")


def convert(function, spec) -> bytes:
    """The ONNX model of `function` (a function of one raw input) as serialized bytes."""
    import tensorflow as tf
    import tf2onnx

    traced = tf.function(function, input_signature=[spec])
    with _collected("tf2onnx") as records:
        try:
            proto, _ = tf2onnx.convert.from_function(traced, input_signature=[spec], opset=OPSET)
        except Exception as exc:  # tf2onnx raises bare exceptions of many kinds from its op handlers
            raise TftrainError(f"onnx: tf2onnx failed: {_first_line(exc)}; "
                               "try --format tflite or saved_model") from None
    unsupported = [r.getMessage() for r in records if "is not supported" in r.getMessage()]
    if unsupported:  # tf2onnx logs ops it cannot map and leaves them in the graph
        raise TftrainError(f"onnx: {_unsupported(unsupported[0])}; tf2onnx has no ONNX conversion for it at "
                           f"opset {OPSET}: try --format tflite or saved_model, or a model without that layer")
    return proto.SerializeToString()


@contextmanager
def _collected(logger_name: str):
    """Records of a logger (and its children) while the block runs."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger, handler = logging.getLogger(logger_name), Collect(level=logging.ERROR)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _unsupported(message: str) -> str:
    """`Tensorflow op [model/lstm/Foo: Foo] is not supported` -> `op Foo (node model/lstm/Foo)`."""
    found = re.search(r"\[(.+): (\w+)\]", message)
    return f"op {found.group(2)} (node {found.group(1)})" if found else message


def runtime_name() -> str:
    """`onnxruntime 1.32.0`."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


def run(content: bytes, x: np.ndarray, batch_size: int = RUN_BATCH) -> dict[str, np.ndarray]:
    """The ONNX model's outputs for every example of `x`, by output name."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented classes
        raise TftrainError(f"onnx: onnxruntime cannot load the converted model: {_first_line(exc)}; "
                           "try --format tflite or saved_model") from None
    names = [output.name for output in session.get_outputs()]
    parts = [session.run(names, {INPUT_NAME: x[i:i + batch_size]}) for i in range(0, len(x), batch_size)]
    return {name: np.concatenate([part[k] for part in parts]) for k, name in enumerate(names)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
