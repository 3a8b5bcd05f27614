"""Dataset registry (NAME -> loader) and `load_data(config)`.

Each loader turns a `DataConfig` into NumPy arrays (`LoadedData`) or, for data larger than
`data.in_memory_max_mb`, a description of the files to stream (`StreamedData`);
tftrain.data.pipeline.batches turns either into tf.data pipelines. The names users may write live in
tftrain.spec.datasets (no NumPy import, for `tftrain validate`); tests/config/test_catalog.py checks both
lists agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tftrain.data import synthetic
from tftrain.data.images import cifar, fashion_mnist, image_folder, mnist, npz
from tftrain.data.records import tfds, tfrecord
from tftrain.data.series import windows as series
from tftrain.data.tables import csv as tabular
from tftrain.data.tables import typed
from tftrain.data.text import folder as text_folder
from tftrain.data.text import strings as text

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.spec.schema import Config, DataConfig

LOADERS: dict[str, Callable[[DataConfig, int], LoadedData | StreamedData]] = {
    "mnist": mnist.load,
    "fashion_mnist": fashion_mnist.load,
    "cifar10": cifar.load,
    "npz": npz.load,
    "csv": tabular.load,  # with options.columns: tftrain.data.tables (see load_data)
    "jsonl": typed.load_jsonl,
    "text_folder": text_folder.load,
    "timeseries": series.load,
    "image_folder": image_folder.load,
    "tfrecord": tfrecord.load,
    "tfds": tfds.load,
    "synthetic_regression": synthetic.load_regression,
    "synthetic_binary": synthetic.load_binary,
}


def load_data(config: Config, seed: int) -> LoadedData | StreamedData:
    """Run the configured loader, then apply `data.limit` (the first N training examples)."""
    typed_csv = config.data.dataset == "csv" and config.data.options.get("columns") is not None
    data = (typed.load_csv if typed_csv else LOADERS[config.data.dataset])(config.data, seed)
    if config.data.dataset == "npz" and not config.model.takes_strings() and text.is_text(data):
        data = text.as_text_column(data)  # raw strings for a model without a tokenizer: a text column
    limit = config.data.limit
    if limit is not None and limit < data.train_count:
        data = data.limited(limit)
    return data
