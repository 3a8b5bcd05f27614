"""A typed table's fitted preprocessing as part of the resume state.

The statistics and vocabularies are fitted on the training split when a run is prepared, new
or resumed (tftrain.data.tables.fit), and built into the model as constants. Their fingerprint
is saved with the resume state; a resumed run whose refit differs (the file was edited, say)
stops with one line instead of training on with other vocabularies than the weights learned.
"""

from __future__ import annotations

from typing import Any

import keras

from tftrain.data.tables.preprocessing import TablePreprocessing
from tftrain.errors import DataError


class PreprocessingState(keras.callbacks.Callback):
    """Stateful (tftrain.training.resume): saves the fingerprint, checks it when resumed."""

    state_key = "table_preprocessing"

    def __init__(self, table: TablePreprocessing):
        super().__init__()
        self.table = table

    def get_state(self) -> dict[str, Any]:
        return {"fingerprint": self.table.fingerprint()}

    def set_state(self, state: dict[str, Any]) -> None:
        saved, now = str(state.get("fingerprint")), self.table.fingerprint()
        if saved != now:
            raise DataError(f"data: the typed columns' statistics and vocabularies refitted on the training split "
                            f"({now}) differ from those the run trained with ({saved}): the data changed since; "
                            "resume on the same files, or start a new run")


def preprocessing_callbacks(spec) -> list[keras.callbacks.Callback]:
    """The resume-state entry of a model spec's typed table ([] for other data)."""
    return [] if spec.table is None else [PreprocessingState(spec.table)]
