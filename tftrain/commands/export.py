"""`tftrain export RUN_DIR --format F`: a run's model in a format other tools load.

- saved_model: a TensorFlow SavedModel for TF Serving / tf.saved_model.load. Its
  `serving_default` signature takes raw inputs as the data come (uint8 images) and returns class
  probabilities and the class index (tftrain.commands.serving); `serve` is Keras's own endpoint
  (float inputs, the model's raw outputs).
- tflite: the same function as a TFLite file, optionally quantized (`--quantize none|dynamic|
  float16|int8`; tftrain.commands.tflite), checked in the LiteRT interpreter.
- onnx: the same function as ONNX (the optional extra tftrain[onnx]), checked in onnxruntime.
- keras: the native `.keras` file (a byte-for-byte copy of the run's model).
- h5: the legacy Keras HDF5 file, for tools that still read it.
- weights: the weights alone (`.weights.h5`), to load into the same architecture.

A TFLite or ONNX file is run on the run's evaluation split before it is written and compared with
the Keras model (tftrain.commands.export_check); a float32 one that does not match is not written.
Everything is written under a temporary name first and renamed into place, so an existing export
is never half-overwritten; an existing output is refused rather than replaced.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.commands.export_files import atomic_file, atomic_folder
from tftrain.errors import TftrainError, UserError
from tftrain.runs import EXPORT, RunDir, check_output
from tftrain.security import refuse_code

if TYPE_CHECKING:
    from tftrain.commands.export_check import Verification

# format -> (default name under RUN_DIR/export, required suffix of --output)
FORMATS: dict[str, tuple[str, str]] = {
    "saved_model": ("saved_model", ""),
    "tflite": ("model.tflite", ".tflite"),
    "onnx": ("model.onnx", ".onnx"),
    "keras": ("model.keras", ".keras"),
    "h5": ("model.h5", ".h5"),
    "weights": ("model.weights.h5", ".weights.h5"),
}
# Largest |exported - Keras| / max(1, |Keras|) a float32 export may show: float32 rounding in
# another kernel library (XNNPACK, MLAS) stays near 1e-6.
TOLERANCES = {"tflite": 1e-5, "onnx": 1e-4}
# Streamed data is verified on this many of its evaluation examples: enough to catch a wrong
# conversion, without reading (and holding) a dataset larger than memory.
VERIFY_STREAMED = 10_000


@dataclass(frozen=True)
class Exported:
    """Where an export went and, for TFLite and ONNX, what running it showed."""

    path: Path
    verification: Verification | None = None


def export_run(run_dir: str | Path, fmt: str, output: str | Path | None = None, checkpoint: str = "last",
               quantize: str | None = None, lora: str = "merged") -> Exported:
    """Export the run's model (final, or the best checkpoint); TFLite and ONNX files are verified
    in their runtime first. `lora`: merged (into the kernels) or separate (tftrain.commands.hub_export)."""
    quantize = _check_request(fmt, quantize)
    from tftrain.commands.hub_export import LORA

    if lora not in LORA:
        raise UserError(f"--lora: expected one of {', '.join(LORA)}, got {lora!r}")
    run = RunDir.open(run_dir)
    target = _target(run, fmt, output, quantize)
    from tftrain.runs.model import model_path

    source = model_path(run, checkpoint)
    raw_dtype = ((run.summary().get("data") or {}).get("train") or {}).get("x_dtype")
    if quantize == "int8":
        _check_numeric(raw_dtype)
    if fmt == "onnx":
        from tftrain.commands import onnx_export

        onnx_export.require()
    with made_folders(target.parent):  # a refused export leaves no empty export/ behind
        if lora == "separate":
            from tftrain.commands.hub_export import export_separate

            return Exported(export_separate(run, fmt, source, raw_dtype, target))
        return _write(run, fmt, source, raw_dtype, target, quantize)


@contextlib.contextmanager
def made_folders(folder: Path):
    """Make `folder` (and missing parents); if the block fails, remove those this made, while empty."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if missing:
        missing[0].mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for made in missing:  # deepest first; one holding something (another process's file) stays
            try:
                made.rmdir()
            except OSError:
                break
        raise


