"""`distill:`: the model being trained (the student) learns from a finished run's model (the
teacher) as well as from the labels. The training loss is

    alpha * task loss(labels, student) + (1 - alpha) * LogitsDistillation(T)(teacher, student)

where keras.distillation.LogitsDistillation(temperature=T, loss=KLDivergence()) is Keras's own term,
T^2 * mean over the batch of KL(softmax(teacher/T) || softmax(student/T)), and the combination is
the one keras.distillation.Distiller makes with `student_loss_weight = alpha`. The Distiller model
itself does not fit tftrain's loops: it is a keras.Model holding teacher and student, so
snapshots, the resume state and model.keras would hold the teacher too, and every callback
(snapshots, EMA, unfreeze, progress) would see the wrapper instead of the model. So the term joins
the loss inside each loop: fit's `compute_loss` (an instance attribute, as fit.py sets
`train_step`), the custom loop's train step. Validation reports the task loss alone, in both loops.

The teacher is loaded in Keras safe mode from the run's model.keras, frozen and called with
training=False (inference: dropout off, batch-norm moving statistics); it is held here, never by
the student, so nothing of it is saved. A keras-hub teacher (a fine-tuned BERT) reads the batch's
raw strings through its own preprocessor (its tokenizer: TensorFlow ops, so inside the step) while
the student reads them its own way (tftrain.data.text.strings). Under a strategy the custom loop
gives the term as a sum over the replica's examples divided by the global batch, as its labels'
loss (tftrain.training.custom); fit's Keras losses scale both per replica alike.

A teacher (or student) whose output layer applies softmax gives probabilities p: log(p) is used
as its logits, exactly (softmax(log(p)/T) = softmax(z/T), since log(p) = z - logsumexp(z)
differs from the logits z by a constant per example).

It has no state of its own: exact resume needs the same teacher, so summary.json records its
model file's sha256 and a resume with another file is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tftrain.errors import UserError
from tftrain.runs import MODEL, RunDir
from tftrain.security import load_model
from tftrain.spec.distill import teacher_problem
from tftrain.spec.loading import read_recorded
from tftrain.spec.schema import Config

SUMMARY_KEY = "distill"  # summary.json's record of the teacher


@dataclass(frozen=True)
class Distillation:
    """A frozen teacher and how its logits join the student's training loss."""

    teacher: keras.Model
    alpha: float
    temperature: float
    teacher_probabilities: bool  # its output layer applies softmax: log(p) are its logits
    student_probabilities: bool
    record: dict[str, Any]  # what summary.json says of the teacher
    term: Any = field(init=False)  # keras.distillation.LogitsDistillation: the batch's mean
    summed: Any = field(init=False)  # the same, summed over the batch (several replicas, custom loop)

    def __post_init__(self):
        # The loss given as a KLDivergence instance: Keras 3.15's default, the string "kl_divergence",
        # resolves to the kl_divergence function, which LogitsDistillation.compute_loss does not
        # recognise as KL (it checks isinstance KLDivergence): it would take the KL of the raw
        # logits / T, without the softmax and the T^2 (found here; tests/training/test_distill.py).
        for name, reduction in (("term", "sum_over_batch_size"), ("summed", "sum")):
            kl = keras.losses.KLDivergence(reduction=reduction)
            object.__setattr__(self, name, keras.distillation.LogitsDistillation(temperature=self.temperature, loss=kl))

    def total(self, x, task_loss, predictions, global_examples=None):
        """The training loss: the task's (labels, regularisation) and the teacher's term, weighed by alpha.
        `global_examples`: the custom loop on several replicas, whose `task_loss` is this replica's
        sum over the GLOBAL batch's size (tftrain.training.custom); the term is then summed the
        same way. Without it the term is the batch's mean, as `task_loss` (scaled by Keras's losses
        for the replicas alike under fit)."""
        teacher = _logits(tf.stop_gradient(self._teacher_outputs(x)), self.teacher_probabilities)
        student = _logits(predictions, self.student_probabilities)
        if global_examples is None:
            term = self.term.compute_loss(teacher, student)
        else:
            term = self.summed.compute_loss(teacher, student) / tf.cast(global_examples, tf.float32)
        task_loss = tf.cast(task_loss, tf.float32)
        return self.alpha * task_loss + (1.0 - self.alpha) * tf.cast(term, tf.float32)

    def _teacher_outputs(self, x):
        """The teacher on the batch: a keras-hub task's preprocessor (its own tokenizer, tf ops) reads
        the raw strings the student reads (one text a row, tftrain.data.text.strings) first."""
        preprocessor = getattr(self.teacher, "preprocessor", None)
        if preprocessor is not None:
            x = preprocessor(tf.reshape(x, [-1]))  # (batch, 1) texts -> (batch,), as the teacher trained on
        return self.teacher(x, training=False)

    def attach(self, model: keras.Model) -> None:
        """model.fit trains with `total`: Keras's train step calls model.compute_loss, which this
        sets on the instance (its test step, with training=False, gets the task loss alone)."""
        keras_loss = model.compute_loss

        def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
            loss = keras_loss(x, y, y_pred, sample_weight, training=training)
            return self.total(x, loss, y_pred) if training else loss

        model.compute_loss = compute_loss

    def note(self) -> str:
        """The line the run prints about its teacher."""
        probabilities = "; its softmax probabilities p are read as logits log(p)" if self.teacher_probabilities else ""
        return (f"distill: teacher {self.record['teacher']}, temperature {self.temperature:g}, alpha "
                f"{self.alpha:g} (the labels' share of the loss){probabilities}")

    def check_unchanged(self, summary: dict[str, Any]) -> None:
        """A resumed run needs the teacher it started with: refuse another model file."""
        recorded = (summary.get(SUMMARY_KEY) or {}).get("model_sha256")
        if recorded is not None and recorded != self.record["model_sha256"]:
            raise UserError(f"distill.teacher: {self.record['model']} changed since this run started (sha256 "
                            f"{recorded[:12]}... then, {self.record['model_sha256'][:12]}... now); resuming needs "
                            "the same teacher")


