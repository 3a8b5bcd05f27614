"""`tftrain export` of a keras-hub model (`model.type: hub`).

A keras-hub task's preprocessor (the tokenizer and packer of a text classifier, the image
converter of an image classifier) runs outside its Keras graph (keras-hub maps it over the data),
so the exported serving function calls it first: a SavedModel takes what the data hold, raw
strings or raw pixels, as `tftrain predict` does. A text model's tokenizer is tensorflow-text ops
(keras-hub's WordPiece and SentencePiece tokenizers), so whoever loads the SavedModel imports
`tensorflow_text` first, to register them; TFLite and ONNX have no such ops and are refused.

LoRA: Keras merges the adapters into the kernels whenever it saves, so every export holds merged
kernels by default. `--lora separate` instead writes the preset's own kernels with the trained
head, and the adapters as their own variables: `model.keras` plus keras-hub's `model.lora.h5`
(rank, lora_kernel_a and lora_kernel_b per layer; alpha and targets as attributes), or a
SavedModel whose variables include the adapters. The adapters are the ones the run kept beside
its model file (tftrain.models.hub_tuning.save_adapters); they are checked to merge into exactly
the kernels of that file before anything is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tftrain.errors import TftrainError, UserError

LORA = ("merged", "separate")  # --lora: merged into the kernels (Keras's saving), or kept as adapters
MERGE_TOLERANCE = 1e-5  # |merged kernel - (base + adapters)| / max(1, |merged|): float32 rounding of one sum


class Preprocessed:
    """A keras-hub task seen as the single-input model tftrain.commands.serving expects: raw
    inputs (strings, pixels) go through the task's preprocessor, then the task."""

    def __init__(self, task, input_dtype: str):
        self.task = task
        self.inputs = [SimpleNamespace(dtype=input_dtype)]
        self.outputs = task.outputs

    def __call__(self, inputs, training: bool = False):
        return self.task(self.task.preprocessor(inputs), training=training)


def raw_signature(run, config, raw_dtype: str | None):
    """The serving signature for the run's raw examples: one string (text), or the data's own
    image shape and dtype (images)."""
    from tftrain.commands.serving import Signature
    from tftrain.spec.checks import RunFacts

    train = (run.summary().get("data") or {}).get("train") or {}
    text = config.model.takes_strings()
    shape = () if text else tuple((train.get("x_shape") or [None, None])[1:])
    if not text and (not shape or None in shape):
        raise UserError(f"export: the run's summary.json records no image shape ({shape}); re-run it to export")
    return Signature(shape, "string" if text else (raw_dtype or "uint8"), RunFacts.of(config).read_as,
                     config.model.output_activation_name())


def write_saved_model(model, sig, path: Path) -> None:
    """A SavedModel whose `serving_default` takes the raw examples (the preprocessor inside)."""
    import keras

    from tftrain.commands.serving import serving_function, tensor_spec

    served = Preprocessed(model, "string" if sig.dtype == "string" else str(model.inputs[0].dtype))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_function(served, sig), input_signature=[tensor_spec(sig)])
    archive.write_out(str(path), verbose=False)


def refuse(fmt: str, task: str) -> None:
    """TFLite and ONNX: one line saying why a keras-hub model cannot go there."""
    runtime = "TFLite" if fmt == "tflite" else "ONNX"
    why = ("its serving function tokenizes raw strings with tensorflow-text ops (keras-hub's tokenizer)"
           if task == "text_classifier" else
           "its serving function resizes and rescales raw pixels with keras-hub's image converter first")
    raise UserError(f"export: --format {fmt}: model.type hub ({task}): {why}, which tftrain does not convert to "
                    f"{runtime}; export --format saved_model (it serves the raw inputs) or keras")


def check_separate(config, fmt: str, source) -> Path:
    """`--lora separate` fits this run: a hub model with LoRA, exported as keras or saved_model,
    whose adapters were kept beside the model file. Returns the adapters file."""
    from tftrain.models.hub_tuning import adapters_path

    if fmt not in ("keras", "saved_model"):
        raise UserError(f"--lora separate: applies to --format keras or saved_model (got --format {fmt}); "
                        "other formats hold merged kernels")
    if config.model.type != "hub" or getattr(config.model, "lora", None) is None:
        raise UserError(f"--lora separate: the run's model has no LoRA adapters (model.type {config.model.type}, "
                        "no model.lora); leave --lora out")
    adapters = adapters_path(source)
    if not adapters.is_file():
        raise UserError(f"--lora separate: {adapters} is missing (tftrain keeps the adapters beside every model "
                        "file it saves; this one was saved without them)")
    return adapters


