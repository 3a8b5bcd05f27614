"""`tftrain predict RUN_DIR INPUT...`: run a trained model on .npy/.npz/.csv files or images.

Inputs are given exactly as the training data was (raw pixel values for images: the model
rescales them itself). What comes out depends on the run's loss:

- sparse/categorical cross-entropy: the class and its probability. A softmax output already is
  a probability; any other output activation (none, for from_logits) is treated as logits and
  put through softmax.
- binary cross-entropy: class 1 when its probability is at least 0.5; a sigmoid output already
  is the probability, logits go through sigmoid.
- hinge losses: class 1 when the score is positive (a score, not a probability).
- anything else (regression): the output values.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from tftrain.data.safe_arrays import load_npy, load_npz, npz_names
from tftrain.errors import DataError, UserError
from tftrain.runs import RunDir, atomic_write, check_output
from tftrain.runs.model import as_probabilities, load_run_model
from tftrain.safe_files import describe, is_regular
from tftrain.spec.checks import RunFacts

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
ARRAY_SUFFIXES = {".npy", ".npz", ".csv", ".jsonl", ".txt"}  # .jsonl, .txt: typed tables, text models
# Keys tried, in order, for the inputs in an .npz (tftrain's own files and Keras's use x_*).
NPZ_KEYS = ("x", "inputs", "x_test", "x_train")
def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the image files in it (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            other = next((p for p in images if not is_regular(p)), None)
            if other is not None:  # a FIFO named like an image would block the reader forever
                raise DataError(f"{other}: {describe(other)}; expected image files")
            if not images:
                raise DataError(f"{path}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += images
        elif not path.is_file():
            raise DataError(f"{path}: no such input file")
        elif path.suffix.lower() not in IMAGE_SUFFIXES | ARRAY_SUFFIXES | {".txt"}:
            raise DataError(f"{path}: unsupported input; expected .npy, .npz, .csv, .txt (text models: one "
                            f"example a line) or an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            files.append(path)
    return files


def read_input(path: Path, input_shape: tuple[int, ...], label_column: str | None = None,
               text: bool = False) -> np.ndarray:
    """One file's examples as an array of shape (N, *input_shape); `text`: a model that takes raw
    strings (model.type hub, text_classifier) reads a string array from .npy/.npz, or one example
    per line of a .txt file."""
    suffix = path.suffix.lower()
    if text:
        return _read_text(path)
    if suffix in (".txt", ".jsonl"):  # raw text: for models that take strings or rows, which this one does not
        raise DataError(f"{path}: unsupported input for this model (it takes numbers); expected .npy, .npz, .csv "
                        f"or an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path, input_shape)[None]
    if suffix == ".csv":
        array = _read_csv(path, label_column)
    else:
        array = _read_array(path)
    return _as_examples(path, array, input_shape)


def _read_text(path: Path) -> np.ndarray:
    """Strings, one per example: the lines of a .txt file, or a 1-D string array (.npy, .npz)."""
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable UTF-8 text file ({exc.__class__.__name__})") from None
        return np.array([line for line in lines if line.strip()], dtype=str)
    array = _read_array(path)
    if array.dtype.kind not in "US" or array.ndim > 1:
        raise DataError(f"{path}: the model takes one string per example; got an array of {array.dtype} "
                        f"with shape {tuple(array.shape)}")
    return array.reshape(-1).astype(str)


def _read_array(path: Path) -> np.ndarray:
    """An .npy, or the inputs array of an .npz; declared sizes checked, pickles never loaded."""
    if path.suffix.lower() == ".npy":
        return load_npy(path)
    files = npz_names(path)
    key = next((k for k in NPZ_KEYS if k in files), None)
    if key is None and len(files) == 1:
        key = files[0]
    if key is None:
        raise DataError(f"{path}: which array holds the inputs? expected one of {', '.join(NPZ_KEYS)} "
                        f"(found {', '.join(files) or 'none'})")
    return load_npz(path, [key])[key]


def _read_csv(path: Path, label_column: str | None) -> np.ndarray:
    """Numeric rows; a first row that is not numeric is a header (a label column is dropped)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc)[:100]}); expected UTF-8 text") from None
    if not rows:
        raise DataError(f"{path}: empty CSV file")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    keep = list(range(len(header or rows[0])))
    if header and label_column in header:
        keep.remove(header.index(label_column))
    try:
        return np.array([[float(row[i]) for i in keep] for row in rows], dtype=np.float32).reshape(len(rows), -1)
    except (ValueError, IndexError):
        raise DataError(f"{path}: expected numeric values in every row, "
                        f"{len(keep)} columns{' (after the header)' if header else ''}") from None


