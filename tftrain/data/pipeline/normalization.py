"""`data.normalize`: what the model does to raw inputs before its first layer.

- `auto`: uint8 images are scaled to [0, 1] (Rescaling(1/255)); other data is left as it is.
- `per_channel`: keras.layers.Normalization with the mean and variance of every channel (images
  with a channel axis) or every feature (vectors: a CSV's columns), computed on the training
  split (never validation or test), and saved in the model, so predict and export take raw inputs.
- `none`: raw inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.spec.schema import Config

CHUNK = 4096  # examples summed at a time, in float64: no float copy of the whole training set


def check_normalization(config: Config, data: LoadedData | StreamedData) -> None:
    """`per_channel` needs a channel (or feature) axis: vectors, or images (height, width, channels)."""
    shape = tuple(data.input_shape)
    windows = data.extra.get("time_ordered")  # a series' windows (steps, columns): the columns are the channels
    if config.data.normalize == "per_channel" and len(shape) == 2 and not windows:
        raise DataError(f"data.normalize: per_channel needs a channel axis; the examples of {config.data.dataset} "
                        f"have shape {shape} (images without one): use auto (scaled to [0, 1]) or none")


def channel_statistics(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) variance of the last axis of `x` over every other axis, exact in
    float64 (what keras.layers.Normalization.adapt computes, without a float copy of x)."""
    return chunked_statistics(lambda: (x[start:start + CHUNK] for start in range(0, len(x), CHUNK)))


def chunked_statistics(chunks: Callable[[], Iterable[np.ndarray]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """channel_statistics over data read in pieces: `chunks()` yields them, once per pass (two
    passes, mean then squared deviations, as in memory; streamed data is read twice)."""
    count, total = 0, None
    for chunk in chunks():
        part = chunk.reshape(-1, chunk.shape[-1])
        total = part.sum(axis=0, dtype=np.float64) + (0 if total is None else total)
        count += len(part)
    mean = total / count
    squares = np.zeros_like(mean)
    for chunk in chunks():
        part = chunk.reshape(-1, chunk.shape[-1]).astype(np.float64)
        squares += ((part - mean) ** 2).sum(axis=0)
    return tuple(float(m) for m in mean), tuple(float(v) for v in squares / count)
