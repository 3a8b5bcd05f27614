"""CIFAR-10: the python batches (pickles, read with a restricted unpickler) or the binary batches.

Accepted layouts, from data.path or the Keras cache:
- `cifar-10-batches-py/` with data_batch_1..5 and test_batch: pickled dicts {b"data": uint8
  array (N, 3072), b"labels": list of N ints}. A pickle can run any code while it loads, so these
  are read with `SafeUnpickler`, which resolves only the few globals a NumPy array needs: a
  tampered batch is refused with the global it asked for, and nothing in it runs.
- `cifar-10-batches-bin/` with data_batch_1..5.bin and test_batch.bin: 3073-byte records (one
  label byte, then 3072 pixel bytes, channel-major). No pickle involved.
- the downloaded archive itself (cifar-10-python.tar.gz or cifar-10-binary.tar.gz), read in place.
"""

from __future__ import annotations

import codecs
import pickle
import tarfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from tftrain.data.base import LoadedData, download, first_line, keras_cache_dir
from tftrain.errors import DataError

if TYPE_CHECKING:
    from tftrain.spec.schema import DataConfig

try:  # NumPy >= 2 moved the array internals to numpy._core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover (NumPy 1.x)
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # as keras.datasets.cifar10
# keras.datasets.cifar10 (Keras >= 3.6) downloads under this name and extracts into it.
KERAS_TARGET = "cifar-10-batches-py-target"
PY_DIR, BIN_DIR = "cifar-10-batches-py", "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS  # binary layout: label byte + pixels


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as pickle protocol 2 uses it for bytes, and for nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return codecs.encode(text, "latin1")


class _NdarrayType:
    """What `numpy.ndarray` resolves to in a batch: a type token for _reconstruct. Calling
    ndarray(shape) itself would allocate any shape the file claims (10^9 images from a few bytes)."""

    def __call__(self, *args, **kwargs):
        raise RefusedGlobal("a call of numpy.ndarray (it would allocate a shape the file claims)")


_NDARRAY = _NdarrayType()


def _reconstruct_array(subtype, shape, dtype):
    """numpy's _reconstruct for plain arrays only; the empty array it makes gets its data from
    the pickle's state, which NumPy checks against the shape before allocating."""
    if subtype is not _NDARRAY:
        raise RefusedGlobal(f"_reconstruct of {type(subtype).__name__}")
    return _reconstruct(np.ndarray, shape, dtype)


# (module, name) -> the object it may resolve to. NumPy 1 and 2 spell the internals differently
# (numpy.core / numpy._core); CIFAR's own batches were written by Python 2 with numpy.core.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_array,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct_array,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # arrays pickled with protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,  # bytes pickled by Python 3 with protocol 2
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside ALLOWED_GLOBALS."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays, dicts, lists, bytes and numbers, and nothing else."""

    def find_class(self, module: str, name: str):
        """Resolve only allow-listed globals; the module is never imported for a refused one."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid):
        """Persistent ids would let the file name arbitrary objects: refused."""
        raise RefusedGlobal(f"persistent id {pid!r}")


def load(cfg: DataConfig, seed: int) -> LoadedData:
    """Load CIFAR-10 as uint8 (N, 32, 32, 3) images and int32 labels 0..9."""
    source = locate(cfg.path)
    try:
        train = [source.read_batch(name) for name in TRAIN_BATCHES]
        x_test, y_test = source.read_batch(TEST_BATCH)
    finally:
        source.close()
    return LoadedData(
        x_train=np.concatenate([x for x, _ in train]), y_train=np.concatenate([y for _, y in train]),
        x_test=x_test, y_test=y_test,
        input_scale=1 / 255,  # uint8 pixels: the model's Rescaling layer maps them to [0, 1]
        num_classes=len(CLASS_NAMES),
        source=source.describe(),
        class_names=CLASS_NAMES,
    )


def read_python_batch(file: IO[bytes], where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (images (N, 32, 32, 3) uint8, labels (N,) int32)."""
    try:
        # encoding="bytes": the batches were pickled by Python 2, whose str keys become bytes.
        batch = SafeUnpickler(file, encoding="bytes").load()
    except RefusedGlobal as exc:
        raise DataError(f"{where}: refused to unpickle {exc} (only NumPy arrays are allowed in a "
                        "CIFAR-10 batch); the file is not a genuine batch and nothing in it was run") from None
    except Exception as exc:  # pickle raises many types (UnpicklingError, EOFError, ValueError, ...)
        raise DataError(f"{where}: not a readable CIFAR-10 python batch ({exc.__class__.__name__}: "
                        f"{first_line(exc)}); the file is truncated or corrupt") from None
    if not isinstance(batch, dict):
        raise DataError(f"{where}: holds a pickled {type(batch).__name__}; expected a CIFAR-10 batch "
                        "(a dict with 'data' and 'labels')")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        got = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' is {got}; expected a uint8 array of shape (N, {PIXELS})")
    if isinstance(labels, list) and (len(labels) != len(data) or not all(type(v) is int for v in labels)):
        labels = np.empty(0)  # nested lists (shared by the pickle's memo) could expand exponentially
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):  # ragged or otherwise not array-like
        labels = np.empty(0)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: 'labels' must be {len(data)} integers, one per image; got "
                        f"{type(batch.get('labels')).__name__} of {labels.dtype} with shape {labels.shape}")
    return _images(data, labels, where)


