"""The `distill:` block (knowledge distillation from a finished run) and what can be checked of
its teacher without TensorFlow: that it is a completed tftrain run, with a model file, that
trained a classifier on the same data as this config. The training side (loading the teacher,
the loss) is tftrain.training.distill; the teacher's number of classes is checked there, against
the data as read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from tftrain.spec.base import Strict, show

if TYPE_CHECKING:
    from tftrain.spec.checks import RunFacts
    from tftrain.spec.schema import Config

# The run files the check reads (tftrain.runs names them too; spec sits below runs and cannot import it).
TEACHER_FILES = ("config.yaml", "summary.json", "model.keras")
CLASSIFIER_TASKS = ("classes", "one_hot")  # softmax over several classes: what logits distillation matches
DATA_KEYS = ("dataset", "path", "options")  # what makes two runs' examples the same


class DistillConfig(Strict):
    """`distill: {teacher: RUN_DIR, temperature: 3.0, alpha: 0.1}`: the model learns from a finished
    run's logits as well as from the labels. The training loss is (as keras.distillation.Distiller
    with student_loss_weight = alpha)
        alpha * task loss(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T)).
    """

    teacher: Annotated[str, Field(min_length=1)]  # no default: the run to learn from is the user's choice
    temperature: Annotated[float, Field(gt=0)] = 3.0  # keras.distillation.LogitsDistillation's default (3-5 typical)
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.1  # the labels' share; Hinton et al. weigh the soft targets most


def problems(config: Config, facts: RunFacts) -> str | None:
    """What stops `config.distill` from training, read from the config alone (the teacher's run
    files: teacher_problem)."""
    if facts.task not in CLASSIFIER_TASKS:
        return (f"distill: matches the class probabilities of a classifier, but loss {config.loss.canonical} trains "
                f"{'a regression' if facts.task == 'regression' else 'one output unit (' + facts.task + ')'}; "
                "use sparse_categorical_crossentropy or categorical_crossentropy")
    if config.model.type == "hub":
        return ("distill: model.type hub is not supported as a student (its preprocessor makes its own inputs); a "
                "small model on the same data is: e.g. type dense on an npz of strings")
    if config.training.distribute == "multi_worker":
        return "distill: training.distribute multi_worker is not supported (none or mirrored)"
    return None  # the teacher's run files: teacher_problem, which validate (tftrain.spec.loading) runs next


def teacher_problem(folder: Path, config: Config, load: Callable[[Path], Config]) -> str | None:
    """Whether the run at `folder` can teach `config`: a completed run with a model, a classifier
    over the same data. `load` reads its config.yaml as recorded (plugins not imported): it is
    tftrain.spec.loading's, which calls this module (so passed in rather than imported)."""
    from tftrain.errors import UserError

    where = f"distill.teacher: {folder}"
    if not folder.is_dir():
        return f"{where}: no such run directory (the teacher is a finished tftrain run)"
    missing = next((name for name in TEACHER_FILES[:2] if not (folder / name).is_file()), None)
    if missing:
        return f"{where}: not a tftrain run directory (no {missing})"
    status = _status(folder)
    if status != "completed":
        return f"{where}: the run has not finished (status {show(status)}); distill from a completed run"
    if not (folder / TEACHER_FILES[2]).is_file():
        return f"{where}: the run holds no {TEACHER_FILES[2]}"
    try:
        theirs = load(folder / TEACHER_FILES[0])
    except UserError as exc:
        return f"{where}: its config.yaml does not load: {str(exc).splitlines()[0]}"
    if theirs.loss.task not in CLASSIFIER_TASKS:
        return f"{where}: trained loss {theirs.loss.canonical}, not a classifier over several classes"
    return _other_data(where, theirs.data.model_dump(), config.data.model_dump())


def _status(folder: Path) -> Any:
    try:
        summary = json.loads((folder / TEACHER_FILES[1]).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "unreadable summary.json"
    return summary.get("status") if isinstance(summary, dict) else "unreadable summary.json"


def _other_data(where: str, theirs: dict, ours: dict) -> str | None:
    """The first data key whose value differs between the teacher's config and this one."""
    for key in DATA_KEYS:
        a, b = theirs.get(key), ours.get(key)
        if key == "path" and a is not None and b is not None:
            a, b = str(Path(a).expanduser().resolve()), str(Path(b).expanduser().resolve())
        if key == "options":
            differ = next((k for k in sorted({*a, *b}) if a.get(k) != b.get(k)), None)
            if differ is not None:
                return (f"{where}: trained on other data: data.options.{differ} is {show(a.get(differ))} there, "
                        f"{show(b.get(differ))} here; the teacher must read the same examples")
        elif a != b:
            return (f"{where}: trained on other data: data.{key} is {show(theirs.get(key))} there, "
                    f"{show(ours.get(key))} here; the teacher must read the same examples")
    return None
