"""Bad input, round three (issue 34): a corpus of hostile inputs over the newer surfaces (shards,
image folders, wide CSVs, init_from files, tune spaces and storages, convert, exports, predict),
each run as a real `tftrain` process built in tmp_path. Every case ends with exit 2 and one
`error:` line naming what to fix: no traceback, no signal, nothing written or left behind, and the
process's peak memory (its own rusage, from os.wait4) under PEAK_RSS_BOUND within TIME_BOUND.

The bounds are generous so a loaded 2-core machine passes: a TensorFlow import alone peaks near
0.7 GiB; what they catch is a process that allocates what a hostile file claims (tens of GiB)
or never ends.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.kit import child_env

PEAK_RSS_BOUND = 3 * 2**30  # bytes: the largest peak resident memory a refusal may take
TIME_BOUND = 240  # seconds a refusal may take on a loaded machine (a TensorFlow start included)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes


def run_tftrain(args: list, cwd: Path, env: dict | None = None, stdin: str | None = None) -> Outcome:
    """`python -m tftrain ARGS` in `cwd`; its exit status (negative: killed by that signal) and
    its own peak RSS. A process past TIME_BOUND is killed and the test fails."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115 (read after wait4, then freed)
    proc = subprocess.Popen([sys.executable, "-m", "tftrain", *map(str, args)], cwd=cwd,
                            env={**child_env(cwd.parent), **(env or {})}, text=True, stdout=out, stderr=err,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    if stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    deadline = time.monotonic() + TIME_BOUND
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            pytest.fail(f"tftrain {' '.join(map(str, args))}: still running after {TIME_BOUND} s")
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0), err.seek(0)
    return Outcome(proc.returncode, out.read(), err.read(), usage.ru_maxrss * 1024)


