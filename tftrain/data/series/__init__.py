"""Time series: `timeseries` (a CSV in time order, cut into windows; tftrain.data.series.windows)
and what evaluating a forecast adds (MASE against the last value, the forecast over time:
tftrain.commands.evaluation_forecast)."""
