"""Dataset registry (NAME -> loader) and `load_data(config)`.

Each loader turns a `DataConfig` into NumPy arrays (`LoadedData`); tftrain.data.pipeline turns
those into tf.data pipelines. The names users may write live in tftrain.catalog (no NumPy import,
for `tftrain validate`); tests/test_catalog.py checks both lists agree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tftrain.config import Config, DataConfig
from tftrain.data import cifar, fashion_mnist, image_folder, mnist, npz, synthetic, tabular
from tftrain.data.base import LoadedData

DATASETS: dict[str, Callable[[DataConfig, int], LoadedData]] = {
    "mnist": mnist.load,
    "fashion_mnist": fashion_mnist.load,
    "cifar10": cifar.load,
    "npz": npz.load,
    "csv": tabular.load,
    "image_folder": image_folder.load,
    "synthetic_regression": synthetic.load_regression,
    "synthetic_binary": synthetic.load_binary,
}


def load_data(config: Config, seed: int) -> LoadedData:
    """Run the configured loader, then apply `data.limit` (the first N training examples)."""
    data = DATASETS[config.data.dataset](config.data, seed)
    limit = config.data.limit
    if limit is not None and limit < len(data.x_train):
        # np.array copies, so the full arrays can be freed.
        data = LoadedData(**{**data.__dict__, "x_train": np.array(data.x_train[:limit]),
                             "y_train": np.array(data.y_train[:limit])})
    return data
