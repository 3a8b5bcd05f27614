"""`image_folder`: one sub-folder per class (data.path/cat/*.jpg, data.path/dog/*.jpg, ...).

Files are found, decoded and resized by keras.utils.image_dataset_from_directory, then kept as
uint8 NumPy arrays like every other image dataset (the model rescales them), so shuffling,
validation split and limit work exactly as for CIFAR-10. That suits folders that fit in memory
(a few tens of thousands of small images); larger ones are a job for a streaming pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tftrain.config import DataConfig
from tftrain.data.base import LoadedData, first_line
from tftrain.errors import DataError

CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# Images decoded per step while loading; bounds the float32 staging memory to a few MB.
LOAD_BATCH = 64
FORMATS = ".bmp, .gif, .jpeg, .jpg, .png"  # what image_dataset_from_directory accepts


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Images (N, height, width, channels) uint8 and int32 labels, classes in sorted folder order."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the image_folder dataset needs a folder with one sub-folder of "
                        f"images ({FORMATS}) per class")
    train_dir = _folder(cfg.path, "data.path")
    x_train, y_train, class_names = read_folder(train_dir, options)
    x_test = y_test = None
    if options["test_path"] is not None:
        test_dir = _folder(options["test_path"], "data.options.test_path")
        x_test, y_test, _ = read_folder(test_dir, options, class_names)
    height, width = options["image_size"]
    return LoadedData(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        input_scale=1 / 255,  # uint8 pixels: the model's Rescaling layer maps them to [0, 1]
        num_classes=len(class_names),
        source=f"{train_dir}" + (f" (test: {options['test_path']})" if x_test is not None else "")
               + f": {len(class_names)} class folders, resized to {height}x{width} {options['color_mode']}",
        class_names=class_names,
    )


def read_folder(folder: Path, options: dict, class_names: tuple[str, ...] | None = None):
    """Decode every image under `folder` into (uint8 images, int32 labels, class names)."""
    import keras  # deferred: TensorFlow is needed only once an image folder is actually read
    import tensorflow as tf

    height, width = options["image_size"]
    try:
        dataset = keras.utils.image_dataset_from_directory(
            folder, labels="inferred", label_mode="int",
            class_names=list(class_names) if class_names is not None else None,
            color_mode=options["color_mode"], batch_size=None, image_size=(height, width),
            shuffle=False,  # file order: the pipeline shuffles with the run's seed
            interpolation=options["interpolation"], crop_to_aspect_ratio=options["crop_to_aspect_ratio"],
            verbose=False)
    except ValueError as exc:
        expected = (f"the class sub-folders {', '.join(class_names)}" if class_names
                    else f"one sub-folder per class holding {FORMATS} images")
        raise DataError(f"{folder}: {first_line(exc)} (expected {expected})") from None
    paths = list(dataset.file_paths)
    names = tuple(dataset.class_names)
    images = np.empty((len(paths), height, width, CHANNELS[options["color_mode"]]), np.uint8)
    labels = np.empty(len(paths), np.int32)
    start = 0
    iterator = iter(dataset.batch(LOAD_BATCH))
    while start < len(paths):
        try:
            x, y = next(iterator)
        except tf.errors.OpError:
            raise DataError(_bad_image(paths[start:start + LOAD_BATCH])) from None
        # Resizing interpolates in float32; round back to the uint8 pixel grid.
        images[start:start + len(y)] = np.clip(np.rint(x.numpy()), 0, 255).astype(np.uint8)
        labels[start:start + len(y)] = y.numpy()
        start += len(y)
    return images, labels, names


def _bad_image(paths: list[str]) -> str:
    """Find which file of a failed batch TensorFlow cannot decode, and say so in one line."""
    import tensorflow as tf

    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except tf.errors.OpError as exc:
            return f"{path}: not a readable image ({first_line(exc)})"
    return f"one of {paths[0]} ... {paths[-1]}: not a readable image"


def _folder(path: str, key: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{key}: {folder} is not a folder; expected one sub-folder per class "
                        f"holding {FORMATS} images")
    return folder
