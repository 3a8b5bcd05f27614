"""The Python API (notebooks, scripts): `train`, `resume`, `load_run` and `Run`, on the same
run directories as the command line. Errors are tftrain's error classes (tftrain.errors), not
exit codes.

In-memory data and models are written beside the runs first, so that a run directory still
says alone what it trained on (and `tftrain evaluate`, `report` and `run --resume` work from it):
arrays (or a tf.data.Dataset, read once into arrays) go to `RUNS_DIR/.arrays/<sha256>.npz`, read
as the `npz` dataset; a keras.Model goes to `RUNS_DIR/.models/<sha256>.keras`, read as the
`keras_file` model type. The file names are the contents' fingerprints: a resume given arrays
checks that they are the ones the run trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tftrain.errors import ConfigError, UserError

ARRAYS = ".arrays"  # under the runs folder: the arrays runs were given (hidden: not a run)
MODELS = ".models"  # and the models


class Run:
    """A run directory, read on demand: `status`, `summary`, `history`, `config`, `path`,
    `model()`, `evaluate()`, `predict(x)`, `export(format)`."""

    def __init__(self, path: str | Path, plugins: Sequence[str] = ()):
        from tftrain.runs import RunDir

        self._run = RunDir.open(path)
        self.path = self._run.path
        self._plugins = tuple(plugins)  # the modules its config names, if any: imported only when named

    def _load_plugins(self) -> None:
        """Before its model is built or loaded: the plugins its config names, given as `plugins=`."""
        from tftrain import plugins

        plugins.require(self.config.plugins, self._plugins, str(self.path), python=True)
        plugins.import_plugins(self._plugins, where="plugins=")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json (status, epochs, final and best metrics, seconds, ...)."""
        return self._run.summary()

    @property
    def status(self) -> str | None:
        """running, completed, interrupted, failed, diverged or pruned."""
        return self.summary.get("status")

    @property
    def config(self):
        """The run's resolved config (a frozen tftrain.spec.schema.Config)."""
        return self._run.config()

    @property
    def history(self) -> list[dict[str, float]]:
        """history.csv: one dict per epoch (or log interval), numbers as floats."""
        path = self.path / "history.csv"
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(f)]

    def model(self, checkpoint: str = "last"):
        """The trained keras.Model (last: the final model; best: checkpoints/best.keras), safe mode."""
        from tftrain.runs.model import load_run_model

        _start_tensorflow()
        self._load_plugins()
        return load_run_model(self._run, checkpoint)[0]

    def evaluate(self, checkpoint: str = "last") -> dict[str, Any]:
        """Evaluate on the run's test split (as `tftrain evaluate`: writes eval.json and plots)."""
        from tftrain.commands.evaluate import evaluate_run

        _start_tensorflow()
        self._load_plugins()
        return evaluate_run(self.path, checkpoint)

    def predict(self, x, checkpoint: str = "last"):
        """The model's outputs for inputs `x` (a NumPy array of examples, as the data gave them)."""
        return self.model(checkpoint).predict(x, verbose=0)

    def export(self, format: str = "saved_model", output: str | Path | None = None,  # noqa: A002
               lora: str = "merged") -> Path:
        """Export the model (as `tftrain export`; `lora` as its --lora); returns where it was written."""
        from tftrain.commands.export import export_run

        _start_tensorflow()
        self._load_plugins()
        return Path(export_run(self.path, format, output, "last", lora=lora).path)


def load_run(path: str | Path, plugins: Sequence[str] = ()) -> Run:
    """An existing run directory; `plugins`: the modules its config names, if it names any
    (a run directory never makes tftrain import code by itself)."""
    return Run(path, plugins)


