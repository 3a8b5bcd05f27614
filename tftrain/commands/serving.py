"""The inference function every exported format shares (SavedModel `serving_default`, TFLite,
ONNX): raw inputs in, as the data come (uint8 images stay uint8: the model rescales them itself),
and out what the run's task reads from the model (tftrain.spec.checks.RunFacts.read_as):

    multiclass, binary   probabilities (N, classes) float32 and class (N,) int64
    score (hinge losses) score (N,) float32 and class (N,) int64 (1 where the score is positive)
    regression           values (N, ...) float32, the model's outputs

Logits become probabilities here (softmax, sigmoid), so a client never needs to know how the model
was trained. A binary model's probabilities are [P(0), P(1)]; its class is P(1) >= 0.5, as the
accuracy metric and `tftrain predict` decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tftrain.errors import UserError
from tftrain.runs.model import as_probabilities

INPUT_NAME = "inputs"  # the name clients send (tftrain's models call their input `inputs` too)
OUTPUTS = {"multiclass": ("probabilities", "class"), "binary": ("probabilities", "class"),
           "score": ("score", "class"), "regression": ("values",)}


@dataclass(frozen=True)
class Signature:
    """What the exported function takes and returns."""

    shape: tuple[int, ...]  # one example, without the batch axis
    dtype: str  # the raw data's dtype (uint8 for images), which the function takes as is
    task: str  # multiclass | binary | score | regression (several: each of `heads` its own)
    activation: str | None  # the model's output activation (None: logits, for a classifier)
    # Several outputs (tftrain.spec.outputs): (name, task, activation) of each; its values are
    # served as NAME_probabilities, NAME_class, NAME_values, ...
    heads: tuple[tuple[str, str, str | None], ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output names, the main one (compared to Keras when verifying) first."""
        if self.heads:
            return tuple(f"{name}_{part}" for name, task, _ in self.heads for part in OUTPUTS[task])
        return OUTPUTS[self.task]


def signature_for(model, raw_dtype: str | None, task: str, activation: str | None, heads: tuple = ()) -> Signature:
    """The signature of a single-input model fed the run's raw data (`raw_dtype`, from
    summary.json; the model's own input dtype where the summary does not say); `heads`: several
    outputs' (name, task, activation)."""
    if len(model.inputs) != 1:
        raise UserError(f"export: the model has {len(model.inputs)} inputs; tftrain exports single-input models")
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise UserError(f"export: the model's input shape {shape} has unknown sizes; exported models need "
                        "fixed example shapes")
    if str(model.inputs[0].dtype) == "string":  # raw table rows (tftrain.data.tables): NumPy says object
        raw_dtype = "string"
    return Signature(shape, raw_dtype or str(model.inputs[0].dtype), task, activation, tuple(heads))


def tensor_spec(sig: Signature):
    """The raw input's tf.TensorSpec, batch axis open."""
    import tensorflow as tf

    return tf.TensorSpec((None, *sig.shape), tf.dtypes.as_dtype(sig.dtype), name=INPUT_NAME)


def serving_function(model, sig: Signature):
    """A function of raw inputs returning the task's named outputs (see the module docstring)."""
    import tensorflow as tf

    model_dtype = model.inputs[0].dtype
    if sig.heads:  # a dict of outputs: each read as its own task, its names prefixed by its own
        units = {name: math.prod(t.shape[1:]) for name, t in model.output.items()}

        def serve_each(inputs):
            outputs = model(tf.cast(inputs, model_dtype), training=False)
            return {f"{name}_{part}": value for name, task, activation in sig.heads
                    for part, value in _served(outputs[name], task, activation, units[name]).items()}

        return serve_each
    units = math.prod(model.outputs[0].shape[1:])  # static, so the signature says (None, classes)

    def serve(inputs):
        return _served(model(tf.cast(inputs, model_dtype), training=False), sig.task, sig.activation, units)

    return serve


def _served(outputs, task: str, activation: str | None, units: int) -> dict:
    """One output's served values (see the module docstring)."""
    import tensorflow as tf

    if task == "regression":
        return {"values": tf.cast(outputs, tf.float32)}
    flat = tf.reshape(tf.cast(outputs, tf.float32), (-1, units))
    if task == "multiclass":
        probabilities = flat if activation == "softmax" else tf.nn.softmax(flat, axis=-1)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}
    if task == "score":
        return {"score": flat[:, 0], "class": tf.cast(flat[:, 0] > 0, tf.int64)}
    p1 = flat[:, 0] if activation == "sigmoid" else tf.sigmoid(flat[:, 0])
    return {"probabilities": tf.stack([1.0 - p1, p1], axis=1), "class": tf.cast(p1 >= 0.5, tf.int64)}


def reference_outputs(model, x: np.ndarray, sig: Signature, batch_size: int) -> dict[str, np.ndarray]:
    """What the exported function should return for `x`, computed with Keras and NumPy alone
    (not with `serving_function`, so that a mistake there shows up when verifying)."""
    dtype = str(model.inputs[0].dtype)
    if dtype == "string":  # raw table rows: Keras's array adapter takes no object arrays, a string tensor it does
        import tensorflow as tf

        x = tf.constant(x)
    raw = np.asarray(model.predict(x if dtype == "string" else x.astype(dtype), batch_size=batch_size, verbose=0))
    if sig.task == "regression":
        return {"values": raw.astype(np.float32)}
    flat = as_probabilities(raw.astype(np.float64), sig.task, sig.activation)
    if sig.task == "multiclass":
        return {"probabilities": flat.astype(np.float32), "class": flat.argmax(axis=1)}
    if sig.task == "score":
        return {"score": flat[:, 0].astype(np.float32), "class": (flat[:, 0] > 0).astype(np.int64)}
    p1 = flat[:, 0]
    return {"probabilities": np.stack([1 - p1, p1], axis=1).astype(np.float32), "class": (p1 >= 0.5).astype(np.int64)}
