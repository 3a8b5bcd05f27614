"""A run's model: which file `--checkpoint` names, loading it (Keras safe mode), and how its
outputs read for the run's task (probabilities, scores or values). Shared by evaluate,
predict, export and the serving signatures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tftrain.errors import UserError
from tftrain.runs import MODEL, SNAPSHOTS, RunDir
from tftrain.security import load_model, model_kind


def model_path(run: RunDir, checkpoint: str) -> Path | str:
    """checkpoints/<best|last>.keras (`last` falls back to the final model.keras), or any other
    model file or URL given as `checkpoint`, to be evaluated on the run's data."""
    if checkpoint not in SNAPSHOTS:
        if model_kind(checkpoint) == "url" or Path(checkpoint).exists():
            return checkpoint
        raise UserError(f"--checkpoint: expected last, best or a model file, got {checkpoint!r} "
                        "(no such file)")
    candidates = [run.snapshot(checkpoint)]
    if checkpoint == "last":
        candidates.append(run.file(MODEL))
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(f"{run.path}: no {checkpoint} model (looked for "
                    f"{', '.join(str(p.relative_to(run.path)) for p in candidates)})")


def load_run_model(run: RunDir, checkpoint: str = "last", unsafe: bool = False) -> tuple[Any, Path | str]:
    """The model `checkpoint` names for `run` (see model_path), loaded in Keras safe mode unless
    `unsafe`, and the path it was loaded from."""
    path = model_path(run, checkpoint)
    return load_model(path, unsafe=unsafe), path


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def as_probabilities(outputs: np.ndarray, task: str, output_activation: str | None) -> np.ndarray:
    """The model's outputs, flattened per example, as probabilities where the task has them:
    softmax rows (multiclass) or sigmoids (binary) unless the output layer already applies them;
    scores and regression values are returned as they are."""
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    if task == "multiclass" and output_activation != "softmax":
        return _softmax(outputs)
    if task == "binary" and output_activation != "sigmoid":
        return _sigmoid(outputs)
    return outputs