def restore_base(model, config) -> list[np.ndarray]:
    """Put the preset's own backbone weights into `model` (loaded from a file with merged
    kernels); returns the file's backbone weights, for `attach_adapters` to check against."""
    import keras_hub

    from tftrain.models.hub import _loading

    merged = [np.array(w) for w in model.backbone.weights]
    with _loading(config.model.preset):
        base = keras_hub.models.Backbone.from_preset(config.model.source())
    model.backbone.set_weights(base.get_weights())
    return merged


def attach_adapters(model, config, adapters: Path, merged: list[np.ndarray]) -> None:
    """Enable the run's LoRA on `model`'s backbone and load its adapters; TftrainError unless
    every weight (a LoRA kernel with its adapters merged) equals the model file's `merged` one."""
    from tftrain.models.hub_tuning import apply_lora, lora_layers

    lora = config.model.lora
    weights = list(model.backbone.weights)  # before LoRA adds its variables: in the order of `merged`
    apply_lora(model.backbone, lora.rank, lora.alpha, lora.targets)
    model.backbone.load_lora_weights(str(adapters))
    # A LoRA layer's `kernel` is Keras's merged kernel (its variable `_kernel` plus the adapters' product).
    kernels = {id(layer._kernel): layer for layer in lora_layers(model.backbone) if layer.lora_enabled}
    for weight, saved in zip(weights, merged, strict=True):
        layer = kernels.get(id(weight))
        value = np.array(weight if layer is None else layer.kernel)
        difference = np.abs(value - saved).max() / max(1.0, float(np.abs(saved).max()))
        if difference > MERGE_TOLERANCE:
            raise TftrainError(f"--lora separate: {adapters} and the preset {config.model.preset} do not give the "
                               f"model file's {weight.path} (off by {difference:.3g}); nothing was written")


def export_hub(run, config, model, fmt: str, raw_dtype: str | None, target: Path) -> Path:
    """--format saved_model of a hub model (merged kernels); TFLite and ONNX refused."""
    from tftrain.commands.export_files import atomic_folder

    if fmt != "saved_model":
        refuse(fmt, config.model.task)
    sig = raw_signature(run, config, raw_dtype)
    atomic_folder(target, lambda tmp: write_saved_model(model, sig, tmp))
    return target


def export_separate(run, fmt: str, source, raw_dtype: str | None, target: Path) -> Path:
    """`--lora separate`: the run's model with its adapters unmerged (see the module docstring)."""
    from tftrain.models.hub_tuning import adapters_path
    from tftrain.security import load_model

    config = run.config()
    adapters = check_separate(config, fmt, source)
    if fmt == "keras" and adapters_path(target).exists():
        raise UserError(f"{adapters_path(target)}: already exists; remove it or choose another --output")
    sig = raw_signature(run, config, raw_dtype) if fmt == "saved_model" else None
    write_separate(load_model(source), config, fmt, sig, adapters, target)
    return target


def write_separate(model, config, fmt: str, sig, adapters: Path, target: Path) -> None:
    """The unmerged export: model.keras (the preset's kernels, the trained head) beside
    model.lora.h5 (the adapters), or a SavedModel whose variables include the adapters."""
    from tftrain.commands.export_files import atomic_file, atomic_folder
    from tftrain.models.hub_tuning import adapters_path

    merged = restore_base(model, config)
    if fmt == "saved_model":
        attach_adapters(model, config, adapters, merged)
        atomic_folder(target, lambda tmp: write_saved_model(model, sig, tmp))
        return
    staged = target.with_name(f".tmp-base-{target.name}")  # saved before LoRA is enabled: Keras would merge it
    try:
        model.save(staged)
        attach_adapters(model, config, adapters, merged)
        atomic_file(adapters_path(target), lambda tmp: shutil.copyfile(adapters, tmp))
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
