"""tftrain: train TensorFlow/Keras models from YAML configs.

The Python API (tftrain.api) is imported on first use, so `import tftrain` imports no
TensorFlow (the command line imports this package too):

    import tftrain
    run = tftrain.train("config.yaml", overrides={"training.epochs": 3})
    run.status, run.history, run.evaluate(), run.predict(x)
"""

__version__ = "0.1.0"

# Public name -> the module that defines it (read by __getattr__ on first use).
_LAZY = {
    "train": "tftrain.api", "resume": "tftrain.api", "load_run": "tftrain.api", "Run": "tftrain.api",
    "TftrainError": "tftrain.errors", "UserError": "tftrain.errors", "ConfigError": "tftrain.errors",
    "DataError": "tftrain.errors", "DivergedError": "tftrain.errors", "TrainingInterrupted": "tftrain.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """`tftrain.train` and the rest, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tftrain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
