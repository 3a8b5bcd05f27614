"""TensorFlow's process-wide setup, done in one place: the CLI calls `setup_tensorflow` before
any command imports TensorFlow. No other module changes the environment when it is imported.
"""

from __future__ import annotations

import os

# TensorFlow's C++ log level: 2 keeps its start-up chatter (CPU feature notes, missing CUDA
# drivers on CPU machines) off the console; warnings and errors from Python still show.
QUIET_CPP_LOG_LEVEL = "2"


def setup_tensorflow(verbose: bool = False) -> None:
    """Set what TensorFlow reads when it is first imported: its C++ log level (all of it with
    `verbose`). A level the user set in the environment wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else QUIET_CPP_LOG_LEVEL)
