"""What `tftrain evaluate` evaluates: which of a run's models (`--checkpoint`, by default the best
one where the run tracked a monitor), and on which data (`--data CONFIG_OR_PATH`: other data of
the kind the run trained on, instead of the run's own evaluation split)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tftrain.errors import UserError
from tftrain.runs import RunDir
from tftrain.spec.loading import compose_config, validate
from tftrain.spec.schema import Config

CONFIG_SUFFIXES = (".yaml", ".yml")


def default_checkpoint(run: RunDir) -> str:
    """`best` where the run tracked a monitor and kept its best model, else `last`."""
    best = run.summary().get("best") or {}
    return "best" if best.get("value") is not None and run.snapshot("best").is_file() else "last"


def checkpoint_note(run: RunDir, checkpoint: str, model: str) -> str:
    """The line that says which model an evaluation used, and how to pick the other one."""
    best = run.summary().get("best") or {}
    if checkpoint == "best" and best.get("value") is not None:
        return (f"model: {model} (the best {best['monitor']}, {best['value']:.6g} at epoch {best['epoch']}; "
                "--checkpoint last for the last weights)")
    if checkpoint == "last":
        return f"model: {model} (the last weights; --checkpoint best for the best {best.get('monitor', 'epoch')})"
    return f"model: {model}"


def other_data(config: Config, given: str) -> tuple[Config, str]:
    """The run's config with other data, and a name for what is written about it: a YAML file's
    `data:` block as it is, or the run's dataset read from PATH, all of it (its test split where
    the format has one, else every example: no validation fraction, no limit)."""
    path = Path(given)
    if path.suffix.lower() in CONFIG_SUFFIXES and path.is_file():
        raw_data = compose_config(path).raw.get("data")
        if not isinstance(raw_data, dict):
            raise UserError(f"--data: {path} has no data: block; expected a config whose data: says what to "
                            "evaluate on, or a data file or folder")
    else:
        raw_data = config.data.model_dump(mode="json")
        options = {k: v for k, v in raw_data.get("options", {}).items() if k != "test_path"}
        raw_data.update(path=given, validation="none", limit=None, options=options)
    raw = {**config.model_dump(mode="json"), "data": raw_data}
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem or path.name).strip("-") or "data"
    return validate(raw), tag


def check_same_kind(model_input: tuple, data, trained_on: dict[str, Any], given: str) -> None:
    """The model must be able to read the other data's examples, and its classes must be the run's."""
    shape = tuple(data.input_shape)
    if tuple(model_input) != shape:
        raise UserError(f"--data: {given} has examples of shape {shape}, but the model takes {tuple(model_input)}")
    names = trained_on.get("class_names")
    if isinstance(names, list) and data.class_names is not None and list(data.class_names) != names:
        raise UserError(f"--data: {given} has the classes {', '.join(data.class_names)}, but the run was trained on "
                        f"{', '.join(names)}; the class indices would not mean the same")
    classes = trained_on.get("num_classes")
    if isinstance(classes, int) and data.num_classes is not None and data.num_classes > classes:
        raise UserError(f"--data: {given} has labels up to {data.num_classes - 1}, but the model has {classes} classes")


def tagged(name: str, tag: str | None) -> str:
    """A file name of an evaluation on other data: eval-TAG.json, plots/TAG/x.png (None: `name`)."""
    if tag is None:
        return name
    path = Path(name)
    if path.parent == Path("."):
        return f"{path.stem}-{tag}{path.suffix}"
    return str(path.parent / tag / path.name)
