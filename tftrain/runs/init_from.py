"""`model.init_from: RUN_DIR | FILE.keras`: start a model from a trained one's weights.

The source model is loaded in Keras safe mode (tftrain.security.load_model) and its weights are
copied layer by layer, matched by layer name (nested models, such as a backbone, by their path:
`mobilenetv3small/conv`). A layer that exists in both with weights of other shapes is an error
naming it, except the output layer when only the number of outputs differs: that one keeps its
fresh initial weights (a new head, for new classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tftrain.errors import UserError
from tftrain.runs import MODEL, RunDir

_SHOWN = 8  # layer names listed in the message before it elides


def source_file(init_from: str) -> Path:
    """The .keras file `init_from` names: the file itself, or a run's final model (its last
    snapshot while the run is unfinished)."""
    path = Path(init_from)
    if path.is_dir():
        run = RunDir(path)
        for candidate in (run.file(MODEL), run.snapshot("last")):
            if candidate.is_file():
                return candidate
        raise UserError(f"model.init_from: {path} holds no model.keras or checkpoints/last.keras "
                        "(is it a run directory that has trained an epoch?)")
    if not path.is_file():
        raise UserError(f"model.init_from: {path}: no such run directory or .keras file")
    return path


@dataclass(frozen=True)
class InitialWeights:
    """The weights of a trained model, by layer path, ready to copy into a new model."""

    source: Path
    layers: dict[str, list[np.ndarray]]  # layer path -> its weights, in Keras's order

    def copy_into(self, model, outputs: int) -> str:
        """Copy every layer's weights into `model` (whose output has `outputs` units); returns
        the line that says what was loaded. UserError naming a layer that does not fit."""
        target = weighted_layers(model)
        head = _output_layer(model, target)
        missing = [path for path in target if path not in self.layers and path != head]
        if missing:
            raise UserError(f"model.init_from: {self.source} has no layer {missing[0]!r} (it has "
                            f"{_names(list(self.layers))}); init_from needs the same architecture")
        loaded, new_head = [], None
        for path, layer in target.items():
            weights = self.layers.get(path)
            shapes, theirs = [tuple(w.shape) for w in layer.weights], [w.shape for w in weights or []]
            if weights is not None and shapes == theirs:
                layer.set_weights(weights)
                loaded.append(path)
            elif path == head and _only_units_differ(shapes, theirs):
                new_head = f"{path} ({theirs[0][-1]} -> {outputs} outputs, freshly initialised)"
            elif path == head and weights is None:
                new_head = f"{path} (not in the source, freshly initialised)"
            else:
                raise UserError(f"model.init_from: layer {path!r} does not fit: its weights have shapes "
                                f"{_shapes(shapes)} here and {_shapes(theirs)} in {self.source}")
        unused = [path for path in self.layers if path not in target]
        text = f"init_from {self.source}: loaded {len(loaded)} of {len(target)} layers ({_names(loaded)})"
        if new_head:
            text += f"; new head: {new_head}"
        if unused:
            text += f"; not used: {_names(unused)}"
        return text


def read_initial_weights(init_from: str) -> InitialWeights:
    """The weights of the model `init_from` names, loaded in Keras safe mode."""
    from tftrain.security import load_model

    path = source_file(init_from)
    try:
        model = load_model(path)  # safe mode: a file with code is refused, with the reason
    except UserError as exc:
        raise UserError(f"model.init_from: {exc}") from None
    layers = weighted_layers(model)
    return InitialWeights(path, {p: [np.asarray(w) for w in layer.get_weights()] for p, layer in layers.items()})


def weighted_layers(model, prefix: str = "") -> dict:
    """{path: layer} of every layer with weights, nested models walked into."""
    import keras

    out = {}
    for layer in model.layers:
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            out.update(weighted_layers(layer, path + "/"))
        elif layer.weights:
            out[path] = layer
    return out


def _output_layer(model, layers: dict) -> str | None:
    """Path of the last layer with weights: the output (head) layer."""
    return next(reversed(layers), None)


def _only_units_differ(shapes: list[tuple], theirs: list[tuple]) -> bool:
    """Same weights but for their last axis (a Dense kernel (in, k) and bias (k,))."""
    return (len(shapes) == len(theirs) > 0 and all(a[:-1] == b[:-1] for a, b in zip(shapes, theirs))
            and any(a[-1] != b[-1] for a, b in zip(shapes, theirs)))


def _shapes(shapes: list) -> str:
    return ", ".join(str(tuple(s)) for s in shapes) or "none"


def _names(paths: list[str]) -> str:
    if len(paths) <= _SHOWN:
        return ", ".join(paths) or "none"
    return ", ".join(paths[:_SHOWN // 2]) + f", ... {len(paths) - _SHOWN} more ..., " + ", ".join(paths[-_SHOWN // 2:])
