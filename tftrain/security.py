"""What tftrain agrees to load: models are data, never code.

`.keras` archives load in Keras safe mode, after a look at their config.json so that a refusal
can say why (a Lambda layer is a Python function stored in the file). Formats that can carry
code or that Keras's safe mode does not cover (legacy .h5, SavedModel directories, URLs) are
refused unless the caller passes `unsafe=True` (`--unsafe` on the command line); even then,
unsafe deserialization is enabled for that one call only, never globally.

Keras itself is checked at runtime too: versions before 3.13.2 have known safe-mode bypasses.
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

from tftrain import plugins
from tftrain.errors import TftrainError, UserError

MIN_KERAS = "3.13.2"  # the first release with the fixes for the known .keras loading CVEs
MAX_CONFIG_BYTES = 64 * 2**20  # a model's config.json is kilobytes; more is not a model we load
MAX_INFLATION = 100  # inflated / archive bytes past which a .keras file is a zip bomb (weights barely compress)
MAX_BOMB_FREE_BYTES = 64 * 2**20  # archives inflating to less are never refused for their ratio
# tftrain's own Keras layers a model may hold (tftrain.data.tables.layers: raw table rows).
OWN_LAYERS = frozenset({"tftrain>RawColumn", "tftrain>ParsedNumber"})
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TRUST = "if you trust its source, pass --unsafe"


def check_keras_version(version: str | None = None) -> None:
    """Refuse to run with a Keras older than MIN_KERAS (reads package metadata: no import)."""
    if version is None:
        try:
            version = metadata.version("keras")
        except metadata.PackageNotFoundError:
            return  # Keras is not installed: the import that needs it fails with its own message
    if _release(version) < _release(MIN_KERAS):
        raise TftrainError(
            f"keras {version} is installed, but tftrain needs keras >= {MIN_KERAS}: older versions can "
            f"run code hidden in model files despite safe mode. Upgrade: pip install 'keras>={MIN_KERAS}'")


def model_kind(source: str | Path) -> str:
    """'keras', 'h5', 'saved_model', 'url' or 'unknown'."""
    text = str(source)
    if _URL.match(text):
        return "url"
    path = Path(text)
    if path.is_dir():
        return "saved_model"
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return "keras"
    if suffix in (".h5", ".hdf5"):
        return "h5"
    return "unknown"


_REFUSED = {
    "url": "a URL; tftrain loads local .keras files only",
    "saved_model": "a directory (TensorFlow SavedModel): its graph is a program, run as it is",
    "h5": "a legacy HDF5 model, a format whose Lambda layers hold marshalled Python code",
    "unknown": "not a .keras file",
}


def load_model(source: str | Path, unsafe: bool = False):
    """Load a model for inference: a .keras file in safe mode; anything else only if `unsafe`."""
    check_keras_version()
    kind = model_kind(source)
    if kind != "keras" and not unsafe:
        raise UserError(f"{source}: refused: {_REFUSED[kind]}; {_TRUST}")
    if kind == "keras" and not Path(source).is_file():
        raise UserError(f"{source}: no such model file")
    if kind == "keras" and not unsafe:
        refuse_code(Path(source))

    import keras  # here, not at the top: the CLI imports this module without TensorFlow

    if kind == "url":
        source = _fetch(str(source))
        kind = model_kind(source)
    if kind == "saved_model":
        return _saved_model(keras, Path(source))
    hub = kind == "keras" and import_keras_hub_for(Path(source))
    import tftrain.data.tables.layers  # noqa: F401  registers OWN_LAYERS with Keras

    try:
        with warnings.catch_warnings():
            if hub:  # keras-hub tasks compile themselves when built; the saved optimizer is not wanted here
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            # safe_mode applies to this call only (a scope inside Keras), never to the process.
            return keras.saving.load_model(source, compile=False, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError for bad or unsafe content
        raise UserError(f"{source}: cannot load the model: {_explain(exc)}") from None


def refuse_code(path: Path) -> None:
    """Read a .keras archive's config.json and refuse, with the reason, what safe mode would
    refuse or what needs code from elsewhere: Lambda layers and classes that are not Keras's."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise UserError(f"{path}: refused: its config.json is {info.file_size} bytes "
                                f"(more than {MAX_CONFIG_BYTES})")
            _check_inflated_size(path, archive.infolist())
            config = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError, zlib.error) as exc:
        raise UserError(f"{path}: not a valid .keras archive ({exc.__class__.__name__})") from None
    for node in _objects(config):
        name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
        if node.get("class_name") == "Lambda":
            raise UserError(
                f"{path}: refused: layer {name!r} is a Lambda layer, a Python function stored in the file "
                f"that would run on this machine; tftrain loads models in Keras safe mode only ({_TRUST})")
        module, registered = node.get("module"), node.get("registered_name")
        if isinstance(registered, str) and plugins.provides(registered):
            continue  # registered by a plugin module the user named (--plugin): loaded from the registry
        if _keras_hub_class(module, registered):
            continue  # a keras-hub model (tftrain[hub]): its classes are a library's, not the file's
        if registered in OWN_LAYERS:
            continue  # tftrain's own classes: looked up in tftrain, nothing the file names is imported
        # Keras's own objects come from keras.* modules; registered custom ones are "package>Name".
        if (isinstance(module, str) and module.split(".")[0] != "keras") or ">" in str(registered or ""):
            what = registered or f"{module}.{node.get('class_name')}"
            raise UserError(
                f"{path}: refused: it uses {what!r}, a class that is not part of Keras; loading it would "
                f"need code from elsewhere, and tftrain runs no code that comes with a model (if a plugin module "
                f"you trust registers it, pass --plugin MODULE; else {_TRUST})")


