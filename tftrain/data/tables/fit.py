"""Where a typed table's preprocessing is fitted: once per run, on its training split only."""

from __future__ import annotations

from collections.abc import Iterator

from tftrain.data.base import LoadedData, StreamedData
from tftrain.data.pipeline.batches import split_for_training, training_in_order
from tftrain.data.tables.preprocessing import ADAPT_BATCH, TablePreprocessing, array_batches, check_sequences, fit_table
from tftrain.data.tables.rows import RAW_ROWS
from tftrain.spec.schema import Config


def fitted_table(config: Config, data: LoadedData | StreamedData) -> TablePreprocessing | None:
    """The preprocessing of a typed table fitted on the training split (never validation or
    test: data.validation's fraction is carved out first); None for other data."""
    if not data.extra.get(RAW_ROWS):
        return None
    options = config.data.options
    if config.data.dataset == "text_folder":  # one text column, its options at the top level
        from tftrain.data.text.folder import table_options

        options = table_options(options)
    elif config.data.dataset == "npz":  # an npz of strings (tftrain.data.text.strings): text_folder's defaults
        from tftrain.data.text.folder import table_options
        from tftrain.data.text.strings import table_defaults

        options = table_options(table_defaults())
    table = fit_table(options, list(data.extra["features"]), training_rows(config, data))
    check_sequences(table, config.model.type)
    return table


def training_rows(config: Config, data: LoadedData | StreamedData) -> Iterator:
    """The training split's rows, a batch at a time: from memory, or read once from the files
    in order (a streamed table, a text folder read file by file), with the same split."""
    if data.streamed:
        return (x for x, _ in training_in_order(data, config, config.seed, batch_size=ADAPT_BATCH))
    return array_batches(split_for_training(data, config, config.seed)[0].x)
