"""A table's several label columns (data.options.label: a list; tftrain.spec.outputs).

Each label column is read on its own as the csv dataset reads its target (integers: classes,
text: class names in sorted order, other numbers: regression values), and the labels are kept
as one float32 matrix (N, outputs), column k being output k's class index or value (exact: class
counts are far below 2**24), so splits and batches are those of one label. What each output is
(its classes, their names) goes in LoadedData.extra["outputs"] (tftrain.models.outputs), and from
there into summary.json, which predict and evaluate read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import LoadedData, class_count
from tftrain.data.tables.csv import _targets
from tftrain.data.tables.rows import RAW_ROWS
from tftrain.spec.outputs import Head, heads

if TYPE_CHECKING:
    from tftrain.data.base import StreamedData
    from tftrain.spec.schema import Config

# LoadedData.extra key: per output (in order) its name, class count and class names (None: values).
OUTPUTS = "outputs"


def several_labels(tables: list, names: list[str], options: dict, as_table, check_numbers, what: str) -> LoadedData:
    """The LoadedData of typed tables (train[, test] Rows) with one output per label column."""
    labels, columns, outputs = options["label"], [[], []], []
    for label in labels:
        y_train, y_test, class_names = _targets([as_table(t, names, label) for t in tables], label, options["task"])
        classes = y_train.dtype == np.int32
        count = (len(class_names) if class_names else class_count(y_train, y_test)) if classes else None
        outputs.append({"name": label, "num_classes": count,
                        "class_names": list(class_names) if class_names else None})
        for split, y in zip(columns, (y_train, y_test)):
            if y is not None:
                split.append(np.asarray(y, np.float32).reshape(len(y)))
    for table in tables:
        check_numbers(table, names, options)
    x = [np.asarray(t.cells[:, [t.header.index(n) for n in names]], dtype=object) for t in tables]
    y = [np.stack(split, axis=1) if split else None for split in columns]
    kinds = {name: options["columns"][name]["type"] for name in names}
    read = str(tables[0].path) + (f" (test: {tables[1].path})" if len(tables) > 1 else "")
    shown = ", ".join(f"'{o['name']}' ({_kind(o)})" for o in outputs)
    return LoadedData(
        x_train=x[0], y_train=y[0], x_test=x[1] if len(x) > 1 else None, y_test=y[1],
        source=f"{read}: {what} ({', '.join(f'{n}: {k}' for n, k in kinds.items())}), targets {shown}",
        extra={"features": names, "label": list(labels), "columns": kinds, RAW_ROWS: True, OUTPUTS: outputs},
    )


def _kind(output: dict) -> str:
    """What a label column holds, in the data's description: whole numbers are classes or values
    as the output's loss says (classes_of)."""
    if output["class_names"]:
        return f"{len(output['class_names'])} classes"
    return "whole numbers: classes or values, as its loss says" if output["num_classes"] else "values"


def output_facts(data: LoadedData | StreamedData) -> list[dict]:
    """What the data say of each output ([] for one output)."""
    return list(data.extra.get(OUTPUTS) or [])


def classes_of(head: Head, fact: dict) -> int | None:
    """The classes an output's labels are read as, or None: values. Each label column's task is
    its own: text names classes; whole numbers are classes for a class loss and values for a
    regression loss (its loss says which, as data.options.task says for one label)."""
    if head.loss.task == "regression" and not fact.get("class_names"):
        return None
    return fact.get("num_classes")


class OutputLabels:
    """A batch's (N, outputs) label matrix -> {name: labels} as each output's loss takes them:
    int32 class indices (or one-hot rows for a one-hot loss), float32 (N, 1) values."""

    def __init__(self, config: Config, data: LoadedData | StreamedData):
        facts = {f["name"]: f for f in output_facts(data)}
        self.parts = [(h.name, classes_of(h, facts[h.name]), h.loss.task) for h in heads(config)]

    def __call__(self, y):
        import tensorflow as tf

        out = {}
        for k, (name, classes, task) in enumerate(self.parts):
            column = y[:, k]
            if classes is None or task not in ("classes", "one_hot"):  # values, or one unit's 0/1 labels
                out[name] = column[:, None]
            elif task == "one_hot":
                out[name] = tf.one_hot(tf.cast(column, tf.int32), classes, dtype=tf.float32)
            else:
                out[name] = tf.cast(column, tf.int32)
        return out

    def array(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """The same for labels in memory."""
        out = {}
        for k, (name, classes, task) in enumerate(self.parts):
            column = np.asarray(y)[:, k]
            if classes is None or task not in ("classes", "one_hot"):
                out[name] = column[:, None].astype(np.float32)
            elif task == "one_hot":
                out[name] = np.eye(classes, dtype=np.float32)[column.astype(np.int64)]
            else:
                out[name] = column.astype(np.int32)
        return out
