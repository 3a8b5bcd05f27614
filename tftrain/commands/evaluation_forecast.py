"""What `tftrain evaluate` adds for a forecast (timeseries data): the model against the naive
forecast, and the forecast over time.

The naive forecast of a window's target is the target's last value in the window (the last
observed value carried `horizon` steps on). MASE here is the model's MAE over the naive
forecast's MAE on the same evaluation windows: below 1, the model beats carrying the last
value forward. Reported where the target is one of the input columns (else there is no last value).
"""

from __future__ import annotations

import numpy as np

from tftrain.data.pipeline.batches import split_for_evaluation
from tftrain.runs.plots import save_png

FORECAST_PLOT = "plots/forecast.png"


def forecast_section(run, data, config, predicted: np.ndarray, title: str) -> dict | None:
    """eval.json's `forecast` (MAE, RMSE, naive MAE, MASE, the plot); None for other data."""
    index = data.extra.get("naive_index")
    if not data.extra.get("time_ordered") or index is None:
        return None
    split = split_for_evaluation(data, config, config.seed)
    true, predicted = split.y.reshape(-1), np.asarray(predicted, np.float64).reshape(-1)
    naive = split.x[:, -1, index].astype(np.float64)
    mae, naive_mae = float(np.mean(np.abs(predicted - true))), float(np.mean(np.abs(naive - true)))
    save_png(_figure(true, predicted, naive, title), run.file(FORECAST_PLOT))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean((predicted - true) ** 2))), "naive_mae": naive_mae,
            "mase": mae / naive_mae if naive_mae > 0 else None, "plot": FORECAST_PLOT}


def _figure(true: np.ndarray, predicted: np.ndarray, naive: np.ndarray, title: str):
    """Predicted, naive and true targets over the evaluation windows, in time order."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.6, 4.0), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(true, label="true", linewidth=1.5)
    ax.plot(predicted, label="predicted", linewidth=1)
    ax.plot(naive, label="naive (last value)", linewidth=1, linestyle=":", color="gray")
    ax.set_xlabel("window (time order)")
    ax.set_ylabel("target")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure
