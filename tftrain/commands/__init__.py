"""One module per user command beyond `run`: evaluate, predict, export, sweep, tune, smoke (run
--smoke), init, runs (runs and compare), plot. The CLI (tftrain.cli) parses arguments and
calls one function here."""
