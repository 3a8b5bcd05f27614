"""Generated datasets from the TensorFlow basic-training-loop and logistic-regression examples."""

from __future__ import annotations

import numpy as np

from tftrain.config import DataConfig
from tftrain.data.base import LoadedData


def load_regression(cfg: DataConfig, seed: int) -> LoadedData:
    """`num_examples` points on linspace(x_min, x_max), y = w*x + b + noise*N(0, 1)."""
    o = cfg.options
    rng = np.random.default_rng(seed)
    x = np.linspace(o["x_min"], o["x_max"], o["num_examples"], dtype=np.float32)
    noise = rng.standard_normal(x.shape).astype(np.float32) * np.float32(o["noise"])
    y = np.float32(o["w"]) * x + np.float32(o["b"]) + noise
    return LoadedData(
        x_train=x[:, None], y_train=y[:, None],
        source=f"synthetic: y = {o['w']}*x + {o['b']} + {o['noise']}*N(0,1), "
               f"{o['num_examples']} points on [{o['x_min']}, {o['x_max']}]",
        extra={"true_w": o["w"], "true_b": o["b"]},
    )


def load_binary(cfg: DataConfig, seed: int) -> LoadedData:
    """Half the points from N(-mean, std) labelled 0, half from N(mean, std) labelled 1."""
    o = cfg.options
    rng = np.random.default_rng(seed)
    half = o["num_examples"] // 2
    counts = (half, o["num_examples"] - half)
    x = np.concatenate([rng.normal(-o["mean"], o["std"], counts[0]),
                        rng.normal(o["mean"], o["std"], counts[1])]).astype(np.float32)
    y = np.concatenate([np.zeros(counts[0]), np.ones(counts[1])]).astype(np.float32)
    return LoadedData(
        x_train=x[:, None], y_train=y[:, None], num_classes=2,
        source=f"synthetic: {counts[0]} points from N({-o['mean']}, {o['std']}) labelled 0, "
               f"{counts[1]} from N({o['mean']}, {o['std']}) labelled 1",
    )
