"""Training: the two loops (model.fit and a tf.GradientTape loop), their shared callbacks, and
`run_training`, which turns a validated config into a finished run directory."""
