"""Exports written whole or not at all: each format's writer works on a temporary name beside
the target, renamed into place only once it succeeded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_file(target: Path, write) -> None:
    """`write(tmp)` a file, then rename it to `target`: a failed export leaves nothing behind."""
    # Keras checks the suffix, so the temporary name keeps the target's full suffix.
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_folder(target: Path, write) -> None:
    """`write(tmp)` a folder, then rename it to `target`: no half-written or empty export folder."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        shutil.rmtree(tmp)  # the writer creates the folder itself
        write(tmp)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
