"""A table's several label columns (data.options.label: a list; tftrain.spec.outputs).

Each label column is read on its own as the csv dataset reads its target (integers: classes,
text: class names in sorted order, other numbers: regression values), and the labels are kept
as one float32 matrix (N, outputs), column k being output k's class index or value (exact: class
counts are far below 2**24), so splits and batches are those of one label. What each output is
(its classes, their names) goes in LoadedData.extra["outputs"] (tftrain.models.outputs), and from
there into summary.json, which predict and evaluate read.
"""

from __future__ import annotations

import numpy as np

from tftrain.data.base import LoadedData, class_count
from tftrain.data.tables.csv import _targets
from tftrain.data.tables.typed import RAW_ROWS

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
    as the output's loss says (tftrain.models.outputs.classes_of)."""
    if output["class_names"]:
        return f"{len(output['class_names'])} classes"
    return "whole numbers: classes or values, as its loss says" if output["num_classes"] else "values"