def _logits(outputs, probabilities: bool):
    outputs = tf.cast(outputs, tf.float32)
    if not probabilities:
        return outputs
    return tf.math.log(tf.clip_by_value(outputs, keras.config.epsilon(), 1.0))  # log(0) is -inf


def load_distillation(config: Config, num_classes: int | None, outputs: int) -> Distillation | None:
    """The teacher `config.distill` names, checked against the data as read (`num_classes`) and
    the student's `outputs`; None without `distill`. One-line UserError otherwise."""
    distill = config.distill
    if distill is None:
        return None
    folder = Path(distill.teacher).expanduser()
    problem = teacher_problem(folder, config, read_recorded)  # again: a resume reads the files after validate skipped them
    if problem:
        raise UserError(problem)
    run, path = RunDir(folder), folder / MODEL
    data = run.summary().get("data") or {}
    theirs = data.get("num_classes") if isinstance(data, dict) else None
    if isinstance(theirs, int) and num_classes is not None and theirs != num_classes:
        raise UserError(f"distill.teacher: {folder} was trained on {theirs} classes; this data has {num_classes}")
    sha256 = _file_sha256(path)
    try:
        teacher = load_model(path)  # Keras safe mode: a file with code is refused
    except UserError as exc:
        raise UserError(f"distill.teacher: {exc}") from None
    units = _output_units(teacher)
    if units != outputs:
        raise UserError(f"distill.teacher: {path} outputs {units if units is not None else 'several tensors'}"
                        f" per example; this model outputs {outputs}: the teacher must score the same classes")
    teacher.trainable = False
    teacher_config = run.config()
    record = {"teacher": str(folder.resolve()), "run": run.summary().get("name", folder.name),
              "config_name": teacher_config.name, "model": str(path.resolve()), "model_sha256": sha256,
              "temperature": distill.temperature, "alpha": distill.alpha,
              "teacher_outputs": _reads(teacher_config), "student_outputs": _reads(config)}
    return Distillation(teacher, distill.alpha, distill.temperature, _softmax(teacher_config), _softmax(config), record)


def _softmax(config: Config) -> bool:
    return config.model.output_activation_name() == "softmax"


def _reads(config: Config) -> str:
    return "probabilities (softmax): log(p) used as logits" if _softmax(config) else "logits"


def _output_units(model: keras.Model) -> int | None:
    """The units of the model's one output, per example; None for several outputs or other shapes."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None
    return model.outputs[0].shape[-1]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
