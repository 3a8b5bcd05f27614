"""Every loader on tiny files written in its real on-disk format, through the real registry.

CIFAR-10 batches are pickled dicts like the originals (including a Python-2-style stream, as the
real files are), IDX files are written with struct + gzip, CSVs with csv, images with PIL.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import re
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tftrain.data import LOADERS
from tftrain.data.images import cifar, fashion_mnist, idx
from tftrain.errors import DataError
from tftrain.spec.datasets import DATASETS
from tftrain.spec.schema import DataConfig

PER_BATCH = 4  # examples per CIFAR batch: 20 train, 4 test
from tests.conftest import CONFIGS  # noqa: E402


def load(dataset: str, path=None, **options):
    """Run a loader exactly as `tftrain run` does: a validated DataConfig through the registry."""
    cfg = DataConfig.model_validate({"dataset": dataset, "path": None if path is None else str(path),
                                     "options": options})
    return LOADERS[dataset](cfg, 0)


def test_every_catalog_dataset_has_a_loader():
    assert set(LOADERS) == set(DATASETS)


# ---------------------------------------------------------------------------------------------
# CIFAR-10


class Py2Pickler(pickle._Pickler):
    """Writes str/bytes as Python 2 `str` (BINSTRING), as cPickle did for the original batches."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(data)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else
                    pickle.BINSTRING + struct.pack("<i", n)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def cifar_batch(seed: int, n: int = PER_BATCH) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch", b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def dump(obj, path: Path, protocol) -> None:
    """pickle.dump with a protocol, or "py2" for a stream like the originals (numpy.core, str keys)."""
    if protocol == "py2":
        buffer = io.BytesIO()
        Py2Pickler(buffer, protocol=2).dump(obj)
        path.write_bytes(buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)


def write_cifar_py(folder: Path, protocol="py2") -> dict[str, dict]:
    folder.mkdir(parents=True)
    batches = {name: cifar_batch(i) for i, name in enumerate((*cifar.TRAIN_BATCHES, cifar.TEST_BATCH))}
    for name, batch in batches.items():
        dump(batch, folder / name, protocol)
    return batches


