"""`tftrain export RUN_DIR --format F`: a run's model in a format other tools load.

- saved_model: a TensorFlow SavedModel for TF Serving / tf.saved_model.load, made by Keras's own
  `model.export` (a `serve` endpoint and the `serving_default` signature).
- keras: the native `.keras` file (a byte-for-byte copy of the run's model).
- h5: the legacy Keras HDF5 file, for tools that still read it.
- weights: the weights alone (`.weights.h5`), to load into the same architecture.

Everything is written under a temporary name first and renamed into place, so an existing export
is never half-overwritten; an existing output is refused rather than replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tftrain.errors import UserError
from tftrain.runs import EXPORT, RunDir
# format -> (default name under RUN_DIR/export, required suffix of --output)
FORMATS: dict[str, tuple[str, str]] = {
    "saved_model": ("saved_model", ""),
    "keras": ("model.keras", ".keras"),
    "h5": ("model.h5", ".h5"),
    "weights": ("model.weights.h5", ".weights.h5"),
}


def export_run(run_dir: str | Path, fmt: str, output: str | Path | None = None,
               checkpoint: str = "last") -> Path:
    """Export the run's model (final, or the best checkpoint) and return where it went."""
    if fmt not in FORMATS:
        raise UserError(f"--format: unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    run = RunDir.open(run_dir)
    default_name, suffix = FORMATS[fmt]
    target = Path(output) if output is not None else run.file(EXPORT) / default_name
    if suffix and not target.name.endswith(suffix):
        raise UserError(f"--output: the {fmt} format needs a file name ending in {suffix}, got {str(target)!r}")
    if target.exists():
        raise UserError(f"{target}: already exists; remove it or choose another --output")

    from tftrain.commands.evaluate import load_model, model_path

    source = model_path(run, checkpoint)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "keras":
        _atomic_file(target, lambda tmp: shutil.copyfile(source, tmp))
        return target
    model = load_model(source)  # safe mode: nothing in the file is executed
    if fmt == "saved_model":
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        try:
            shutil.rmtree(tmp)  # model.export creates the folder itself
            model.export(str(tmp), format="tf_saved_model", verbose=False)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    elif fmt == "h5":
        _atomic_file(target, lambda tmp: model.save(tmp))
    else:
        _atomic_file(target, lambda tmp: model.save_weights(tmp))
    return target


def _atomic_file(target: Path, write) -> None:
    # Keras checks the suffix, so the temporary name keeps the target's full suffix.
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def signature_text(path: Path) -> str:
    """`serving_default: inputs (None, 28, 28) float32 -> output_0 (None, 10) float32` of a SavedModel."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    inputs = ", ".join(f"{name} {tuple(spec.shape)} {spec.dtype.name}"
                       for name, spec in fn.structured_input_signature[1].items())
    outputs = ", ".join(f"{name} {tuple(spec.shape)} {spec.dtype.name}"
                        for name, spec in fn.structured_outputs.items())
    return f"serving_default: {inputs} -> {outputs}"
