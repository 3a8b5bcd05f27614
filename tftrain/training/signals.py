"""Ctrl-C and SIGTERM during training: the first one asks for a checkpoint and a clean stop at
the next step boundary; a second acts at once, as usual."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any


class Interrupted(Exception):
    """Raised inside the loop after the checkpoint that a SIGINT/SIGTERM asked for; `at` is
    where training stopped (tftrain.training.resume.Position)."""

    def __init__(self, signum: int, at: Any, seconds: float):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.at = at
        self.seconds = seconds


def write_notice(text: str) -> None:
    """Write straight to stderr: os.write, not print, since a signal handler may interrupt a
    half-written console line."""
    os.write(2, f"\n{text}\n".encode())


class InterruptRequests:
    """While active, a first SIGINT or SIGTERM only records itself: training stops at the next
    step boundary after writing a checkpoint. A second signal acts at once, as usual.

    `notify` tells the user (a live progress display replaces it, to print above its bar).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self.notify: Callable[[str], None] = write_notice
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptRequests:
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self._restore()
        self.notify(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                    "(send it again to stop at once)")