def _read_image(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    import keras

    if len(input_shape) not in (2, 3) or (len(input_shape) == 3 and input_shape[-1] not in (1, 3, 4)):
        raise DataError(f"{path}: an image, but the model expects examples of shape {input_shape}")
    channels = 1 if len(input_shape) == 2 else input_shape[-1]
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[channels]
    try:
        # Resized to the model's input size; pixel values stay 0..255 (the model rescales them).
        image = keras.utils.load_img(path, color_mode=mode, target_size=input_shape[:2])
    except Exception as exc:  # PIL raises its own UnidentifiedImageError/OSError family
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    array = keras.utils.img_to_array(image, dtype="float32")
    return array.reshape(input_shape)


def _as_examples(path: Path, array: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numbers, got an array of {array.dtype}")
    if array.size == 0:
        raise DataError(f"{path}: an empty array of shape {tuple(array.shape)}; expected at least one example")
    if tuple(array.shape[1:]) == input_shape:
        return array
    if tuple(array.shape) == input_shape:  # a single example
        return array[None]
    if input_shape == (1,) and array.ndim == 1:  # a plain list of x values for a one-input model
        return array[:, None]
    shape = ", ".join(map(str, input_shape))
    raise DataError(f"{path}: an array of shape {tuple(array.shape)}; the model expects examples of shape "
                    f"({shape}{',' if len(input_shape) == 1 else ''}): an array (N, {shape}) or one example")


def interpret(outputs: np.ndarray, task: str, output_activation: str | None) -> list[dict[str, Any]]:
    """Per example: class and probability (classifiers), score or values (regression)."""
    outputs = as_probabilities(np.asarray(outputs, dtype=np.float64), task, output_activation)
    rows: list[dict[str, Any]] = []
    if task == "multiclass":
        for p in outputs:
            rows.append({"class": int(p.argmax()), "probability": float(p.max())})
    elif task == "binary":
        for p in outputs:
            if len(p) == 1:
                rows.append({"class": int(p[0] >= 0.5), "probability": float(p[0])})
            else:  # several independent yes/no outputs
                rows.append({"class": [int(v >= 0.5) for v in p], "probability": [float(v) for v in p]})
    elif task == "score":
        for s in outputs:
            rows.append({"class": int(s[0] > 0) if len(s) == 1 else [int(v > 0) for v in s],
                         "score": float(s[0]) if len(s) == 1 else [float(v) for v in s]})
    else:
        for v in outputs:
            rows.append({"value": float(v[0]) if len(v) == 1 else [float(x) for x in v]})
    return rows


def ranked(outputs: np.ndarray, task: str, output_activation: str | None, names: list | None,
           top_k: int | None, probabilities: bool) -> list[dict[str, Any]]:
    """Per example of a classifier, beyond its top class: the `top_k` most probable classes, best
    first (`top_k`), and every class's probability (`probabilities`), by class name where the
    data names them."""
    if task not in ("multiclass", "binary"):
        flag = "--top-k" if top_k is not None else "--probabilities"
        raise UserError(f"{flag}: ranks the classes of a classifier; this run's model gives "
                        f"{'scores' if task == 'score' else 'values'} (a {task} run)")
    values = as_probabilities(np.asarray(outputs, dtype=np.float64), task, output_activation)
    if task == "binary" and values.shape[1] == 1:
        values = np.concatenate([1.0 - values, values], axis=1)  # P(class 0), P(class 1)
    count = values.shape[1]
    names = [str(n) for n in names] if isinstance(names, list) and len(names) == count else None
    key = (lambda i: names[i]) if names else (lambda i: str(i))
    extra: list[dict[str, Any]] = []
    for p in values:
        row: dict[str, Any] = {}
        if top_k is not None:
            best = np.argsort(-p, kind="stable")[:top_k]
            row["top_k"] = [{"class": int(i), **({"label": names[i]} if names else {}), "probability": float(p[i])}
                            for i in best]
        if probabilities:
            row["probabilities"] = {key(i): float(p[i]) for i in range(count)}
        extra.append(row)
    return extra


def predict_run(run_dir: str | Path, inputs: list[str | Path], checkpoint: str = "last",
                top_k: int | None = None, probabilities: bool = False) -> dict[str, Any]:
    """Predictions of a run's model for every example in `inputs` (and, for a classifier, the
    `top_k` classes and every class's probability on request)."""
    run = RunDir.open(run_dir)
    config = run.config()
    files = expand_inputs(inputs)
    model, path = load_run_model(run, checkpoint)
    text = config.model.takes_strings()  # raw strings in: the model's tokenizer is part of it
    input_shape = () if text else tuple(model.inputs[0].shape[1:])
    label = config.data.options.get("label") if isinstance(config.data.options.get("label"), str) else None
    trained_on = run.summary().get("data") if isinstance(run.summary().get("data"), dict) else {}
    if None in input_shape:  # a model that resizes what it takes (keras-hub's image converter): the data's shape
        input_shape = tuple(((trained_on.get("train") or {}).get("x_shape") or [None, *input_shape])[1:])
    arrays, sources, warnings = [], [], []
    raw_rows = not text and str(model.inputs[0].dtype) == "string"  # a typed table's model takes rows of text cells
    for file in files:
        if raw_rows:
            x = _raw_rows(file, config, list(trained_on.get("features") or []))
        else:
            x = read_input(file, input_shape, label, text)
            warnings += [] if text else input_warnings(file, x, trained_on)
        arrays.append(x if raw_rows or text else x.astype(np.float32))
        sources += [(str(file), i) for i in range(len(x))]
    x = np.concatenate(arrays)
    if raw_rows:  # Keras's array adapter takes no object arrays; a string tensor it does
        import tensorflow as tf

        x = tf.constant(x)
    outputs = model.predict(x, batch_size=config.data.batch_size, verbose=0)
    task = RunFacts.of(config).read_as
    names = trained_on.get("class_names")
    if isinstance(outputs, dict):  # several outputs: each under its name (tftrain.commands.evaluation_outputs)
        from tftrain.commands.evaluation_outputs import output_classes
        from tftrain.spec.checks import head_reads

        rows = predicted_rows(outputs, head_reads(config), output_classes(trained_on), top_k, probabilities)
        top_k, probabilities = None, False
    else:
        rows = interpret(np.asarray(outputs), task, config.model.output_activation_name())
    extra = ranked(outputs, task, config.model.output_activation_name(), names, top_k, probabilities) \
        if top_k is not None or probabilities else [{} for _ in rows]
    for row, (source, index), more in zip(rows, sources, extra):
        row["source"], row["index"] = source, index
        if isinstance(names, list) and isinstance(row.get("class"), int) and 0 <= row["class"] < len(names):
            row["label"] = names[row["class"]]  # the name the data gives that class
        row.update(more)
    return {"run": str(run.path), "model": str(path.relative_to(run.path)), "task": task, "warnings": warnings,
            "predictions": [{"source": r.pop("source"), "index": r.pop("index"), **r} for r in rows]}


def _raw_rows(file: Path, config, features: list[str]) -> np.ndarray:
    """A typed table's rows (a .csv or .jsonl file), or a text model's example (a .txt file: one),
    or its texts (a 1-D string array in an .npy/.npz, as an npz of strings trains one)."""
    if file.suffix.lower() == ".txt":
        from tftrain.data.text.folder import read_text

        return np.array([[read_text(file, config.data.options.get("encoding", "utf-8"))]], dtype=object)
    from tftrain.data.text.folder import COLUMN

    if file.suffix.lower() in (".npy", ".npz") and features == [COLUMN]:  # one text column (tftrain.data.text)
        return _read_text(file).astype(object)[:, None]
    from tftrain.data.tables.rows import raw_rows

    return raw_rows(file, config.data.options, features)


def input_warnings(file: Path, x: np.ndarray, trained_on: dict) -> list[str]:
    """What looks unlike the training inputs: another dtype, or pixel values already scaled to
    [0, 1] for a model trained on uint8 pixels (it rescales them itself, and would see black)."""
    train = trained_on.get("train") if isinstance(trained_on.get("train"), dict) else {}
    expected = train.get("x_dtype")
    if not isinstance(expected, str) or file.suffix.lower() in IMAGE_SUFFIXES:
        return []  # images are read as the training pixels were
    found = []
    if expected == "uint8" and x.dtype.kind == "f" and x.size and float(np.nanmax(x)) <= 1.0:
        found.append(f"{file}: values lie in [0, 1], but the model was trained on uint8 pixels 0..255 and "
                     "rescales them itself: pass the raw pixel values")
    elif (x.dtype.kind == "f") != (expected.startswith("float") or expected.startswith("bfloat")):  # integers for floats or floats for integers
        found.append(f"{file}: {x.dtype} inputs, but the model was trained on {expected} inputs")
    return found


def write_predictions(result: dict[str, Any], output: str | Path, force: bool = False) -> Path:
    """--output FILE: .csv (one row per example) or .json (the whole result); an existing file
    is replaced only with `force`, a run's own files never."""
    output = check_output(output, force)
    suffix = output.suffix.lower()
    if suffix == ".json":
        atomic_write(output, json.dumps(result, indent=2) + "\n")
        return output
    if suffix != ".csv":
        raise UserError(f"--output: expected a .csv or .json file name, got {str(output)!r}")
    rows = result["predictions"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["source"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    atomic_write(output, buffer.getvalue())
    return output


def predictions_table(result: dict[str, Any]):
    """A rich table of the predictions (source, index, then class/probability or value)."""
    from tftrain.console import Table

    rows = result["predictions"]
    table = Table(title=f"{result['task']} predictions ({result['model']})", title_justify="left")
    columns = list(rows[0]) if rows else ["source"]
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict) and "probability" in value:  # one of --top-k's classes
        return f"{value.get('label', value['class'])} {value['probability']:.3f}"
    if isinstance(value, dict):  # --probabilities: class -> probability
        return ", ".join(f"{k} {v:.3f}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def predicted_rows(outputs: dict, reads: tuple, class_names: dict, top_k: int | None, probabilities: bool) -> list:
    """Per example, each output's prediction under its name: {species: {class, label,
    probability}, body_mass_g: {value}}."""
    if top_k is not None or probabilities:
        raise UserError(f"{'--top-k' if top_k is not None else '--probabilities'}: this run's model has several "
                        "outputs; each output's top class is given under its name")
    rows: list[dict[str, Any]] = [{} for _ in range(len(next(iter(outputs.values()))))]
    for name, task, activation in reads:
        names = class_names.get(name)
        for row, one in zip(rows, interpret(np.asarray(outputs[name]), task, activation)):
            if isinstance(names, list) and isinstance(one.get("class"), int) and 0 <= one["class"] < len(names):
                one["label"] = names[one["class"]]
            row[name] = one
    return rows
