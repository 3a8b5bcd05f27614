"""Training: `run_config` (the one function that runs a config, as `tftrain run` does), sessions
(`run_training`, `resume_training`), the plan made before anything is built, the two loops
(model.fit and a tf.GradientTape loop), their shared callbacks, the resume state, tf.distribute
and the speed settings.

`run_config` and `Outcome` are loaded on first use: importing this package imports no TensorFlow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Outcome", "run_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tftrain.training import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
