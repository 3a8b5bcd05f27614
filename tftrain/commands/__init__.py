"""One module per user command beyond `run` (which is tftrain.training.run_config, and its
`--smoke` tftrain.training.smoke): evaluate, predict, export, sweep, tune, init, runs (runs and
compare), plot. The CLI (tftrain.cli) parses arguments and calls one function here."""
