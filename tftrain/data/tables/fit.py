"""Where a typed table's preprocessing is fitted: once per run, on its training split only."""

from __future__ import annotations

from tftrain.data.base import LoadedData, StreamedData
from tftrain.data.pipeline.batches import split_for_training
from tftrain.data.tables.preprocessing import TablePreprocessing, check_sequences, fit_table
from tftrain.data.tables.typed import RAW_ROWS
from tftrain.spec.schema import Config


def fitted_table(config: Config, data: LoadedData | StreamedData) -> TablePreprocessing | None:
    """The preprocessing of a typed table fitted on the training split (never validation or
    test: data.validation's fraction is carved out first); None for other data."""
    if not data.extra.get(RAW_ROWS):
        return None
    train, _ = split_for_training(data, config, config.seed)
    options = config.data.options
    if config.data.dataset == "text_folder":  # one text column, its options at the top level
        from tftrain.data.text.folder import table_options

        options = table_options(options)
    table = fit_table(options, list(data.extra["features"]), train.x)
    check_sequences(table, config.model.type)
    return table