def _write(run: RunDir, fmt: str, source, raw_dtype: str | None, target: Path, quantize: str | None) -> Exported:
    """Write the export (the checks of export_run passed)."""
    from tftrain.security import load_model

    if fmt == "keras":
        refuse_code(Path(source))  # a copy is as unsafe as a load: the same check as loading
        atomic_file(target, lambda tmp: shutil.copyfile(source, tmp))
        return Exported(target)
    model = load_model(source)  # safe mode: nothing in the file is executed
    if fmt == "h5":
        atomic_file(target, lambda tmp: model.save(tmp))
        return Exported(target)
    if fmt == "weights":
        atomic_file(target, lambda tmp: model.save_weights(tmp))
        return Exported(target)
    from tftrain.commands.serving import signature_for
    from tftrain.spec.checks import RunFacts, head_reads

    config = run.config()
    if config.model.type == "hub":  # keras-hub: the preprocessor (tokenizer, image converter) goes inside
        from tftrain.commands.hub_export import export_hub

        return Exported(export_hub(run, config, model, fmt, raw_dtype, target))
    sig = signature_for(model, raw_dtype, RunFacts.of(config).read_as, config.model.output_activation_name(),
                        head_reads(config))
    if fmt == "saved_model":
        atomic_folder(target, lambda tmp: write_saved_model(model, sig, tmp))
        return Exported(target)
    if sig.dtype == "string":
        raise UserError(f"export: --format {fmt}: the model's input 'inputs' is rows of text cells (a table with typed "
                        f"columns), which {'TFLite' if fmt == 'tflite' else 'ONNX'} cannot take; export --format "
                        "saved_model (it serves raw rows), or train on numeric columns only (no data.options.columns)")
    return _export_checked(config, model, sig, fmt, quantize, Path(source), target)


def _check_request(fmt: str, quantize: str | None) -> str | None:
    from tftrain.commands.tflite import QUANTIZE

    if fmt not in FORMATS:
        raise UserError(f"--format: unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if quantize is not None and fmt != "tflite":
        raise UserError(f"--quantize: applies to --format tflite only (got --format {fmt})")
    if fmt == "tflite":
        quantize = quantize or "none"
        if quantize not in QUANTIZE:
            raise UserError(f"--quantize: expected one of {', '.join(QUANTIZE)}, got {quantize!r}")
    return quantize


def _target(run: RunDir, fmt: str, output: str | Path | None, quantize: str | None) -> Path:
    default_name, suffix = FORMATS[fmt]
    if quantize not in (None, "none"):
        default_name = f"model-{quantize}.tflite"
    target = Path(output) if output is not None else run.file(EXPORT) / default_name
    if suffix and not target.name.endswith(suffix):
        raise UserError(f"--output: the {fmt} format needs a file name ending in {suffix}, got {str(target)!r}")
    if target.exists():
        raise UserError(f"{target}: already exists; remove it or choose another --output")
    return check_output(target)  # a parent that is a file, a name too long


def _check_numeric(raw_dtype: str | None) -> None:
    """int8 calibration feeds the data's own values through the model: they must be numbers."""
    try:
        numeric = raw_dtype is None or np.dtype(raw_dtype).kind in "iuf"
    except TypeError:
        numeric = False
    if not numeric:
        raise UserError(f"--quantize int8: the model's inputs are {raw_dtype}, not numbers, so there is nothing to "
                        "calibrate int8 ranges on; use --quantize dynamic or float16")


def write_saved_model(model, sig, path: Path) -> None:
    """A SavedModel: `serving_default` (raw inputs -> the task's named outputs) and `serve`
    (Keras's endpoint: float inputs -> the model's outputs)."""
    import keras
    import tensorflow as tf

    from tftrain.commands.serving import INPUT_NAME, serving_function, tensor_spec

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_function(model, sig), input_signature=[tensor_spec(sig)])
    float_spec = tf.TensorSpec((None, *sig.shape), model.inputs[0].dtype, name=INPUT_NAME)
    archive.add_endpoint("serve", lambda inputs: model(inputs, training=False), input_signature=[float_spec])
    archive.write_out(str(path), verbose=False)