def write_cifar_bin(folder: Path) -> dict[str, dict]:
    folder.mkdir(parents=True)
    batches = {name: cifar_batch(i) for i, name in enumerate((*cifar.TRAIN_BATCHES, cifar.TEST_BATCH))}
    for name, batch in batches.items():
        records = np.concatenate([np.array(batch[b"labels"], np.uint8)[:, None], batch[b"data"]], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return batches


def assert_cifar(data, batches: dict[str, dict]) -> None:
    assert data.x_train.shape == (5 * PER_BATCH, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (PER_BATCH, 32, 32, 3) and data.y_test.dtype == np.int32
    first = batches["data_batch_1"]
    # Channel-major rows (1024 red, 1024 green, 1024 blue) become channels-last pixels.
    pixel = first[b"data"][0].reshape(3, 32, 32)[:, 5, 7]
    np.testing.assert_array_equal(data.x_train[0, 5, 7], pixel)
    np.testing.assert_array_equal(data.y_train[:PER_BATCH], first[b"labels"])
    np.testing.assert_array_equal(data.y_test, batches["test_batch"][b"labels"])
    assert data.num_classes == 10 and data.input_scale == pytest.approx(1 / 255)
    assert data.class_names[0] == "airplane"


@pytest.mark.parametrize("protocol", ["py2", 2, 4, 5])
def test_cifar10_python_batches_every_pickle_flavour(tmp_path, protocol):
    batches = write_cifar_py(tmp_path / "cifar-10-batches-py", protocol)
    data = load("cifar10", tmp_path / "cifar-10-batches-py")
    assert_cifar(data, batches)
    assert "cifar-10-batches-py/{data_batch_1" in data.source and "test_batch}" in data.source


def test_cifar10_found_in_both_keras_cache_layouts(tmp_path):
    cache = tmp_path / "keras_home" / "datasets"
    batches = write_cifar_py(cache / "cifar-10-batches-py-target" / "cifar-10-batches-py")  # Keras >= 3.6
    assert_cifar(load("cifar10"), batches)
    batches = write_cifar_py(cache / "cifar-10-batches-py", protocol=4)  # older Keras: straight in the cache
    data = load("cifar10")
    assert_cifar(data, batches)
    assert data.source.startswith(str(cache / "cifar-10-batches-py") + "/{")


def test_cifar10_binary_batches_and_parent_folder(tmp_path):
    batches = write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    data = load("cifar10", tmp_path)  # the parent of cifar-10-batches-bin also works
    assert_cifar(data, batches)
    assert "data_batch_1.bin" in data.source


def test_cifar10_read_from_the_downloaded_archive(tmp_path):
    batches = write_cifar_py(tmp_path / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = load("cifar10", archive)
    assert_cifar(data, batches)
    assert data.source.startswith(f"{archive}:cifar-10-batches-py/")


class Payload:
    """Unpickling this calls `call(*args)`: what a tampered batch would do."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("make_payload,refused", [
    (lambda marker: Payload(open, str(marker), "w"), r"io\.open"),
    (lambda marker: Payload(os.system, f"touch {marker}"), r"posix\.system"),
    # Protocol 2 writes the Python 2 name of the builtins module.
    (lambda marker: Payload(exec, f"open({str(marker)!r}, 'w')"), r"(builtins|__builtin__)\.exec"),
])
def test_cifar10_tampered_pickle_is_refused_and_runs_nothing(tmp_path, protocol, make_payload, refused):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    marker = tmp_path / "pwned"
    batch = cifar_batch(0)
    batch[b"labels"] = make_payload(marker)
    dump(batch, folder / "data_batch_3", protocol)
    with pytest.raises(DataError) as error:
        load("cifar10", folder)
    message = str(error.value)
    assert re.match(re.escape(f"{folder / 'data_batch_3'}: refused to unpickle ") + refused + " ", message)
    assert "\n" not in message
    assert not marker.exists()


def test_cifar10_truncated_and_malformed_batches_name_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    whole = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"data_batch_2: not a readable CIFAR-10 python batch .*truncated"):
        load("cifar10", folder)
    (folder / "data_batch_2").write_bytes(whole)

    batch = cifar_batch(0)
    batch[b"data"] = batch[b"data"][:, :1000]
    dump(batch, folder / "test_batch", 4)
    with pytest.raises(DataError, match=r"test_batch: 'data' is uint8 array of shape \(4, 1000\); "
                                        r"expected a uint8 array of shape \(N, 3072\)"):
        load("cifar10", folder)
    batch = cifar_batch(0)
    batch[b"labels"] = [0.5] * PER_BATCH
    dump(batch, folder / "test_batch", 4)
    with pytest.raises(DataError, match=r"test_batch: 'labels' must be 4 integers, one per image; got list of float64"):
        load("cifar10", folder)
    dump(["not", "a", "dict"], folder / "test_batch", 4)
    with pytest.raises(DataError, match="test_batch: holds a pickled list"):
        load("cifar10", folder)


def test_cifar10_truncated_binary_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_bin(folder)
    path = folder / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"data_batch_4.bin: 12282 bytes is not a whole number of 3073-byte"):
        load("cifar10", folder)


def test_cifar10_missing_offline_says_what_to_place_where(tmp_path):
    with pytest.raises(DataError) as error:
        load("cifar10")
    message = str(error.value)
    cache = tmp_path / "keras_home" / "datasets"
    assert str(cache / "cifar-10-batches-py") in message and cifar.ORIGIN in message
    assert "data.path" in message and "TFTRAIN_OFFLINE" in message
    with pytest.raises(DataError, match="holds no CIFAR-10 batches"):
        load("cifar10", tmp_path)
    write_cifar_py(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match=r"cifar-10-batches-py/test_batch: missing; a CIFAR-10 folder holds "
                                        r"data_batch_1, .*, data_batch_5 and test_batch"):
        load("cifar10", tmp_path)


# ---------------------------------------------------------------------------------------------
# IDX: Fashion-MNIST and MNIST


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding: 0, 0, type code, ndim, big-endian dims, big-endian data."""
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx_folder(folder: Path, n_train: int = 24, n_test: int = 8, compress: bool = True,
                     image_shape=(28, 28)) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
              "y_train": (np.arange(n_train) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
              "y_test": (np.arange(n_test) % 10).astype(np.uint8)}
    for split, stem in idx.FILES.items():
        raw = idx_bytes(arrays[split])
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return arrays


def assert_idx(data, arrays) -> None:
    for split in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(data, split), arrays[split])
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32
    assert data.num_classes == 10 and data.input_scale == pytest.approx(1 / 255)


def test_read_idx_dtypes_and_endianness(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 1e6]], np.float32)
    (tmp_path / "f.idx").write_bytes(idx_bytes(values))
    out = idx.read_idx(tmp_path / "f.idx")
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, values)
    ints = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
    (tmp_path / "i.idx.gz").write_bytes(gzip.compress(idx_bytes(ints)))
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "i.idx.gz"), ints)


