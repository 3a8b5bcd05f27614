"""Time series (issue 28): `timeseries` windows, a validation part that is the last in time with
no window crossing it, and a forecast that beats carrying the last value forward (MASE < 1)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from tests.kit import run_refused


def write_series(path: Path, hours: int = 24 * 40, seed: int = 0) -> Path:
    """Hourly temperatures: a daily and a weekly cycle, a slow trend, noise; and a humidity column."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    temp = 15 + 6 * np.sin(2 * np.pi * t / 24) + 2 * np.sin(2 * np.pi * t / 168) + 0.02 * t / 24
    temp += rng.normal(0, 0.4, hours)
    humidity = 60 - 2 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, hours)
    start = dt.datetime(2024, 1, 1)
    lines = ["time,temp,humidity"] + [f"{(start + dt.timedelta(hours=int(i))).isoformat()},{temp[i]:.3f},"
                                      f"{humidity[i]:.2f}" for i in t]
    path.write_text("\n".join(lines) + "\n")
    return path


def series_config(path: Path, **options) -> dict:
    return {"name": "forecast", "seed": 0,
            "data": {"dataset": "timeseries", "path": str(path), "batch_size": 32, "validation": 0.2,
                     "normalize": "per_channel",
                     "options": {"target": "temp", "time_column": "time", "window": 48, "horizon": 6, **options}},
            "model": {"type": "dense", "hidden": [32], "output_activation": None}, "loss": "mse",
            "optimizer": {"name": "adam", "learning_rate": 0.003}, "metrics": ["mae"], "training": {"epochs": 15}}


def test_a_forecast_beats_the_last_value_and_evaluate_reports_mase(cli, write_config, tmp_path):
    config = write_config(series_config(write_series(tmp_path / "series.csv")))
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    evaluated = cli("evaluate", run, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["split"] == "validation (the last 0.2 in time)"
    forecast = report["forecast"]
    assert forecast["mase"] < 1, forecast
    assert forecast["mase"] == pytest.approx(forecast["mae"] / forecast["naive_mae"])
    assert forecast["rmse"] >= forecast["mae"] > 0
    assert (run / forecast["plot"]).is_file() and report["plots"]["forecast"] == forecast["plot"]


def test_windows_are_kerass_and_no_window_crosses_into_validation(tmp_path):
    import keras

    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import split_for_training
    from tftrain.data.series.windows import windows
    from tftrain.spec.loading import load_config

    path = write_series(tmp_path / "s.csv", hours=200)
    options = {"window": 10, "horizon": 3, "stride": 2}
    values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2), dtype=np.float32)
    x, y = windows(values, values[:, 0], options)
    # Keras: targets[i] belongs to the window starting at row i * stride
    ds = keras.utils.timeseries_dataset_from_array(values, values[10 - 1 + 3:, 0], sequence_length=10,
                                                   sequence_stride=2, batch_size=1000)
    kx, ky = next(iter(ds))
    assert len(x) == (200 - (10 + 3)) // 2 + 1  # every window whose target row exists
    assert len(kx) >= len(x)  # Keras's windows go on where targets run out: the same ones first
    np.testing.assert_array_equal(x, kx.numpy()[:len(x)])
    np.testing.assert_array_equal(y[:, 0], ky.numpy()[:len(x)])

    (tmp_path / "c.yaml").write_text(json.dumps(series_config(path, **options)))
    config = load_config(tmp_path / "c.yaml")
    data = load_data(config, 0)
    train, validation = split_for_training(data, config, 0)
    assert len(validation.x) == max(1, round(len(data.x_train) * 0.2))
    # rows are told apart by the humidity column's values: the last training window's target row
    # comes before the first validation window's first row
    rows = {round(float(v), 2): i for i, v in enumerate(values[:, 1])}
    last_train_target_row = rows[round(float(train.x[-1, -1, 1]), 2)] + 3
    first_validation_row = rows[round(float(validation.x[0, 0, 1]), 2)]
    assert last_train_target_row < first_validation_row



def test_bad_series_are_one_line_and_write_nothing(cli, write_config, tmp_path):
    path = write_series(tmp_path / "s.csv", hours=100)
    line = run_refused(cli, tmp_path, write_config(series_config(path, window=200)))
    assert "data.options.window: " in line or "shorter than a window" in line, line
    assert "data.options.target: column 'tmp' is not in" in run_refused(cli, tmp_path, write_config(
        series_config(path, target="tmp")))
    text = path.read_text().splitlines()
    text[5], text[6] = text[6], text[5]
    path.write_text("\n".join(text) + "\n")
    line = run_refused(cli, tmp_path, write_config(series_config(path)))
    assert f"{path}: line 7, column 'time':" in line and "comes before the previous row's" in line, line
    text[5] = text[6]
    path.write_text("\n".join(text) + "\n")
    assert "repeats the previous row's" in run_refused(cli, tmp_path, write_config(series_config(path)))
