"""Verifying an exported file in its own runtime against the Keras model, on the run's evaluation
split: file sizes, accuracy (or the run's loss, for regression) of both, the largest difference
of the main output, and how often both pick the same class.

A float32 export must match Keras within its format's tolerance (relative to the output's size
where outputs exceed 1), else it is not written; a quantized one is reported as measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from tftrain.commands.evaluation_report import true_classes
from tftrain.commands.serving import Signature, reference_outputs

# A quantized classifier agreeing with the float model on fewer examples than this gets a warning.
MIN_CLASS_AGREEMENT = 0.9


@dataclass(frozen=True)
class Verification:
    """What running an exported file on the evaluation split showed."""

    format: str  # `tflite int8`, `onnx`
    runtime: str  # `LiteRT 2.3.0`, `onnxruntime 1.32.0`
    split: str
    examples: int
    keras_bytes: int
    exported_bytes: int
    quality: str  # accuracy (classifiers) or the run's loss (regression)
    keras_quality: float
    exported_quality: float
    output: str  # the output compared: probabilities, score or values
    max_difference: float
    max_relative_difference: float  # |Δ| / max(1, |Keras output|): what the tolerance bounds
    class_agreement: float | None
    tolerance: float | None  # None: quantized, reported only

    @property
    def passed(self) -> bool:
        """Within tolerance (always, for a quantized export)."""
        return self.tolerance is None or self.max_relative_difference <= self.tolerance

    @property
    def warning(self) -> str | None:
        """A quantized classifier that gives the Keras model's class on under
        MIN_CLASS_AGREEMENT of the examples: written (it is reported only), but said plainly."""
        if self.tolerance is not None or self.class_agreement is None or self.class_agreement >= MIN_CLASS_AGREEMENT:
            return None
        return (f"{self.format} gives the Keras model's class on only {self.class_agreement:.1%} of the "
                f"{self.examples} examples of {self.split} (under {MIN_CLASS_AGREEMENT:.0%}): check it on your "
                "data, calibrate on more examples, or quantize less (float16, dynamic)")

    def to_dict(self) -> dict:
        """Plain data, for --json."""
        return {**asdict(self), "passed": self.passed, "warning": self.warning}


def verify(model, run_exported: Callable[[np.ndarray], dict], sig: Signature, x: np.ndarray, y: np.ndarray,
           loss_fn, batch_size: int, **facts) -> Verification:
    """Run `x` through the exported file (`run_exported`) and through Keras; compare.
    `facts`: format, runtime, split, keras_bytes, exported_bytes, tolerance."""
    expected = reference_outputs(model, x, sig, batch_size)
    got = run_exported(x)
    main = sig.outputs[0]
    reference = expected[main].astype(np.float64)
    exported = np.asarray(got[main], np.float64).reshape(reference.shape)
    difference = np.abs(exported - reference)
    relative = difference / np.maximum(1.0, np.abs(reference))
    if sig.task == "regression":
        quality = "loss"
        keras_quality = float(loss_fn(y, expected[main]))
        exported_quality = float(loss_fn(y, exported.astype(np.float32)))
        agreement = None
    else:
        quality = "accuracy"
        truth = true_classes(y, sig.task)
        keras_quality = float(np.mean(expected["class"] == truth))
        exported_quality = float(np.mean(np.asarray(got["class"]) == truth))
        agreement = float(np.mean(np.asarray(got["class"]) == expected["class"]))
    return Verification(examples=len(x), quality=quality, keras_quality=keras_quality,
                        exported_quality=exported_quality, output=main,
                        max_difference=float(difference.max(initial=0.0)), class_agreement=agreement,
                        max_relative_difference=float(relative.max(initial=0.0)), **facts)


def verification_heading(v: Verification) -> str:
    """`tflite int8 run in LiteRT 2.3.0 on test (10000 examples):`."""
    return f"{v.format} run in {v.runtime} on {v.split} ({v.examples} examples):"


def verification_table(v: Verification):
    """Keras against the exported file, one row per measure."""
    from tftrain.console import Table

    table = Table()
    table.add_column("")
    table.add_column("keras", justify="right")
    table.add_column(v.format, justify="right")
    table.add_column("change", justify="right")
    table.add_row("file size", _size(v.keras_bytes), _size(v.exported_bytes),
                  f"{v.exported_bytes / v.keras_bytes:.2f}x")
    if v.quality == "accuracy":
        change = f"{100 * (v.exported_quality - v.keras_quality):+.2f} pp"
        table.add_row("accuracy", f"{v.keras_quality:.4f}", f"{v.exported_quality:.4f}", change)
        table.add_row("same class", "", f"{v.class_agreement:.2%}", "")
    else:
        table.add_row("loss", f"{v.keras_quality:.6g}", f"{v.exported_quality:.6g}",
                      f"{v.exported_quality - v.keras_quality:+.3g}")
    bound = f"(allowed {v.tolerance:g})" if v.tolerance is not None else "(quantized)"
    table.add_row(f"max |Δ| {v.output}", "", f"{v.max_difference:.3g}", bound)
    return table


def _size(n: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