def test_fashion_mnist_from_data_path_and_keras_cache(tmp_path):
    arrays = write_idx_folder(tmp_path / "fm")
    data = load("fashion_mnist", tmp_path / "fm")
    assert_idx(data, arrays)
    assert data.source == f"{tmp_path / 'fm'}/{{{', '.join(idx.GZ_NAMES)}}}"
    assert data.class_names[9] == "Ankle boot"

    arrays = write_idx_folder(tmp_path / "keras_home" / "datasets" / "fashion-mnist", n_train=12, compress=False)
    data = load("fashion_mnist")
    assert_idx(data, arrays)
    assert "train-images-idx3-ubyte," in data.source  # the plain (uncompressed) files were read


def test_fashion_mnist_debian_package_location(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "usr-share-datasets")
    arrays = write_idx_folder(tmp_path / "usr-share-datasets")
    data = load("fashion_mnist")
    assert_idx(data, arrays)
    assert data.source.startswith(str(tmp_path / "usr-share-datasets"))


def test_fashion_mnist_missing_offline_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "absent")
    with pytest.raises(DataError) as error:
        load("fashion_mnist")
    message = str(error.value)
    assert all(name in message for name in idx.GZ_NAMES)
    assert str(tmp_path / "keras_home" / "datasets" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message and fashion_mnist.ORIGIN in message
    write_idx_folder(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"partial lacks t10k-labels-idx1-ubyte.gz \(get them from"):
        load("fashion_mnist", tmp_path / "partial")


def test_truncated_gzip_is_one_line_error_naming_the_file(tmp_path):
    write_idx_folder(tmp_path / "fm", n_train=200)
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError) as error:
        load("fashion_mnist", tmp_path / "fm")
    assert str(error.value).startswith(f"{path}: unreadable gzip data (")
    assert "truncated or corrupt" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("damage,expected", [
    (lambda raw: raw[:-5], r"the IDX header announces shape \(24, 28, 28\) \(18832 bytes\), but the file holds 18827 bytes"),
    (lambda raw: raw + b"\0", r"announces shape \(24, 28, 28\) \(18832 bytes\), but the file holds 18833 bytes"),
    (lambda raw: b"\0\0\x07\x03" + raw[4:], r"not an IDX file \(magic number 00000703"),
    (lambda raw: raw[:10], r"IDX header cut short"),
    (lambda raw: raw[:4] + b"\xff" * 12 + raw[16:], r"header announces shape \(4294967295, 4294967295, 4294967295\) "
                                                    r"\(7\d+ bytes\), but the file holds 18832 bytes"),
])
def test_damaged_idx_files(tmp_path, damage, expected):
    write_idx_folder(tmp_path / "fm", compress=False)
    path = tmp_path / "fm" / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=expected):
        load("fashion_mnist", tmp_path / "fm")


