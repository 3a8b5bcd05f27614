"""NumPy files read with their declared sizes checked first (issue 34).

An .npy header states a shape and dtype; NumPy allocates what it states before reading a byte of
data, so a 100-byte file claiming 4 TiB is a memory bomb and an object dtype is a pickle. Here
every header is read and checked against the bytes the file (or the .npz member) holds and
against the memory this machine has available, before NumPy allocates. Corrupt deflate streams,
object arrays and truncated members are one line naming the file and array.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from tftrain.errors import DataError

MEMORY_SHARE = 0.8  # of the memory available now that the arrays of one file may take


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable; the physical memory where there is no /proc)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n:,} bytes"


def _header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data bytes) of the .npy at the start of `f`; DataError for a pickle."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    except (OSError, EOFError, zlib.error):
        raise
    except Exception as exc:  # noqa: BLE001 (a damaged header reaches NumPy's tokenizer: TokenError, SyntaxError)
        raise DataError(f"{where}: not a NumPy array (its header does not parse: {type(exc).__name__})") from None
    if dtype.hasobject:
        raise DataError(f"{where}: holds Python objects (a pickle), which tftrain never loads; expected an array "
                        "of numbers")
    return shape, dtype, int(np.prod(shape, dtype=object)) * dtype.itemsize


def _check(where: str, nbytes: int, held: int, budget: list[int]) -> None:
    if nbytes > held:
        raise DataError(f"{where}: its header claims {_gib(nbytes)} of data, but the file holds {_gib(held)}; "
                        "the file is truncated or not a NumPy array")
    budget[0] -= nbytes
    if budget[0] < 0:
        raise DataError(f"{where}: {_gib(nbytes)} of arrays is more than this machine's "
                        f"{_gib(available_memory())} of available memory")


def load_npy(path: Path) -> np.ndarray:
    """An .npy file's array, its declared size checked before it is allocated."""
    budget = [int(available_memory() * MEMORY_SHARE)]
    try:
        with open(path, "rb") as f:
            _, _, nbytes = _header(f, str(path))
            _check(str(path), nbytes, os.fstat(f.fileno()).st_size - f.tell(), budget)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0][:100]})") from None


def load_npz(path: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays `names` (all, when None) of an .npz, each header checked before allocating."""
    budget = [int(available_memory() * MEMORY_SHARE)]
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {i.filename.removesuffix(".npy"): i for i in archive.infolist() if i.filename.endswith(".npy")}
            for name in members if names is None else [n for n in names if n in members]:
                where = f"{path}: array '{name}'"
                with archive.open(members[name]) as f:
                    _, _, nbytes = _header(f, where)
                    _check(where, nbytes, members[name].file_size - f.tell(), budget)
                with archive.open(members[name]) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0][:100] or type(exc).__name__})") from None
    return arrays


def npz_names(path: Path) -> list[str]:
    """The array names of an .npz file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [i.filename.removesuffix(".npy") for i in archive.infolist() if i.filename.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0][:100]})") from None