def _export_checked(config, model, sig, fmt: str, quantize: str | None, source: Path, target: Path) -> Exported:
    """Convert to TFLite or ONNX, run the file on the evaluation split, write it if it matches."""
    from tftrain.commands.export_check import verify
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import evaluation_arrays
    from tftrain.models.components import build_loss

    data = load_data(config, config.seed)
    split = evaluation_arrays(data, config, config.seed, VERIFY_STREAMED)
    if fmt == "tflite":
        from tftrain.commands import tflite

        content = _tflite_content(model, sig, quantize, _calibration(data, config) if quantize == "int8" else None)
        runtime, run = tflite.interpreter_class()[1], (lambda x: tflite.run(content, x))
    else:
        from tftrain.commands import onnx_export
        from tftrain.commands.serving import serving_function, tensor_spec

        content = onnx_export.convert(serving_function(model, sig), tensor_spec(sig))
        runtime, run = onnx_export.runtime_name(), (lambda x: onnx_export.run(content, x))
    label = fmt if quantize in (None, "none") else f"{fmt} {quantize}"
    check = verify(model, run, sig, split.x, split.y, build_loss(config.loss), config.data.batch_size,
                   format=label, runtime=runtime, split=split.name, keras_bytes=source.stat().st_size,
                   exported_bytes=len(content), tolerance=TOLERANCES[fmt] if label == fmt else None)
    if not check.passed:
        raise TftrainError(f"{fmt}: the converted model's {check.output} differ from Keras by up to "
                           f"{check.max_difference:.3g} (allowed {check.tolerance:g}) on {split.name}; "
                           f"{target} was not written")
    atomic_file(target, lambda tmp: tmp.write_bytes(content))
    return Exported(target, check)


def _tflite_content(model, sig, quantize: str, calibration: np.ndarray | None) -> bytes:
    from tftrain.commands import tflite

    with tempfile.TemporaryDirectory(prefix="tftrain-tflite-") as tmp:
        saved = Path(tmp) / "saved_model"
        write_saved_model(model, sig, saved)
        try:
            return tflite.convert(saved, quantize, calibration)
        except Exception as exc:  # ConverterError, or what a converter pass raises (ValueError, RuntimeError)
            raise UserError(tflite.explain(exc, [layer.name for layer in model.layers], quantize)) from exc


def _calibration(data, config) -> np.ndarray:
    """int8's representative data: CALIBRATION_EXAMPLES training examples (of the split the run
    trained on), drawn with the run's seed, in the data's own dtype."""
    from tftrain.commands.tflite import CALIBRATION_EXAMPLES
    from tftrain.data.pipeline.batches import training_sample

    return training_sample(data, config, config.seed, CALIBRATION_EXAMPLES)


def signature_text(path: Path) -> str:
    """One line per signature of a SavedModel, e.g.
    `serving_default: inputs (None, 28, 28) uint8 -> class (None,) int64, probabilities (None, 10) float32`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    lines = []
    for name in sorted(loaded.signatures, key=lambda n: n != "serving_default"):
        fn = loaded.signatures[name]
        inputs = ", ".join(f"{key} {tuple(spec.shape)} {spec.dtype.name}"
                           for key, spec in fn.structured_input_signature[1].items())
        outputs = ", ".join(f"{key} {tuple(spec.shape)} {spec.dtype.name}"
                            for key, spec in sorted(fn.structured_outputs.items()))
        lines.append(f"{name}: {inputs} -> {outputs}")
    return "\n".join(lines)
