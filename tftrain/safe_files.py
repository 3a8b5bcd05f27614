"""Which paths tftrain reads as data (issue 34): regular files only.

Opening a FIFO waits for a writer forever; a device (/dev/zero, /dev/stdin) never ends or blocks;
/proc and /dev entries that resolve to regular files (/dev/stderr -> /proc/self/fd/2) are the
process's own streams. Every reader of a user-named data file asks `is_data_file` or
`require_data_file` before opening it, so such a path is one line naming the key, not a hang.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tftrain.errors import DataError

SYSTEM_TREES = ("/dev/", "/proc/", "/sys/")  # pseudo-files: never data, whatever their stat says


def is_data_file(path: str | os.PathLike) -> bool:
    """True for a regular file (links followed) outside /dev, /proc and /sys."""
    text = os.path.abspath(path)
    if text.startswith(SYSTEM_TREES) or os.path.realpath(text).startswith(SYSTEM_TREES):
        return False
    try:
        return stat.S_ISREG(os.stat(text).st_mode)
    except (OSError, ValueError):
        return False


def is_regular(path: str | os.PathLike) -> bool:
    """True for a regular file (links followed): one stat, for the files of a listed folder."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def require_data_file(path: str | os.PathLike, key: str) -> Path:
    """`path` if it is a data file; else a DataError naming `key` and what the path is."""
    path = Path(path)
    if is_data_file(path):
        return path
    raise DataError(f"{key}: {path} {describe(path)}; expected a regular file")


def describe(path: str | os.PathLike) -> str:
    """`does not exist`, `is a folder`, `is a FIFO (named pipe)`, `is a device`..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is a system file (under /dev, /proc or /sys), not a regular file"
