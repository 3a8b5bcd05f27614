"""An `npz` whose inputs are raw strings (one text per example, as a keras-hub text classifier
reads them), for a model that does not tokenize itself: the texts become one text column, as
`text_folder`'s are, so TextVectorization fitted on the training split goes inside the model
(tftrain.data.tables.preprocessing) with text_folder's default options. This is the small
model a keras-hub run distils into (`distill:`): both read the same file.
"""

from __future__ import annotations

from dataclasses import replace

from tftrain.data.base import LoadedData
from tftrain.data.tables.rows import RAW_ROWS
from tftrain.data.text.folder import COLUMN


def is_text(data) -> bool:
    """One string per example (an (N,) array of str), held in memory."""
    return isinstance(data, LoadedData) and data.x_train.ndim == 1 and data.x_train.dtype.kind == "U"


def as_text_column(data: LoadedData) -> LoadedData:
    """The texts as rows of one text cell ((N, 1) object arrays), as text_folder loads them."""
    def rows(x):
        return None if x is None else x.astype(object)[:, None]

    return replace(data, x_train=rows(data.x_train), x_test=rows(data.x_test),
                   extra={**data.extra, "features": [COLUMN], "label": None, "columns": {COLUMN: "text"},
                          RAW_ROWS: True})


def table_defaults() -> dict:
    """text_folder's default text options (vocabulary size, tf-idf), for an npz of strings."""
    from tftrain.spec.datasets import TextFolderOptions

    return TextFolderOptions().model_dump()