def tree(root: Path) -> set[str]:
    """Every path under root (files, folders, links), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_refused(outcome: Outcome, *expected: str) -> str:
    """Exit 2, one `error:` line on stderr holding each of `expected`, no traceback, no signal,
    peak memory within PEAK_RSS_BOUND; returns the line."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert outcome.code == 2, f"exit {outcome.code}: {outcome.stderr[-3000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr and outcome.stdout == "", outcome.stdout + outcome.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert outcome.peak_rss < PEAK_RSS_BOUND, f"peak RSS {outcome.peak_rss / 2**30:.2f} GiB: {lines[0]}"
    return lines[0]


@dataclass
class Case:
    """One hostile input: `build(tmp_path)` writes its files and returns the tftrain arguments."""
    name: str
    build: Callable[[Path], list]
    expected: tuple[str, ...]
    env: dict = field(default_factory=dict)


CORPUS: list[Case] = []


def case(name: str, *expected: str, env: dict | None = None):
    """Add the decorated builder to CORPUS."""
    def add(build):
        CORPUS.append(Case(name, build, expected, env or {}))
        return build
    return add


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def run_args(root: Path, config: dict, *more) -> list:
    return ["run", write(root / "config.yaml", config), "--runs-dir", root / "runs", *more]


# -- class 1: the process dies inside TensorFlow's record reader ------------------------------

RAW = {"image": {"type": "bytes", "decode": "raw", "shape": [2, 2, 1]}, "label": {"type": "int64"}}


def tfrecord_config(root: Path, pattern: str) -> dict:
    return {"data": {"dataset": "tfrecord", "path": str(root / pattern), "validation": "none",
                     "options": {"features": RAW, "label": "label"}},
            "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
            "training": {"epochs": 1}}


def frame(data: bytes, length: int | None = None) -> bytes:
    """One TFRecord frame: a length field (its true checksum) claiming `length` bytes."""
    from tftrain.data.records.framing import masked_crc

    field = struct.pack("<Q", len(data) if length is None else length)
    return field + struct.pack("<I", masked_crc(field)) + data + b"\0\0\0\0"


@case("tfrecord length field claims 1 TiB", "train.tfrecord: truncated record at 0",
      "claims 1,099,511,627,776 bytes")
def _(root):
    write(root / "train.tfrecord", frame(b"x" * 20, length=2**40))
    return run_args(root, tfrecord_config(root, "train.tfrecord"))


@case("gzip shard whose record inflates past the cap", "train.tfrecord.gz: record 0", "a record is at most 256 MiB")
def _(root):
    write(root / "train.tfrecord.gz", gzip.compress(frame(bytes(2**26), length=3 * 2**30), compresslevel=1))
    return run_args(root, tfrecord_config(root, "train.tfrecord.gz"))


@case("a shard glob matching a device names data.path", "data.path:", "/dev/stderr", "not a regular file")
def _(root):
    config = tfrecord_config(root, "x")
    config["data"]["path"] = "/dev/std[e]rr"
    return run_args(root, config)


# -- class 2: hangs (non-regular files opened as data, counts a file or config makes large) ---

LINEAR = {"data": {"dataset": "synthetic_regression", "validation": "none"}, "model": {"type": "linear"},
          "loss": "mse", "training": {"epochs": 1}}


def png(path: Path, side: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(path)
    return path


def images_npz(root: Path, side: int = 8) -> Path:
    x = np.zeros((8, side, side, 3), np.uint8)
    y = (np.arange(8) % 2).astype(np.int64)
    np.savez(root / "images.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    return root / "images.npz"


def image_config(path: Path, **data) -> dict:
    return {"data": {"dataset": "npz", "path": str(path), **data},
            "model": {"type": "cnn", "conv": [4], "dense": [4]},
            "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}, "training": {"epochs": 1}}


@case("a FIFO named like an image in an image folder", "b.png: is a FIFO (named pipe)",
      "an image folder holds image files only")
def _(root):
    for name in ("cat/a.png", "dog/a.png"):
        png(root / "images" / name)
    os.mkfifo(root / "images" / "dog" / "b.png")
    config = {**image_config(root / "images"), "data": {"dataset": "image_folder", "path": str(root / "images"), "validation": "none"}}
    return run_args(root, config)


@case("a FIFO as the tune journal", "study.journal is a FIFO (named pipe)", "--storage")
def _(root):
    os.mkfifo(root / "study.journal")
    config = {**LINEAR, "tune": {"space": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}, "trials": 2}}
    return ["tune", write(root / "config.yaml", config), "--storage", f"journal:{root / 'study.journal'}",
            "--runs-dir", root / "runs"]


@case("a FIFO as the tune --space file", "space.yaml: cannot read the space file (not a regular file)")
def _(root):
    os.mkfifo(root / "space.yaml")
    return ["tune", write(root / "config.yaml", LINEAR), "--space", root / "space.yaml", "--runs-dir", root / "runs"]


@case("a CSV header of 200,000 columns", "the header has 200,000 columns; a table has at most 16,384")
def _(root):
    write(root / "wide.csv", ",".join(f"c{i}" for i in range(200_000)) + "\n" + ",".join("1" * 200_000) + "\n")
    config = {"data": {"dataset": "csv", "path": str(root / "wide.csv"), "validation": "none", "options": {"label": "c0"}},
              "model": {"type": "linear"}, "loss": "mse"}
    return run_args(root, config)


@case("a tune choice list of 50,000 values", "choice lists 50,000 values; at most 1,000")
def _(root):
    config = {**LINEAR, "tune": {"space": {"data.batch_size": {"choice": list(range(1, 50_001))}}, "trials": 2}}
    return ["tune", write(root / "config.yaml", config), "--runs-dir", root / "runs"]


@case("augmentation num_ops: 1e9", "rand_augment.num_ops: expected a value <= 64, got 1,000,000,000")
def _(root):
    config = image_config(images_npz(root), augmentation=[{"rand_augment": {"num_ops": 10**9}}])
    return run_args(root, config)


# -- class 3: memory bombs (sizes a file or option claims, checked before allocating) ---------

def zip_of(path: Path, members: dict[str, bytes | int]) -> Path:
    """A deflated zip; an int member is that many zero bytes, written a chunk at a time."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in members.items():
            with archive.open(name, "w", force_zip64=True) as f:
                if isinstance(content, bytes):
                    f.write(content)
                else:
                    for _ in range(content // 2**24):
                        f.write(bytes(2**24))
    return path


def npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@case("init_from .keras whose weights inflate 1,000 times", "model.init_from: ", "model.keras: refused: its",
      "bytes inflate to 268,435,")
def _(root):
    zip_of(root / "model.keras", {"config.json": b'{"class_name": "Sequential", "config": {}}',
                                  "metadata.json": b"{}", "model.weights.h5": 2**28})
    return run_args(root, {**LINEAR, "model": {"type": "linear", "init_from": str(root / "model.keras")}})


@case("journal storage on /dev/zero", "/dev/zero is a device, not a regular file", "--storage")
def _(root):
    config = {**LINEAR, "tune": {"space": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}, "trials": 2}}
    return ["tune", write(root / "config.yaml", config), "--storage", "journal:/dev/zero", "--runs-dir", root / "runs"]


@case(".npy header in an .npz claiming 4 TiB", "array 'x_train': its header claims 4,096.0 GiB of data")
def _(root):
    zip_of(root / "data.npz", {"x_train.npy": npy_header((2**40,)) + bytes(64),
                               "y_train.npy": npy_header((4,), "<i8") + bytes(32)})
    return run_args(root, {**LINEAR, "data": {"dataset": "npz", "path": str(root / "data.npz"), "validation": "none"}})


@case("a CIFAR pickle calling numpy.ndarray for 10^6 images", "data_batch_1: refused to unpickle a call of numpy.ndarray")
def _(root):
    import pickle

    class Claim:
        def __reduce__(self):
            return np.ndarray, ((10**6, 3072), "u1")

    batch = pickle.dumps({b"data": Claim(), b"labels": [0] * 4}, protocol=2)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        write(root / "cifar" / name, batch)
    return run_args(root, image_config(root / "cifar") | {"data": {"dataset": "cifar10", "path": str(root / "cifar")}})


@case("backbone alpha: 1e6", "model.options.alpha: expected a width multiplier in (0, 4.0], got 1000000.0")
def _(root):
    config = image_config(images_npz(root, side=32))
    config["model"] = {"type": "application", "name": "mobilenet_v3_small", "weights": None,
                       "options": {"alpha": 1.0e6}}
    return run_args(root, config)


@case("a 100,000-pixel random crop inside the model", "random_crop.height: expected a value <= 16,384, got 100,000")
def _(root):
    config = image_config(images_npz(root), augmentation_on="model",
                          augmentation=[{"random_crop": {"height": 100_000, "width": 100_000}}])
    return run_args(root, config)


@case("a random crop larger than the images", "a 64x64 crop is larger than the 8x8 images", "height <= 8")
def _(root):
    config = image_config(images_npz(root), augmentation_on="model",
                          augmentation=[{"random_crop": {"height": 64, "width": 64}}])
    return run_args(root, config)


@case("tune --jobs 1000000", "--jobs: expected at most 256 trials at once", "got 1,000,000")
def _(root):
    config = {**LINEAR, "tune": {"space": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}, "trials": 2}}
    return ["tune", write(root / "config.yaml", config), "--jobs", "1000000", "--runs-dir", root / "runs"]


# -- class 5: tracebacks become one line ------------------------------------------------------

@case("a piecewise schedule boundary of 1e30", "optimizer.learning_rate.boundaries.0: expected a value <= 2147483647")
def _(root):
    schedule = {"schedule": "piecewise_constant", "boundaries": [10**30], "values": [0.1, 0.01]}
    return run_args(root, {**LINEAR, "optimizer": {"name": "sgd", "learning_rate": schedule}})


@case("an extends chain 1,000 files deep", "config.yaml: extends chain of more than 32 files")
def _(root):
    for i in range(1, 1000):
        write(root / f"e{i}.yaml", {"extends": f"e{i + 1}.yaml"})
    write(root / "e1000.yaml", LINEAR)
    return run_args(root, {"extends": "e1.yaml"})


@case("a 300-character run name", "--name: expected at most 200 characters, got 300")
def _(root):
    return run_args(root, LINEAR, "--name", "n" * 300)


@case("a 300-character name: in the config", "name: expected string should have at most 200 characters")
def _(root):
    return run_args(root, {**LINEAR, "name": "n" * 300})


@case("a damaged study.json on tune --resume", "study.json: 'storage' is int, expected a non-empty string")
def _(root):
    write(root / "study" / "study.json", '{"study": "s", "storage": 7}')
    return ["tune", "--resume", root / "study"]


@case("a study.json that is not JSON on tune --resume", "study.json: unreadable")
def _(root):
    write(root / "study" / "study.json", b"\xff\xfe{garbage")
    return ["tune", "--resume", root / "study"]


@case("string labels in an npz", "array 'y_train' holds <U3 values; expected numbers (class labels as integers")
def _(root):
    np.savez(root / "data.npz", x_train=np.zeros((4, 2), np.float32), y_train=np.array(["cat", "dog"] * 2))
    return run_args(root, {**LINEAR, "data": {"dataset": "npz", "path": str(root / "data.npz"), "validation": "none"}})


@case("a corrupt deflate stream in an npz", "data.npz: not a readable .npz file")
def _(root):
    np.savez_compressed(root / "data.npz", x_train=np.arange(4096, dtype=np.float32).reshape(-1, 4),
                        y_train=np.arange(1024, dtype=np.float32))
    data = bytearray((root / "data.npz").read_bytes())
    data[1000:1060] = bytes(60)  # inside the first member's deflate stream, past its header
    (root / "data.npz").write_bytes(bytes(data))
    return run_args(root, {**LINEAR, "data": {"dataset": "npz", "path": str(root / "data.npz"), "validation": "none"}})


@case("a layer name TensorFlow cannot use", "model.layers[0] (dense).name: layer name 'a b!' cannot be used")
def _(root):
    return run_args(root, {**LINEAR, "model": {"type": "sequential", "layers": [{"dense": {"units": 1, "name": "a b!"}}]}})


@case("a garbage weights file for a backbone", "model.weights: ", "garbage.weights.h5: not weights of mobilenet_v3_small")
def _(root):
    write(root / "garbage.weights.h5", bytes(range(256)) * 20)
    config = image_config(images_npz(root, side=32))
    config["model"] = {"type": "application", "name": "mobilenet_v3_small", "weights": str(root / "garbage.weights.h5")}
    return run_args(root, config)


# -- class 6: accepted nonsense, refused at validate --------------------------------------------

def accumulating(batches: int, **training) -> dict:
    return {**LINEAR, "optimizer": {"name": "sgd", "gradient_accumulation_steps": batches},
            "training": training or {"epochs": 1}}


@case("gradient accumulation over 1e9 batches (validate)",
      "optimizer.gradient_accumulation_steps: expected an integer in [2, 65536] or null, got 1000000000")
def _(root):
    return ["validate", write(root / "config.yaml", accumulating(10**9))]


@case("gradient accumulation over more batches than training.steps (validate)",
      "optimizer.gradient_accumulation_steps: 50 batches per update, but the run trains training.steps 10")
def _(root):
    return ["validate", write(root / "config.yaml", accumulating(50, steps=10))]


@case("gradient accumulation over more batches than the epochs hold (run)",
      "optimizer.gradient_accumulation_steps: 5000 batches per update, but the run trains 7 steps on this data")
def _(root):
    return run_args(root, accumulating(5000))


@case("class_weight naming class 0 twice (validate)", 'training.class_weight.0: class 0 is given twice (0 and "0")')
def _(root):
    write(root / "config.yaml", "data: {dataset: synthetic_binary}\nmodel: {type: linear}\n"
          "loss: binary_crossentropy\ntraining: {epochs: 1, class_weight: {0: 1.0, '0': 2.0}}\n")
    return ["validate", root / "config.yaml"]


@case("class_weight with a YAML duplicate key (validate)", "config.yaml: line 2: key 1.0 is given twice")
def _(root):
    write(root / "config.yaml", "data: {dataset: synthetic_binary}\ntraining: {class_weight: {1: 1.0, 1.0: 2.0}}\n"
          "model: {type: linear}\nloss: binary_crossentropy\n")
    return ["validate", root / "config.yaml"]


# -- class 7: leftovers after a refusal (the corpus's tree check catches any) -------------------

@case("a sqlite storage that is not a database leaves no .db.lock", "--storage sqlite:///",
      "notes.db: cannot open the database: file is not a database")
def _(root):
    write(root / "notes.db", "these are my notes, not a database\n" * 100)
    config = {**LINEAR, "tune": {"space": {"optimizer.learning_rate": {"uniform": [0.01, 0.1]}}, "trials": 2}}
    return ["tune", write(root / "config.yaml", config), "--storage", f"sqlite:///{root / 'notes.db'}",
            "--runs-dir", root / "runs"]


def test_record_framing_counts_what_tensorflow_reads_and_refuses_damaged_lengths(tmp_path):
    from tests.data.test_streaming import write_records
    from tftrain.data.records.framing import check_framing
    from tftrain.errors import DataError

    records = [bytes([i]) * (i * 37 % 300) for i in range(200)]
    plain = write_records(tmp_path / "a.tfrecord", records)
    packed = write_records(tmp_path / "a.tfrecord.gz", records, compress=True)
    assert check_framing(plain, "") == check_framing(packed, "GZIP") == 200
    chained = write(tmp_path / "b.tfrecord.gz", packed.read_bytes() * 2)  # two gzip members, as TF reads them
    assert check_framing(chained, "GZIP") == 400
    damaged = bytearray(plain.read_bytes())
    damaged[3] ^= 0x40  # the first length field, now claiming a terabyte
    with pytest.raises(DataError, match=r"c.tfrecord: corrupted record at 0: record 0's length field fails"):
        check_framing(write(tmp_path / "c.tfrecord", bytes(damaged)), "")
    with pytest.raises(DataError, match=r"not a valid gzip stream"):
        check_framing(write(tmp_path / "d.tfrecord.gz", packed.read_bytes()[:40] + b"\xff" * 64), "GZIP")


# -- class 4: data loss -------------------------------------------------------------------------

def one_error_line(result) -> str:
    """An in-process CLI result's one `error:` line (exit 2, no traceback)."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_convert_never_removes_a_folder_of_the_users_and_refuses_a_symlink(cli, tmp_path, tiny_mnist,
                                                                           write_config, monkeypatch):
    source = write_config({"data": {"dataset": "npz", "path": str(tiny_mnist)},
                           "loss": "sparse_categorical_crossentropy"}, "source.yaml")
    mine = write(tmp_path / ".shards.converting" / "notes.txt", "mine")  # the old fixed staging name
    assert cli("convert", source, "--to", "tfrecord", "--output", tmp_path / "shards").exit_code == 0
    assert mine.read_text() == "mine" and (tmp_path / "shards" / "tftrain-dataset.json").is_file()
    before = tree(tmp_path)

    from tftrain.commands import convert

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convert, "_write_split", disk_full)  # a conversion that fails half-way
    failed = cli("convert", source, "--to", "tfrecord", "--output", tmp_path / "again")
    assert failed.exit_code != 0 and tree(tmp_path) == before, "a failed conversion left or removed files"
    monkeypatch.undo()
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "empty", tmp_path / "link")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for link in ("link", "dangling"):
        line = one_error_line(cli("convert", source, "--to", "tfrecord", "--output", tmp_path / link))
        assert f"--output: {tmp_path / link} is a symbolic link; give a new folder" in line
    assert not any((tmp_path / "empty").iterdir()) and not (tmp_path / "nowhere").exists()


# -- class 5 on a trained run: predict inputs and plot ----------------------------------------

def test_predict_inputs_that_used_to_raise_are_one_line(cli, tiny_runs, tmp_path):
    import pickle

    run = tiny_runs["regression"]
    cases = {
        "pickled.npz": "holds Python objects (a pickle)",
        "objects.npy": "holds Python objects (a pickle)",
        "latin1.csv": "not a readable CSV file",
        "empty.npy": "an empty array of shape (0, 1); expected at least one example",
        "claims.npy": "its header claims 4,096.0 GiB of data, but the file holds 8 bytes",
    }
    zip_of(tmp_path / "pickled.npz", {"x.npy": npy_header((2,), "|O") + pickle.dumps([1, 2])})
    write(tmp_path / "objects.npy", npy_header((2,), "|O") + pickle.dumps([1, 2]))
    write(tmp_path / "latin1.csv", "x\n1.5\ncaf\xe9\n".encode("latin-1"))
    np.save(tmp_path / "empty.npy", np.zeros((0, 1), np.float32))
    write(tmp_path / "claims.npy", npy_header((2**40,)) + bytes(8))
    for name, message in cases.items():
        line = one_error_line(cli("predict", run, tmp_path / name))
        assert f"{name}: " in line and message in line, line
    png(tmp_path / "images" / "a.png")
    os.mkfifo(tmp_path / "images" / "b.png")  # opening it would wait for a writer forever
    line = one_error_line(cli("predict", tiny_runs["fashion"], tmp_path / "images"))
    assert "b.png: is a FIFO (named pipe), not a regular file; expected image files" in line


def test_plot_of_a_history_without_metrics_is_one_line(cli, tiny_runs, tmp_path):
    import shutil

    run = Path(shutil.copytree(tiny_runs["regression"], tmp_path / "run"))
    (run / "history.csv").write_text("epoch,lr\n1,0.1\n2,0.1\n")
    line = one_error_line(cli("plot", run, "--output", tmp_path / "out.png"))
    assert "history.csv has no metric columns to plot" in line and not (tmp_path / "out.png").exists()


def test_a_refused_export_leaves_no_export_folder(cli, tiny_runs, tmp_path):
    import shutil

    import keras

    run = Path(shutil.copytree(tiny_runs["regression"], tmp_path / "run"))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Lambda(lambda x: x * 2.0, name="double"),
                              keras.layers.Dense(1)])
    for snapshot in run.rglob("*.keras"):  # the final model and the checkpoints export reads
        model.save(snapshot)
    before = tree(tmp_path)
    for fmt in ("saved_model", "keras", "tflite"):
        line = one_error_line(cli("export", run, "--format", fmt))
        assert "layer 'double' is a Lambda layer" in line, line
        assert tree(tmp_path) == before, f"a refused {fmt} export left files behind"
    line = one_error_line(cli("export", run, "--format", "h5", "--output", tmp_path / "new" / "deeper" / "m.h5"))
    assert "Lambda layer" in line and not (tmp_path / "new").exists()


