"""`image_folder`: one sub-folder per class (data.path/cat/*.jpg, data.path/dog/*.jpg, ...).

Files are listed as keras.utils.image_dataset_from_directory lists them (class folders in sorted
order, their files sorted, .bmp .gif .jpeg .jpg .png) and decoded, resized (`image_size`) and
rounded back to uint8 pixels by one function (`loader`), whichever way the data goes:

- a folder whose decoded size fits `data.in_memory_max_mb` is decoded once into a uint8 array,
  like every other image dataset (the model rescales it), with every sampling option;
- a larger one streams: the pipeline draws batches of paths in the same seeded order as arrays
  (random access by index: tftrain.data.pipeline.batches) and decodes each batch in parallel.

Before that the image headers are read (PIL, without decoding): a file that is not an image, or
images of different sizes without `image_size`, is one line naming the files. A streamed folder
always has its headers read; an in-memory one when it needs their size (no `image_size`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import (
    FileList,
    LabelSummary,
    LoadedData,
    StreamedData,
    first_line,
    fits_in_memory,
    streaming_reason,
)
from tftrain.errors import DataError
from tftrain.safe_files import describe, is_regular

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
# Images decoded per step while loading into memory; bounds the float32 staging memory to a few MB.
LOAD_BATCH = 64
FORMATS = ".bmp, .gif, .jpeg, .jpg, .png"  # what image_dataset_from_directory accepts
EXTENSIONS = tuple(FORMATS.split(", "))
DECODABLE = {"JPEG", "PNG", "GIF", "BMP", "MPO"}  # PIL's names for what tf.io.decode_image reads (MPO: a JPEG)
HEADER_THREADS = 8  # reading headers is file opens: threads overlap their latency


def load(cfg: DataConfig, seed: int) -> LoadedData | StreamedData:
    """Images (N, height, width, channels) uint8 and int32 labels, classes in sorted folder order."""
    options = cfg.options
    if cfg.path is None:
        raise DataError("data.path: the image_folder dataset needs a folder with one sub-folder of "
                        f"images ({FORMATS}) per class")
    train_dir = _folder(cfg.path, "data.path")
    train_paths, train_labels, class_names = list_folder(train_dir)
    test_dir = test_paths = test_labels = None
    if options["test_path"] is not None:
        test_dir = _folder(options["test_path"], "data.options.test_path")
        test_paths, test_labels, _ = list_folder(test_dir, class_names)
    channels = CHANNELS[options["color_mode"]]
    every = train_paths + (test_paths or [])
    size = tuple(options["image_size"]) if options["image_size"] is not None else None
    count = len(every)
    nbytes = count * channels * (size[0] * size[1] if size else 0)
    in_memory = size is not None and fits_in_memory(cfg.in_memory_max_mb, nbytes)
    if not in_memory:  # the headers: non-images up front, and the size when image_size does not set it
        native = read_headers(every, train_dir, same_size=size is None)
        size = size or native
        nbytes = count * channels * size[0] * size[1]
        in_memory = fits_in_memory(cfg.in_memory_max_mb, nbytes)
    load_batch = loader(size, channels, options)
    source = f"{train_dir}" + (f" (test: {test_dir})" if test_dir else "") + \
        f": {len(class_names)} class folders, {count:,} images, " + \
        (f"resized to {size[0]}x{size[1]}" if options["image_size"] else f"{size[0]}x{size[1]}") + \
        f" {options['color_mode']}"
    common = dict(input_scale=1 / 255,  # uint8 pixels: the model's Rescaling layer maps them to [0, 1]
                  num_classes=len(class_names), source=source, class_names=class_names)
    if in_memory:
        x_test = None if test_paths is None else decode_all(test_paths, load_batch, size, channels)
        return LoadedData(x_train=decode_all(train_paths, load_batch, size, channels), y_train=train_labels,
                          x_test=x_test, y_test=test_labels, **common)
    train = FileList(np.array(train_paths), train_labels, load_batch, explain=_explainer(every, load_batch))
    test = None if test_paths is None else FileList(np.array(test_paths), test_labels, load_batch,
                                                     explain=train.explain)
    return StreamedData(train=train, test=test, input_shape=(*size, channels), input_dtype="uint8",
                        label_shape=(), label_dtype="int32", train_labels=LabelSummary.of(train_labels),
                        test_labels=None if test_labels is None else LabelSummary.of(test_labels),
                        reason=streaming_reason(cfg.in_memory_max_mb, nbytes), **common)


def list_folder(folder: Path, class_names: tuple[str, ...] | None = None):
    """(paths, int32 labels, class names) of `folder`'s class sub-folders, in Keras's order."""
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    names = class_names if class_names is not None else tuple(found)
    unknown = [d for d in found if d not in names]
    if unknown:
        raise DataError(f"{folder}: class folder '{unknown[0]}' is not one of the training classes "
                        f"({', '.join(names)})")
    paths, labels = [], []
    for label, name in enumerate(names):
        if name not in found:
            continue
        for root, _, files in sorted(os.walk(folder / name), key=lambda walk: walk[0]):
            chosen = [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
            for path in chosen:  # a FIFO named like an image would block the header reader forever
                if not is_regular(path):
                    raise DataError(f"{path}: {describe(path)}; an image folder holds image files only")
            paths += chosen
            labels += [label] * len(chosen)
    if not paths:
        expected = (f"the class sub-folders {', '.join(class_names)}" if class_names
                    else f"one sub-folder per class holding {FORMATS} images")
        raise DataError(f"{folder}: No images found in its class sub-folders (expected {expected})")
    return paths, np.array(labels, np.int32), names


def read_headers(paths: list[str], folder: Path, same_size: bool = True) -> tuple[int, int]:
    """Every file's image header (PIL reads it without decoding): the size they share (the first
    one's where `same_size` is off: image_size resizes them); a DataError for a file that is not
    an image TensorFlow decodes, or (`same_size`) for images of different sizes."""
    from PIL import Image

    def header(path: str):
        try:
            with Image.open(path) as image:
                return image.format, image.size
        except Exception as exc:  # noqa: BLE001 (PIL raises UnidentifiedImageError, OSError, ValueError, ...)
            return None, first_line(exc)

    sizes: dict[tuple[int, int], str] = {}
    with ThreadPoolExecutor(HEADER_THREADS) as pool:
        for path, (kind, size) in zip(paths, pool.map(header, paths, chunksize=256)):
            if kind not in DECODABLE:
                why = f"{kind} images are not read by TensorFlow" if kind else size
                raise DataError(f"{path}: not a readable image ({why}); expected {FORMATS} images")
            sizes.setdefault(size, path)
    if same_size and len(sizes) > 1:
        (a, path_a), (b, path_b) = list(sizes.items())[:2]
        raise DataError(f"{folder}: images of different sizes ({path_a} is {a[0]}x{a[1]}, {path_b} is "
                        f"{b[0]}x{b[1]}, width x height): set data.options.image_size: [height, width] to resize "
                        "them to one size")
    width, height = next(iter(sizes))
    return height, width


def loader(size: tuple[int, int], channels: int, options: dict):
    """A batch of paths (1-D tf.string) -> uint8 images (batch, height, width, channels): decoded,
    resized as image_dataset_from_directory does when image_size is set, rounded to the pixel grid."""
    import tensorflow as tf

    resize = options["image_size"] is not None
    spec = tf.TensorSpec((*size, channels), tf.uint8)

    def one(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        if resize:
            if options["crop_to_aspect_ratio"]:
                image = _center_crop(image, size)
            image = tf.image.resize(image, size, method=options["interpolation"])
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)  # float32 -> the uint8 grid
        return tf.ensure_shape(image, spec.shape)

    def load_batch(paths):
        return tf.map_fn(one, paths, fn_output_signature=spec)

    return load_batch


def _center_crop(image, size: tuple[int, int]):
    """The largest centred crop of the target's aspect ratio (keras.preprocessing.image.smart_resize's)."""
    import tensorflow as tf

    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    crop_height = tf.minimum(shape[0], tf.cast(width * size[0] / size[1], tf.int32))
    crop_width = tf.minimum(shape[1], tf.cast(height * size[1] / size[0], tf.int32))
    top, left = (shape[0] - crop_height) // 2, (shape[1] - crop_width) // 2
    return image[top:top + crop_height, left:left + crop_width]


def decode_all(paths: list[str], load_batch, size: tuple[int, int], channels: int) -> np.ndarray:
    """Every image, decoded into one uint8 array (a DataError names a file that does not decode)."""
    import tensorflow as tf

    images = np.empty((len(paths), *size, channels), np.uint8)
    batches = tf.data.Dataset.from_tensor_slices(paths).batch(LOAD_BATCH).map(
        load_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    iterator, start = iter(batches), 0
    while start < len(paths):
        try:
            batch = next(iterator)
        except tf.errors.OpError:
            raise DataError(_bad_image(paths[start:start + LOAD_BATCH], load_batch)) from None
        images[start:start + len(batch)] = batch.numpy()
        start += len(batch)
    return images


def _bad_image(paths: list[str], load_batch) -> str:
    """Find which file of a failed batch TensorFlow cannot decode, and say so in one line."""
    import tensorflow as tf

    from tftrain.data.pipeline.streaming import tf_message

    for path in paths:
        try:
            load_batch(tf.constant([path]))
        except tf.errors.OpError as exc:
            return f"{path}: not a readable image ({tf_message(exc)})"
    return f"one of {paths[0]} ... {paths[-1]}: not a readable image"


def _explainer(paths: list[str], load_batch):
    """For a streamed folder: a decoding error while training -> the file at fault, where
    decoding the files again finds it within a minute."""

    def explain(exc: BaseException) -> str | None:
        import time

        import tensorflow as tf

        if not isinstance(exc, (tf.errors.InvalidArgumentError, tf.errors.NotFoundError)):
            return None
        deadline = time.monotonic() + 60
        for start in range(0, len(paths), LOAD_BATCH):
            if time.monotonic() > deadline:
                break
            try:
                load_batch(tf.constant(paths[start:start + LOAD_BATCH]))
            except tf.errors.OpError:
                return _bad_image(paths[start:start + LOAD_BATCH], load_batch) + " (it changed since the run started?)"
        from tftrain.data.pipeline.streaming import tf_message

        return f"{paths[0]} ...: decoding an image failed while training: {tf_message(exc)}"

    return explain


def _folder(path: str, key: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{key}: {folder} is not a folder; expected one sub-folder per class "
                        f"holding {FORMATS} images")
    return folder