def train(config_or_path: str | Path | Mapping, overrides: Mapping[str, Any] | None = None,
          runs_dir: str | Path = "runs", data: Any = None, model: Any = None,
          callbacks: Sequence | None = None, quiet: bool = False) -> Run:
    """Train a config (a YAML path or a dict) into a new run directory under `runs_dir`.

    `overrides`: {"training.epochs": 3, ...} as `--set` gives them. `data`: (x, y) arrays, a
    dict of splits {"train": (x, y), "test": (x, y)}, or tf.data.Datasets of (x, y) in their
    place. `model`: a keras.Model (built, or buildable on the data) that the config then must
    not describe. `callbacks`: Keras callbacks run beside tftrain's own."""
    _start_tensorflow()
    raw = _raw_config(config_or_path, overrides)
    runs = Path(runs_dir)
    if data is not None:
        raw["data"] = _data_block(raw.get("data"), data, runs)
    if model is not None:
        raw["model"] = _model_block(raw.get("model"), model, runs, raw)
    config = _validate(raw)
    run = _run_config(config, runs, callbacks or (), quiet)
    return Run(run.path)


def resume(path: str | Path, data: Any = None, callbacks: Sequence | None = None, quiet: bool = False,
           plugins: Sequence[str] = ()) -> Run:
    """Continue an interrupted run exactly; `data`: the arrays it trained on, if they were given
    in memory (checked against the fingerprint it recorded: other arrays are refused);
    `plugins`: the modules its config names, if any."""
    _start_tensorflow()
    run = Run(path, plugins)
    run._load_plugins()
    if data is not None:
        _same_arrays(run, data)
    resumed = _resume_config(run.path, callbacks or (), quiet)
    return Run(resumed.path, plugins)


# -- the one call into training: tftrain.training.run_config, as the CLI and the workers use -------


def _run_config(config, runs_dir: Path, callbacks: Sequence, quiet: bool):
    """Run `config` (validated) into a new run directory."""
    from tftrain.training.run import run_config

    return run_config(config, runs_dir=runs_dir, console=_console(quiet), callbacks=list(callbacks))


def _resume_config(path: Path, callbacks: Sequence, quiet: bool):
    """Continue the run at `path` exactly (its plugins already imported by Run._load_plugins)."""
    from tftrain.training.session import resume_training

    return resume_training(path, console=_console(quiet), callbacks=list(callbacks))


# -- helpers ------------------------------------------------------------------------------------


def _start_tensorflow() -> None:
    """TensorFlow imported with its C++ start-up noise kept off the notebook or terminal."""
    from tftrain.tf_setup import start_tensorflow

    start_tensorflow(verbose=False)


def _console(quiet: bool):
    """rich's console: a live display in Jupyter, plain lines on a pipe; nothing when quiet."""
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def _number(text: str) -> int | float | str:
    if text.isdigit():
        return int(text)  # epoch and step
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _raw_config(config_or_path: str | Path | Mapping, overrides: Mapping[str, Any] | None) -> dict:
    """The raw config of a path (extends and ${env:...} resolved) or a dict, overrides applied."""
    from tftrain.spec.loading import apply_override, compose_config

    if isinstance(config_or_path, Mapping):
        raw = json.loads(json.dumps(dict(config_or_path)))  # a copy, plain data only
        raw.setdefault("name", "run")
    elif isinstance(config_or_path, (str, Path)):
        raw = compose_config(config_or_path).raw
    else:
        raise ConfigError(f"config: expected a YAML file's path or a dict, got {type(config_or_path).__name__}")
    for key, value in (overrides or {}).items():
        apply_override(raw, f"{key}={json.dumps(value)}")  # JSON is YAML: the value as given
    return raw


def _validate(raw: dict):
    from tftrain.spec.loading import validate

    return validate(raw)


def _data_block(given: Any, data: Any, runs: Path) -> dict:
    """The config's data: block pointing at the arrays, written to RUNS/.arrays/<sha256>.npz."""
    arrays = _arrays(data)
    path = _write_unique(runs / ARRAYS, _fingerprint(arrays), ".npz", lambda f: _save_npz(f, arrays))
    block = dict(given) if isinstance(given, dict) else {}
    block.update(dataset="npz", path=str(path.resolve()), options={})
    if "x_test" in arrays:
        block.setdefault("validation", "test")
    elif block.get("validation", "test") == "test":
        block["validation"] = "none"  # nothing to validate on: said, rather than warned about
    return block