# -- class 8: terminal and log injection ------------------------------------------------------

HOSTILE_NAMES = ["\x1b[2Jclear", "ok\nerror: forged line", "\u202eevil\u2066", "\x1b]0;title\x07[red]red[/red]"]


def assert_inert(output: str) -> None:
    """Nothing in `output` a terminal would act on: no ESC, BEL, bidi or zero-width character, no
    forged `error:` line; the hostile values shown escaped."""
    assert not any(c in output for c in "\x1b\x07\u202e\u2066\u200b"), repr(output[-2000:])
    assert not any(line.startswith("error: forged") for line in output.splitlines()), output
    assert "\\x1b[2Jclear" in output and "ok\\nerror: forged line" in output and "\\u202eevil" in output, output


def test_values_from_files_are_shown_escaped_in_lines_and_tables(cli, tmp_path, write_config):
    import json
    import shutil

    rows = "".join(f'{i % 7 / 7},"{HOSTILE_NAMES[i % 4]}"\n' for i in range(40))
    write(tmp_path / "t.csv", "x,label\n" + rows)
    config = write_config({"name": "echo", "data": {"dataset": "csv", "path": str(tmp_path / "t.csv"),
                                                    "validation": "none", "options": {"label": "label"}},
                           "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
                           "training": {"epochs": 1}})
    result = cli("run", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "classes: 4" in result.output
    assert_inert(result.output)
    run = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    summary["best"] = {"monitor": " / ".join(HOSTILE_NAMES), "value": 0.5, "epoch": 1}
    (run / "summary.json").write_text(json.dumps(summary))
    listed = cli("runs", tmp_path / "runs")
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.output)
    assert "[red]red[/red]" in listed.output  # rich markup shown as it is, never applied
    other = shutil.copytree(run, tmp_path / "runs" / "echo-copy")
    compared = cli("compare", run, other)
    assert compared.exit_code == 0 and "\x1b" not in compared.output and "\u202e" not in compared.output


