"""`tftrain evaluate` (and predict's class names) for a model with several outputs (tftrain.spec.outputs):
each output read as its own task, under its own name: a per-class table with the class names
for a class output, MAE/RMSE/R² for a numeric one, and its plots in plots/NAME/.
"""

from __future__ import annotations

import numpy as np


def output_classes(trained_on: dict) -> dict[str, list | None]:
    """Each output's class names as the data gave them (summary.json's data.outputs, or the
    loaded data's extra)."""
    found = trained_on.get("outputs") if isinstance(trained_on, dict) else None
    return {o["name"]: o.get("class_names") for o in found or [] if isinstance(o, dict) and "name" in o}


def evaluate_outputs(run, model, batches, reads: tuple, class_names: dict, title: str, tag: str | None,
                     analyse) -> dict:
    """Per output: its task and `analyse`'s sections (tftrain.commands.evaluate's, passed in: it
    calls this module), plots in plots/NAME/."""
    from tftrain.commands.evaluation_report import read_predictions

    outputs, labels = _predict(model, batches)
    found = {}
    for name, task, activation in reads:
        names = class_names.get(name)
        p = read_predictions(outputs[name], labels[name], task, activation, tuple(names) if names else None)
        found[name] = {"task": task, **analyse(run, p, f"{title}: {name}", f"{tag}/{name}" if tag else name)}
    return found


def _predict(model, batches) -> tuple[dict, dict]:
    """Each output's values and labels over every batch, in order."""
    outputs: dict[str, list] = {}
    labels: dict[str, list] = {}
    for x, y in batches:
        for name, value in model.predict_on_batch(x).items():
            outputs.setdefault(name, []).append(np.asarray(value))
            labels.setdefault(name, []).append(y[name].numpy())
    return ({k: np.concatenate(v) for k, v in outputs.items()}, {k: np.concatenate(v) for k, v in labels.items()})


def output_tables(result: dict, tables) -> list:
    """What the console shows per output: a title line, then that output's tables."""
    shown: list = []
    for name, section in result["outputs"].items():
        shown.append(f"output {name} ({section['task']})")
        shown += tables({**section, "metrics": {}})[1:]  # the metrics table is the whole model's
    return shown