def read_binary_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch (3073-byte records) -> (images (N, 32, 32, 3) uint8, labels (N,) int32)."""
    records = np.frombuffer(raw, np.uint8)
    if records.size == 0 or records.size % RECORD:
        raise DataError(f"{where}: {records.size} bytes is not a whole number of {RECORD}-byte records "
                        "(label + 32x32x3 pixels); the file is truncated or not CIFAR-10 binary")
    records = records.reshape(-1, RECORD)
    return _images(records[:, 1:], records[:, 0], where)


def _images(data: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))][0]
        raise DataError(f"{where}: label {int(bad)} found; CIFAR-10 labels are 0..{len(CLASS_NAMES) - 1}")
    # Stored channel-major (3, 32, 32); Keras and TensorFlow expect channels last.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.int32)


class _Source:
    """Where the six batches are read from: a folder or a tar archive, python or binary layout."""

    def __init__(self, where: str, binary: bool, opener: Callable[[str], IO[bytes] | None],
                 close: Callable[[], None] = lambda: None):
        self.where, self.binary, self._open, self.close = where, binary, opener, close

    def describe(self) -> str:
        """Which files were read, for the console and summary.json."""
        ext = ".bin" if self.binary else ""
        return f"{self.where}/{{{', '.join(n + ext for n in (*TRAIN_BATCHES, TEST_BATCH))}}}"

    def read_batch(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Read one batch by its layout-independent name (data_batch_1, ..., test_batch)."""
        name = name + (".bin" if self.binary else "")
        where = f"{self.where}/{name}"
        with self._opened(name, where) as file:
            if self.binary:
                return read_binary_batch(file.read(), where)
            return read_python_batch(file, where)

    @contextmanager
    def _opened(self, name: str, where: str):
        try:
            file = self._open(name)
        except OSError as exc:
            raise DataError(f"{where}: cannot read ({first_line(exc)})") from None
        if file is None:
            raise DataError(f"{where}: missing; a CIFAR-10 folder holds {', '.join(TRAIN_BATCHES)} and "
                            f"{TEST_BATCH}{' (.bin)' if self.binary else ''}")
        try:
            yield file
        except (OSError, EOFError, tarfile.TarError) as exc:  # e.g. a truncated .tar.gz
            raise DataError(f"{where}: unreadable ({first_line(exc)}); the file is truncated or corrupt") from None
        finally:
            file.close()


def _open_file(path: Path) -> IO[bytes] | None:
    return open(path, "rb") if path.is_file() else None


def _folder(folder: Path) -> _Source | None:
    """A folder holding the batches, or holding a cifar-10-batches-py / -bin folder."""
    for candidate in (folder, folder / PY_DIR, folder / BIN_DIR):
        for binary in (False, True):
            if (candidate / (TRAIN_BATCHES[0] + (".bin" if binary else ""))).is_file():
                return _Source(str(candidate), binary, lambda name, c=candidate: _open_file(c / name))
    return None


def _archive(path: Path) -> _Source:
    """The downloaded .tar.gz, read member by member without extracting anything to disk."""
    try:
        archive = tarfile.open(path, "r:*")
        members = {Path(m.name).parent.name + "/" + Path(m.name).name: m for m in archive.getmembers()
                   if m.isfile()}
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise DataError(f"data.path: {path} is not a readable CIFAR-10 archive ({first_line(exc)})") from None
    for folder, binary in ((PY_DIR, False), (BIN_DIR, True)):
        if f"{folder}/{TRAIN_BATCHES[0]}{'.bin' if binary else ''}" in members:
            def opener(name: str, folder=folder):
                member = members.get(f"{folder}/{name}")
                return archive.extractfile(member) if member is not None else None
            return _Source(f"{path}:{folder}", binary, opener, archive.close)
    archive.close()
    raise DataError(f"data.path: {path} holds no {PY_DIR}/ or {BIN_DIR}/ folder; expected the CIFAR-10 "
                    f"archive from {ORIGIN}")


def locate(path: str | None) -> _Source:
    """data.path (folder or archive), else the Keras cache, else the Keras download."""
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file():
            return _archive(given)
        source = _folder(given) if given.is_dir() else None
        if source is None:
            raise DataError(f"data.path: {given} holds no CIFAR-10 batches; expected a folder with "
                            f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH} (or their .bin versions), or the "
                            f"archive from {ORIGIN}")
        return source
    cache = keras_cache_dir()
    # Keras <= 3.5 extracted straight into the cache; newer Keras into cifar-10-batches-py-target/.
    for folder in (cache / PY_DIR, cache / KERAS_TARGET / PY_DIR, cache / BIN_DIR):
        source = _folder(folder)
        if source is not None:
            return source
    how = (f"cifar10: no CIFAR-10 batches in {cache / PY_DIR} or {cache / KERAS_TARGET / PY_DIR}; download "
           f"{ORIGIN} and set data.path to it (or extract it into {cache})")
    extracted = download(KERAS_TARGET, ORIGIN, SHA256, how, extract=True)
    source = _folder(extracted)
    if source is None:
        raise DataError(f"cifar10: the download extracted into {extracted} holds no {PY_DIR}/; {how}")
    return source
