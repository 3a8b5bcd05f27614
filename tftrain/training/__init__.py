"""Training: sessions (`run_training`, `resume_training`), the plan made before anything is
built, the two loops (model.fit and a tf.GradientTape loop), their shared callbacks, the resume
state, tf.distribute and the speed settings."""