def test_file_names_and_config_values_are_shown_escaped(cli, tmp_path):
    name = tmp_path / "c\x1b[2Jclear\u202e.yaml"
    write(name, LINEAR)
    for args in (("validate", name), ("show", name, "--sources")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\u202e" not in result.output and "\\x1b[2Jclear\\u202e" in result.output
    layers = {**LINEAR, "model": {"type": "sequential", "layers": [{"dense": {"units": 1, "name": "ok\nerror: forged"}}]}}
    line = one_error_line(cli("validate", write(tmp_path / "layers.yaml", layers)))
    assert "ok\\nerror: forged" in line


# -- class 9: messages that name what to fix --------------------------------------------------

@case("tfrecord labels implying 10^12 classes name the option", "data.options.num_classes: ",
      "so a model would need 1,000,000,000,001 outputs (at most 100,000)")
def _(root):
    from tests.data.test_streaming import example, write_records

    write_records(root / "train.tfrecord", [example({"image": bytes(4), "label": [label]}) for label in (0, 10**12)])
    return run_args(root, tfrecord_config(root, "train.tfrecord"))


@case("CSV targets implying 10^12 classes name data.options.task", "data.options.task: ",
      "set data.options.task: regression")
def _(root):
    write(root / "t.csv", "x,y\n1,0\n2,1000000000000\n3,1\n")
    config = {"data": {"dataset": "csv", "path": str(root / "t.csv"), "validation": "none", "options": {"label": "y"}},
              "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy"}
    return run_args(root, config)


@case("offline imagenet weights: the one line, no download line or warning before it",
      "model.weights: imagenet weights of mobilenet_v3_small:", "downloads are off", env={"TFTRAIN_OFFLINE": "1"})
def _(root):
    config = image_config(images_npz(root, side=32))
    config["model"] = {"type": "application", "name": "mobilenet_v3_small", "weights": "imagenet"}
    return run_args(root, config)


@case("a tampered convert sidecar is not trusted", "train.tfrecord: truncated record at")
def _(root):
    write(root / "train.tfrecord", frame(b"x" * 20, length=2**40))
    size = (root / "train.tfrecord").stat().st_size
    write(root / "tftrain-dataset.json", {"format": 1, "features": RAW, "label": "label", "class_names": 7,
                                          "files": {"train.tfrecord": {"records": 1, "bytes": size,
                                                                       "low": 0, "high": float("inf")}}})
    return run_args(root, tfrecord_config(root, "train.tfrecord"))


# -- the corpus, run (every case above) ----------------------------------------------------------

@pytest.mark.parametrize("hostile", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_input_is_refused_in_one_line_within_bounds(tmp_path, hostile):
    root = tmp_path / "work"
    root.mkdir()
    args = hostile.build(root)
    before = tree(root)
    assert_refused(run_tftrain(args, root, hostile.env), *hostile.expected)
    assert tree(root) == before, "a refusal wrote or removed files"


def test_jobs_are_capped_by_tasks_and_cores_and_refused_past_the_limit(monkeypatch):
    from tftrain.commands import job_limits
    from tftrain.errors import UserError

    monkeypatch.setattr(job_limits, "cpu_cores", lambda: 16)
    assert job_limits.capped_jobs(4, 20, "trials") == (4, None)
    assert job_limits.capped_jobs(200, 2, "trials") == (2, "--jobs 200: 2 at once (there are 2 trials)")
    assert job_limits.capped_jobs(64, None, "trials") == (16, "--jobs 64: 16 at once (there are 16 CPU cores)")
    for jobs, message in ((0, "expected a positive number of runs at once, got 0"),
                          (10**6, "expected at most 256 runs at once (each is a TensorFlow process), got 1,000,000")):
        with pytest.raises(UserError, match=re.escape(message)):
            job_limits.capped_jobs(jobs, 2, "runs")