def test_wrong_shape_idx_images_and_label_counts(tmp_path):
    write_idx_folder(tmp_path / "fm", image_shape=(32, 32))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: holds uint8 data of shape \(24, 32, 32\); "
                                        r"expected uint8 images of shape \(N, 28, 28\)"):
        load("fashion_mnist", tmp_path / "fm")
    write_idx_folder(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: 5 labels for the 8 images of t10k-images"):
        load("fashion_mnist", tmp_path / "fm")


def test_mnist_from_a_folder_of_original_idx_files(tmp_path):
    arrays = write_idx_folder(tmp_path / "MNIST" / "raw", compress=False)
    data = load("mnist", tmp_path / "MNIST" / "raw")
    assert_idx(data, arrays)
    assert data.class_names == tuple("0123456789")
    with pytest.raises(DataError, match="expected the Keras mnist.npz file .* or a folder holding the IDX files"):
        load("mnist", tmp_path)


# ---------------------------------------------------------------------------------------------
# CSV


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_integer_labels_are_classes_and_test_file(tmp_path):
    rows = [[i * 0.5, -i, i % 3] for i in range(12)]
    train = write_csv(tmp_path / "train.csv", ["a", "b", "kind"], rows)
    test = write_csv(tmp_path / "test.csv", ["a", "b", "kind"], rows[:4])
    data = load("csv", train, label="kind", test_path=str(test))
    assert data.x_train.shape == (12, 2) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[3], [1.5, -3])
    assert data.y_train.dtype == np.int32 and data.y_train.tolist() == [i % 3 for i in range(12)]
    assert data.x_test.shape == (4, 2) and data.num_classes == 3
    assert data.source.startswith(f"{train} (test: {test}): 2 feature columns, target 'kind' (classes)")


def test_csv_float_targets_are_regression_and_text_labels_name_classes(tmp_path):
    path = write_csv(tmp_path / "houses.csv", ["rooms", "price", "area"],
                     [[3, 250.5, 80], [4, 320.0, 95], [2, 180.25, 60]])
    data = load("csv", path, label="price")
    assert data.y_train.shape == (3, 1) and data.y_train.dtype == np.float32
    assert data.num_classes is None and data.x_test is None
    np.testing.assert_array_equal(data.x_train[:, 1], [80, 95, 60])  # the label column is skipped

    path = write_csv(tmp_path / "iris.csv", ["sepal", "species"],
                     [[5.1, "setosa"], [7.0, "versicolor"], [6.3, "virginica"], [4.9, "setosa"]])
    data = load("csv", path, label="species")
    assert data.class_names == ("setosa", "versicolor", "virginica")
    assert data.y_train.tolist() == [0, 1, 2, 0] and data.num_classes == 3


def test_csv_task_option_overrides_the_guess(tmp_path):
    path = write_csv(tmp_path / "counts.csv", ["x", "visits", "score"], [[1, 3, "1.0"], [2, 7, "0.0"], [3, 12, "1.0"]])
    assert load("csv", path, label="visits").num_classes == 13  # auto: integers are classes
    counts = load("csv", path, label="visits", task="regression")
    assert counts.y_train.dtype == np.float32 and counts.y_train.shape == (3, 1) and counts.num_classes is None
    scores = load("csv", path, label="score", task="classification")
    assert scores.y_train.tolist() == [1, 0, 1] and scores.num_classes == 2
    negative = write_csv(tmp_path / "neg.csv", ["x", "score"], [[1, "1"], [2, "-1.5"]])
    with pytest.raises(DataError, match=r"neg.csv: line 3, column 'score': -1.5 is not a class index"):
        load("csv", negative, label="score", task="classification")
    assert load("csv", negative, label="score").num_classes is None  # auto: negative -> regression


def test_csv_errors_name_the_file_line_and_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["age", "income", "label"], [[30, 1.5, 0], [41, "", 1], [22, 0.3, 1]])
    with pytest.raises(DataError, match=r"t.csv: line 3, column 'income': an empty value"):
        load("csv", path, label="label")
    with pytest.raises(DataError, match=r"data.options.label: column 'Label' is not in .*t.csv \(columns: age, "
                                        r"income, label\) — did you mean 'label'\?"):
        load("csv", path, label="Label")
    path.write_text("a,b,label\n1,2,0\n1,2\n")
    with pytest.raises(DataError, match="t.csv: line 3 has 2 fields; the header has 3"):
        load("csv", path, label="label")
    path.write_text("a,label\n1,0\n2,cat\n")
    with pytest.raises(DataError, match=r"t.csv: line 3, column 'label': 'cat' mixes with numbers"):
        load("csv", path, label="label")


