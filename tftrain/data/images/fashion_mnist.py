"""Fashion-MNIST from its four IDX gzip files.

Looked for in data.path, the Keras cache (`<KERAS_HOME>/datasets/fashion-mnist`, where
keras.datasets.fashion_mnist keeps them), Debian/Ubuntu's `dataset-fashion-mnist` package
(`/usr/share/datasets/fashion-mnist`), else downloaded like Keras does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tftrain.data.base import LoadedData, download, keras_cache_dir
from tftrain.data.images import idx
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CACHE_SUBDIR = "fashion-mnist"
# Installed by `apt-get install dataset-fashion-mnist` (Debian 11+, Ubuntu 20.10+).
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot")
IMAGE_SHAPE = (28, 28)


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Load Fashion-MNIST as uint8 28x28 images and int32 labels 0..9."""
    return idx.load_folder(locate(cfg.path), IMAGE_SHAPE, CLASS_NAMES)


def locate(path: str | None) -> dict[str, Path]:
    """The four files from data.path, the Keras cache, the Debian package, else a download."""
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DataError(f"data.path: {folder} is not a folder; expected a folder holding "
                            f"{', '.join(idx.GZ_NAMES)}")
        found = idx.find_files(folder)
        if len(found) < len(idx.FILES):
            raise DataError(f"data.path: {folder} lacks {', '.join(idx.missing_names(found))} "
                            f"(get them from {ORIGIN} or `apt-get install dataset-fashion-mnist`)")
        return found
    cache = keras_cache_dir() / CACHE_SUBDIR
    for folder in (cache, SYSTEM_DIR):
        found = idx.find_files(folder)
        if len(found) == len(idx.FILES):
            return found
    how = (f"fashion_mnist: {', '.join(idx.GZ_NAMES)} not found in {cache} or {SYSTEM_DIR}; "
           f"download them from {ORIGIN} into {cache}, or `apt-get install dataset-fashion-mnist`, "
           "or set data.path to a folder holding them")
    # Keras publishes no hashes for these files; read_idx checks each one's header against its size.
    paths = [download(name, ORIGIN + name, None, how, cache_subdir=f"datasets/{CACHE_SUBDIR}")
             for name in idx.GZ_NAMES]
    return dict(zip(idx.FILES, paths))
