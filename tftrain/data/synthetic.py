"""Generated datasets from the TensorFlow basic-training-loop and logistic-regression examples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tftrain.data.base import LoadedData

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig


def load_regression(cfg: DataConfig, seed: int) -> LoadedData:
    """`num_examples` points, y = (w + slope_noise*N(0, 1))*x + b + noise*N(0, 1), x on
    linspace(x_min, x_max) or drawn from N(x_mean, x_std)."""
    o = cfg.options
    rng = np.random.default_rng(seed)
    if o["x_distribution"] == "normal":
        x = rng.normal(o["x_mean"], o["x_std"], o["num_examples"]).astype(np.float32)
        where = f"x from N({o['x_mean']}, {o['x_std']})"
    else:
        x = np.linspace(o["x_min"], o["x_max"], o["num_examples"], dtype=np.float32)
        where = f"on [{o['x_min']}, {o['x_max']}]"
    noise = rng.standard_normal(x.shape).astype(np.float32) * np.float32(o["noise"])
    slope = np.float32(o["w"])
    if o["slope_noise"]:  # drawn after the noise, so configs without it keep their data
        slope = slope + rng.standard_normal(x.shape).astype(np.float32) * np.float32(o["slope_noise"])
    y = slope * x + np.float32(o["b"]) + noise
    w = f"N({o['w']}, {o['slope_noise']})" if o["slope_noise"] else f"{o['w']}"
    return LoadedData(
        x_train=x[:, None], y_train=y[:, None],
        source=f"synthetic: y = {w}*x + {o['b']} + {o['noise']}*N(0,1), {o['num_examples']} points {where}",
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