def _arrays(data: Any) -> dict[str, Any]:
    """x_train, y_train (and x_test, y_test) as NumPy arrays, from arrays or tf.data.Datasets."""
    if isinstance(data, Mapping):
        unknown = [key for key in data if key not in ("train", "test")]
        if unknown or "train" not in data:
            raise ConfigError(f"data: expected {{'train': (x, y)}} and optionally 'test', got keys "
                              f"{', '.join(map(str, data))}")
        splits = {key: data[key] for key in ("train", "test") if key in data}
    else:
        splits = {"train": data}
    arrays = {}
    for split, value in splits.items():
        x, y = _pair(value, split)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays


def _pair(value: Any, split: str):
    """(x, y) NumPy arrays of a split given as a pair of arrays or a dataset of (x, y)."""
    import numpy as np
    import tensorflow as tf

    if isinstance(value, tf.data.Dataset):
        return _from_dataset(value, split)
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError(f"data.{split}: expected (x, y) arrays or a tf.data.Dataset of (x, y), "
                          f"got {type(value).__name__}")
    x, y = (np.asarray(v) for v in value)
    if x.dtype == object or y.dtype == object:
        raise ConfigError(f"data.{split}: arrays of numbers expected, got Python objects")
    return x, y


def _from_dataset(dataset, split: str):
    """A finite dataset of (x, y), batched or not, read once into arrays."""
    import numpy as np
    import tensorflow as tf

    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ConfigError(f"data.{split}: the tf.data.Dataset is infinite (repeat()); give one pass of the data")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ConfigError(f"data.{split}: the tf.data.Dataset must yield (x, y) pairs, got {spec}")
    batched = spec[0].shape.rank is not None and spec[0].shape.rank > 0 and spec[0].shape[0] is None
    xs, ys = [], []
    for x, y in dataset.as_numpy_iterator():
        xs.append(x if batched else x[None])
        ys.append(y if batched else np.asarray(y)[None])
    if not xs:
        raise ConfigError(f"data.{split}: the tf.data.Dataset is empty")
    return np.concatenate(xs), np.concatenate(ys)


def _fingerprint(arrays: Mapping[str, Any]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def _save_npz(file, arrays: Mapping[str, Any]) -> None:
    import numpy as np

    np.savez(file, **arrays)


def _write_unique(folder: Path, digest: str, suffix: str, write) -> Path:
    """FOLDER/<digest><suffix>, written atomically once (the same contents: the same file)."""
    path = folder / f"{digest}{suffix}"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _model_block(given: Any, model: Any, runs: Path, raw: dict) -> dict:
    """The config's model: block for a keras.Model, saved to RUNS/.models/<sha256>.keras."""
    import keras

    if given is not None:
        raise ConfigError("model: the config describes a model and model= gives one; give one of them")
    if not isinstance(model, keras.Model):
        raise ConfigError(f"model=: expected a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise ConfigError("model=: the keras.Model is not built; give it an Input (keras.Input(shape)) or "
                          "call model.build((None, *input_shape)) first")
    with tempfile.TemporaryDirectory() as folder:
        temp = Path(folder) / "model.keras"
        model.save(temp)
        digest = hashlib.sha256(temp.read_bytes()).hexdigest()
        path = _write_unique(runs / MODELS, digest, ".keras", lambda f: f.write(temp.read_bytes()))
    activation = getattr(model.layers[-1], "activation", None) if model.layers else None
    name = getattr(activation, "__name__", None)
    return {"type": "keras_file", "path": str(path.resolve()),
            "output_activation": None if name in (None, "linear") else name}


def _same_arrays(run: Run, data: Any) -> None:
    """Refuse to resume with arrays other than those the run trained on."""
    recorded = Path(run.config.data.path or "")
    if recorded.parent.name != ARRAYS:
        raise UserError(f"{run.path}: its data comes from its config ({run.config.data.dataset}), not from arrays; "
                        "resume it without data=")
    digest = _fingerprint(_arrays(data))
    if recorded.stem != digest:
        raise UserError(f"{run.path}: data=: these arrays are not the ones the run trained on (fingerprint "
                        f"{digest[:12]}, recorded {recorded.stem[:12]}); resume with the same arrays, or without data=")
