"""TensorFlow's process-wide setup, done in one place: the CLI calls `setup_tensorflow` before
any command imports TensorFlow, then `start_tensorflow`. No other module changes the
environment when it is imported.

TensorFlow's C++ runtime prints start-up lines (no CUDA driver on a CPU machine, a failed
cuInit, the absl pre-initialisation warning) while it is imported and when it first looks for
devices, before its log level applies, so no environment variable silences them.
`start_tensorflow` captures file descriptor 2 over those moments and passes through every line
that is not known start-up noise, so real errors still show.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# TensorFlow's C++ log level: 2 keeps its start-up chatter (CPU feature notes, missing CUDA
# drivers on CPU machines) off the console; warnings and errors from Python still show.
QUIET_CPP_LOG_LEVEL = "2"

# Lines TensorFlow prints on every start of a CPU-only machine; nothing a user acts on.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cuda_platform\.cc.*failed call to cuInit"
    r"|cpu_feature_guard\.cc.*This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|oneDNN custom operations are on"
)


def setup_tensorflow(verbose: bool = False) -> None:
    """Set what TensorFlow reads when it is first imported: its C++ log level (all of it with
    `verbose`). A level the user set in the environment wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else QUIET_CPP_LOG_LEVEL)


def start_tensorflow(verbose: bool = False, doing: str | None = None) -> None:
    """Import TensorFlow and Keras and let TensorFlow find its devices (it does not start its
    runtime: strategies and thread settings still apply after this). Without `verbose`, its
    start-up noise is kept off the console; any other line it prints is passed on.

    `doing` (what the command is about to do) shows meanwhile on a terminal, as a status line
    that goes away once TensorFlow is up; pipes and logs get nothing, so an error that follows
    is still their one line.
    """
    setup_tensorflow(verbose)
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(saved, "w", closefd=False) as terminal, _status(terminal, doing):
            if verbose:
                _import()
            else:
                _import_quietly(saved)
    finally:
        os.close(saved)


def _import_quietly(stderr_fd: int) -> None:
    """_import with file descriptor 2 captured; what is not start-up noise goes to `stderr_fd`."""
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            _import()
        finally:
            sys.stderr.flush()
            os.dup2(stderr_fd, 2)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not STARTUP_NOISE.search(line)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())


def _status(terminal, doing: str | None):
    """A transient `doing: starting TensorFlow` spinner on `terminal`, if it is one."""
    import contextlib

    if doing is None or not terminal.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(file=terminal).status(f"{doing}: starting TensorFlow", spinner="dots")


def _import() -> None:
    import keras  # noqa: F401 (imported here, under the capture, so its start-up lines are too)
    import tensorflow as tf

    tf.config.list_physical_devices()  # where the CUDA platform reports itself