def _check_inflated_size(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose members inflate past what this machine has available, or far past
    the file (a zip bomb: Keras reads the weights member into memory whole). Python's zipfile never
    inflates a member past the size it declares, so the declared sizes bound what loading reads."""
    from tftrain.data.safe_arrays import available_memory

    inflated, packed = sum(m.file_size for m in members), max(path.stat().st_size, 1)
    if inflated > available_memory() * 0.8:
        raise UserError(f"{path}: refused: it inflates to {inflated / 2**30:,.1f} GiB, more than this machine's "
                        f"{available_memory() / 2**30:,.1f} GiB of available memory")
    if inflated > MAX_BOMB_FREE_BYTES and inflated > MAX_INFLATION * packed:
        raise UserError(f"{path}: refused: its {packed:,} bytes inflate to {inflated:,} ({inflated // packed:,} "
                        f"times; model weights compress at most a few times): not a genuine .keras file")


def _keras_hub_class(module: Any, registered: Any) -> bool:
    """A class keras-hub itself registers (module keras_hub.*, name "keras_hub>Name"): loaded from
    the installed keras-hub package, never from the file, in safe mode as Keras's own."""
    return (isinstance(module, str) and module.split(".")[0] == "keras_hub"
            and str(registered or "").startswith("keras_hub>"))


def uses_keras_hub(path: Path) -> bool:
    """Whether a .keras archive holds keras-hub classes (read from its config.json)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return b'"keras_hub>' in archive.read("config.json")
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def import_keras_hub_for(path: Path) -> bool:
    """Import keras-hub (its classes register themselves with Keras) when the model needs it;
    True when it does."""
    if not uses_keras_hub(path):
        return False
    try:
        import keras_hub  # noqa: F401 (registers keras-hub's classes for deserialization)
    except ImportError:
        raise UserError(f"{path}: a keras-hub model; install keras-hub: pip install 'tftrain[hub]'") from None
    return True


def _objects(node: Any):
    """Every serialized object (a dict with class_name) in a Keras config, depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _explain(exc: BaseException) -> str:
    text = str(exc).strip()
    found = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    if found:
        return f"it uses {found.group(1)!r}, which is not part of Keras (tftrain runs no code that comes with a model)"
    if "Lambda" in text and "safe_mode" in text:
        return f"it contains a Lambda layer (Python code), refused in safe mode ({_TRUST})"
    return text.splitlines()[0][:300] if text else exc.__class__.__name__


def _fetch(url: str) -> str:
    """Download a model (only with --unsafe) into the Keras cache; honours TFTRAIN_OFFLINE."""
    from tftrain.data.base import download

    name = url.rstrip("/").rsplit("/", 1)[-1] or "model.keras"
    return str(download(name, url, None, f"download {url} yourself and pass the file"))


def _saved_model(keras, path: Path):
    """A SavedModel's serving signature as a Keras model (inference only; only with --unsafe)."""
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")

    class OnlyOutput(keras.layers.Layer):
        """The serving signature returns a dict; a single output is unwrapped."""

        def call(self, outputs):
            return next(iter(outputs.values())) if isinstance(outputs, dict) and len(outputs) == 1 else outputs

    return keras.Sequential([layer, OnlyOutput()])


def _release(version: str) -> tuple[int, ...]:
    numbers = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not numbers:
        return (0,)
    return tuple(int(n or 0) for n in numbers.groups())
