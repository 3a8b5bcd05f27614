"""Upper bounds on the layer parameters that size what a layer builds or how long it takes to
build (issue 34): past these a layer never finishes building (RandAugment with `num_ops: 1e9`
traces a billion ops) or allocates without end (a 100,000-pixel crop or resize). Each bound is
far above any model that trains on one machine; the message states it.

Also the layer `name`s TensorFlow accepts as scope names: a name Keras takes but TensorFlow
refuses passes `validate` and then crashes the run mid-training after its directory is written.
"""

from __future__ import annotations

import re
from typing import Any

MAX_SIDE = 16_384  # pixels: a crop, resize or pad side (a 16k x 16k x 3 float32 image is 3 GiB)
BOUNDS = {
    # how many ops or passes a layer traces
    "num_ops": 64, "num_chains": 64, "chain_depth": 64, "power_iterations": 1_000, "num_layers": 1_024,
    # output sizes
    "height": MAX_SIDE, "width": MAX_SIDE, "size": 1_024, "cropping": MAX_SIDE, "padding": MAX_SIDE,
    "units": 1_048_576, "filters": 65_536, "kernel_size": 4_096, "pool_size": 4_096, "strides": 4_096,
    "dilation_rate": 4_096, "depth_multiplier": 1_024, "num_heads": 1_024, "key_dim": 65_536, "value_dim": 65_536,
    "output_dim": 1_048_576, "input_dim": 100_000_000, "num_tokens": 100_000_000, "num_bins": 100_000_000,
    "max_tokens": 100_000_000, "bins": 1_000_000, "num_mel_bins": 65_536, "fft_length": 1_048_576,
    "sequence_length": 1_048_576, "n": 1_048_576, "max_number": 1_048_576, "groups": 65_536,
}
# TensorFlow's op-name rule (tensorflow/python/framework/ops.py) less "/", which Keras refuses
NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.>-]{0,199}")


def check_bound(key: str, value: Any, where: str) -> None:
    """ValueError when a sizing parameter exceeds its bound (ints or lists of ints) or a layer
    name is not one TensorFlow accepts."""
    if key == "name" and isinstance(value, str) and not NAME.fullmatch(value):
        raise ValueError(f"{where}: layer name {value!r:.80} cannot be used by TensorFlow; expected letters, "
                         "digits and . _ - > (starting with a letter, digit or .), at most 200 characters")
    limit = BOUNDS.get(key)
    if limit is None:
        return
    values = value if isinstance(value, list) else [value]
    for v in _ints(values):
        if abs(v) > limit:
            raise ValueError(f"{where}: expected a value <= {limit:,}, got {v:,} (larger would not build on one "
                             "machine)")


def _ints(values: list) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, list):
            out += _ints(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
    return out
