"""IDX files (the MNIST family's format), gzip-compressed or plain, and folders of the four files.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. The reader checks the header
against the data size, so a truncated or padded file is an error naming the file, never a
silently short dataset.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from tftrain.data.base import LoadedData, first_line
from tftrain.errors import DataError

# IDX type code -> dtype (values are stored big-endian).
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
# Read gzip data in slices into the final array: no second, temporary copy of a 47 MB file.
CHUNK = 4 << 20

# The four files of MNIST and Fashion-MNIST, by split, without the optional `.gz`.
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
GZ_NAMES = tuple(f"{name}.gz" for name in FILES.values())


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip or plain, detected from its first bytes) into a native-endian array."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            array = _read_stream(path, f, _stream_size(path, compressed))
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: unreadable {'gzip' if compressed else 'IDX'} data ({first_line(exc)}); "
                        "the file is truncated or corrupt: fetch it again") from None
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


# Deflate cannot compress better than about 1032:1: the most bytes a .gz of a given size holds.
MAX_DEFLATE_RATIO = 1032


def _stream_size(path: Path, compressed: bool) -> tuple[int | None, int]:
    """(the exact size of the IDX stream if known, an upper bound on it), without decompressing
    (a damaged gzip file is found out while it is read, as before)."""
    size = path.stat().st_size
    return (None, size * MAX_DEFLATE_RATIO) if compressed else (size, size)


def _read_stream(path: Path, f, size: tuple[int | None, int]) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES or magic[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic number {magic.hex() or 'missing'}; expected "
                        "00 00, a type code 08/09/0b/0c/0d/0e and the number of dimensions)")
    ndim = magic[3]
    header = f.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise DataError(f"{path}: IDX header cut short ({len(header)} of {4 * ndim} dimension bytes)")
    dims = struct.unpack(f">{ndim}I", header)
    announced = int(np.prod(dims, dtype=np.float64)) * np.dtype(IDX_TYPES[magic[2]]).itemsize + 4 + 4 * ndim
    exact, bound = size
    if announced > bound or (exact is not None and announced != exact):
        held = f"{exact} bytes" if exact is not None else f"at most {bound} bytes"
        raise DataError(f"{path}: the IDX header announces shape {dims} ({announced} bytes), but the file holds "
                        f"{held}; the file is truncated or corrupt")
    try:
        array = np.empty(dims, IDX_TYPES[magic[2]])
    except (MemoryError, ValueError):  # a corrupt header announcing an impossible shape
        raise DataError(f"{path}: the IDX header announces shape {dims}, too large to load; "
                        "the file is corrupt") from None
    view = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(view):
        got = f.readinto(view[filled:filled + CHUNK])
        if not got:
            raise DataError(f"{path}: truncated: the header announces shape {dims} ({len(view)} data "
                            f"bytes) but the file holds {filled}")
        filled += got
    if f.read(1):
        raise DataError(f"{path}: more data than the header's shape {dims} announces; "
                        "the file is corrupt or not an IDX file")
    return array


def find_files(folder: Path) -> dict[str, Path]:
    """Those of the four MNIST-style files present in `folder` (each `.gz` or plain), by split."""
    found = {}
    for split, stem in FILES.items():
        # Some mirrors (and Kaggle) spell the stems with a dot: train-images.idx3-ubyte.
        dotted = stem.replace("-idx", ".idx")
        for candidate in (folder / f"{s}{ext}" for s in (stem, dotted) for ext in (".gz", "")):
            if candidate.is_file():
                found[split] = candidate
                break
    return found


def missing_names(found: dict[str, Path]) -> list[str]:
    """The `.gz` names of the files find_files did not find (for error messages)."""
    return [f"{stem}.gz" for split, stem in FILES.items() if split not in found]


def load_folder(files: dict[str, Path], image_shape: tuple[int, ...], class_names: tuple[str, ...]) -> LoadedData:
    """Read the four IDX files and check them: uint8 images of `image_shape`, one label per image."""
    arrays = {split: read_idx(path) for split, path in files.items()}
    for split in ("train", "test"):
        x_path, y_path = files[f"x_{split}"], files[f"y_{split}"]
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != image_shape:
            raise DataError(f"{x_path}: holds {x.dtype} data of shape {x.shape}; expected uint8 images "
                            f"of shape (N, {', '.join(map(str, image_shape))})")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{y_path}: holds {y.dtype} data of shape {y.shape}; expected one integer "
                            "label per image, shape (N,)")
        if len(x) != len(y):
            raise DataError(f"{y_path}: {len(y)} labels for the {len(x)} images of {x_path.name}")
        if len(y) and int(y.max()) >= len(class_names):
            raise DataError(f"{y_path}: label {int(y.max())} found; expected labels 0..{len(class_names) - 1}")
    folder = files["x_train"].parent
    names = ", ".join(p.name if p.parent == folder else str(p) for p in files.values())
    y_train, y_test = arrays["y_train"].astype(np.int32), arrays["y_test"].astype(np.int32)
    return LoadedData(
        x_train=arrays["x_train"], y_train=y_train, x_test=arrays["x_test"], y_test=y_test,
        input_scale=1 / 255,  # uint8 pixels: the model's Rescaling layer maps them to [0, 1]
        num_classes=len(class_names),
        source=f"{folder}/{{{names}}}",
        class_names=class_names,
    )