def test_csv_label_option_is_required_by_validate(cli, write_config):
    config = write_config({"data": {"dataset": "csv", "path": "x.csv"}, "loss": "mse"})
    result = cli("validate", config)
    assert result.exit_code == 2 and "data.options.label: required key is missing" in result.output


# ---------------------------------------------------------------------------------------------
# Image folders


def write_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, size=(10, 12)) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_image_folder_reads_uint8_images_with_folder_labels(tmp_path):
    write_image_folder(tmp_path / "train")
    write_image_folder(tmp_path / "test", per_class=1)
    data = load("image_folder", tmp_path / "train", image_size=[10, 12], test_path=str(tmp_path / "test"))
    assert data.x_train.shape == (6, 10, 12, 3) and data.x_train.dtype == np.uint8
    assert data.y_train.tolist() == [0, 0, 0, 1, 1, 1] and data.y_test.tolist() == [0, 1]
    assert data.class_names == ("cat", "dog") and data.num_classes == 2
    from PIL import Image

    # Same size: the pixels come back exactly.
    np.testing.assert_array_equal(data.x_train[4], np.asarray(Image.open(tmp_path / "train" / "dog" / "1.png")))
    gray = load("image_folder", tmp_path / "train", image_size=[5, 6], color_mode="grayscale")
    assert gray.x_train.shape == (6, 5, 6, 1)


def test_image_folder_errors(tmp_path):
    write_image_folder(tmp_path / "train")
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"train/dog/broken.png: not a readable image"):
        load("image_folder", tmp_path / "train", image_size=[8, 8])
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty: No images found .*expected one sub-folder per class"):
        load("image_folder", tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Through the CLI: the console names the files read, summary.json records shapes and dtypes


def test_cifar10_cnn_custom_loop_run(cli, tmp_path):
    write_cifar_py(tmp_path / "cifar-10-batches-py")
    result = cli("run", CONFIGS / "cifar10_cnn.yaml", "--runs-dir", tmp_path / "runs",
                 "--set", f"data.path={tmp_path / 'cifar-10-batches-py'}", "--set", "training.epochs=1",
                 "--set", "data.batch_size=8", "--set", "model.conv=[8,8]", "--set", "model.dense=[8]")
    assert result.exit_code == 0, result.output
    assert f"data: {tmp_path / 'cifar-10-batches-py'}/{{data_batch_1" in result.output
    assert "train: x (20, 32, 32, 3) uint8, y (20,) int32" in result.output
    summary = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["loop"] == "custom"
    assert summary["data"]["test"] == {"x_shape": [4, 32, 32, 3], "x_dtype": "uint8", "y_shape": [4], "y_dtype": "int32"}
    assert summary["data"]["class_names"][:2] == ["airplane", "automobile"]


def test_fashion_mnist_dense_fit_run(cli, tmp_path):
    write_idx_folder(tmp_path / "fm")
    result = cli("run", CONFIGS / "fashion_mnist_dense.yaml", "--runs-dir", tmp_path / "runs",
                 "--set", f"data.path={tmp_path / 'fm'}", "--set", "training.epochs=1", "--set", "data.batch_size=8")
    assert result.exit_code == 0, result.output
    assert "train-images-idx3-ubyte.gz" in result.output
    summary = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["loop"] == "fit"
    assert summary["data"]["train"]["x_shape"] == [24, 28, 28] and summary["data"]["num_classes"] == 10


def test_bad_file_through_cli_is_exit_2_and_writes_nothing(cli, tmp_path):
    write_cifar_py(tmp_path / "c")
    (tmp_path / "c" / "data_batch_5").write_bytes(b"\x80\x04garbage")
    result = cli("run", CONFIGS / "cifar10_cnn.yaml", "--runs-dir", tmp_path / "runs",
                 "--set", f"data.path={tmp_path / 'c'}")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {tmp_path / 'c' / 'data_batch_5'}: not a readable CIFAR-10")
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_seed_configs_validate(cli):
    for name in ("cifar10_cnn", "fashion_mnist_dense"):
        result = cli("validate", CONFIGS / f"{name}.yaml")
        assert result.exit_code == 0, result.output
