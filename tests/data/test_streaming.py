"""Data that streams from disk: TFRecord shards, a TFDS dataset built here, JPEG folders and CSV,
forced onto the streaming path with `data.in_memory_max_mb: 0`, on tiny real files.

- the streamed order is a pure function of (seed, step): a stream started at step s is the tail
  of the one started at 0, every epoch visits every record once, files and records are shuffled;
- streamed and in-memory data are the same examples (image folders: the very same batches);
- a run killed with SIGKILL mid-epoch on TFRecord shards and resumed ends bit-identical, both loops;
- every bad input is one line naming the file (and record), exit 2 before training, and a record
  corrupted after the data was checked ends the run `failed`, naming the file;
- `tftrain convert` writes any dataset as shards that read back as the same examples.
"""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.kit import Child, InProcess, assert_identical, child_env
from tftrain.errors import DataError
from tftrain.spec.loading import validate

SHAPE = (6, 6, 1)  # tiny images: the pipelines, not the pixels, are under test
FEATURES = {"image": {"type": "bytes", "decode": "raw", "shape": list(SHAPE)}, "label": {"type": "int64"}}


def example(features: dict) -> bytes:
    """A tf.train.Example of {name: bytes | list of ints | list of floats}."""
    import tensorflow as tf

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if all(isinstance(v, int) for v in value):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=value))
        return tf.train.Feature(float_list=tf.train.FloatList(value=value))

    return tf.train.Example(features=tf.train.Features(
        feature={k: feature(v) for k, v in features.items()})).SerializeToString()


def write_records(path: Path, records: list[bytes], compress: bool = False) -> Path:
    import tensorflow as tf

    options = tf.io.TFRecordOptions(compression_type="GZIP" if compress else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for record in records:
            writer.write(record)
    return path


def write_shards(folder: Path, sizes=(11, 12, 13, 12), prefix: str = "train", seed: int = 0,
                 compress: bool = False) -> dict[bytes, int]:
    """TFRecord shards of random uint8 images (each unique) and labels 0..4; returns image -> label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    examples = {}
    for i, n in enumerate(sizes):
        records = []
        for _ in range(n):
            x, y = rng.integers(0, 256, SHAPE, dtype=np.uint8).tobytes(), int(rng.integers(0, 5))
            examples[x] = y
            records.append(example({"image": x, "label": [y]}))
        write_records(folder / f"{prefix}-{i:02d}.tfrecord{'.gz' if compress else ''}", records, compress)
    return examples


def tfrecord_config(folder: Path, **data) -> dict:
    return {"seed": 3, "deterministic": True,
            "data": {"dataset": "tfrecord", "path": str(folder / "train-*"), "batch_size": 4, "in_memory_max_mb": 0,
                     "shuffle_buffer": 16, "validation": "none",
                     "options": {"label": "label", "features": FEATURES}, **data},
            "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy"}


def load(raw: dict):
    from tftrain.data import load_data

    config = validate(raw)
    return config, load_data(config, config.seed)


def keys(batch) -> list[bytes]:
    """Each example of a batch by its pixels (unique in these datasets)."""
    x = batch[0].numpy()
    return [row.tobytes() for row in x.reshape(len(x), -1)]


def stream(pipelines, start: int = 0, steps: int | None = None) -> list[list[bytes]]:
    """The training batches from step `start` on (`steps` of them: a worker's stream is endless)."""
    return [keys(batch) for batch in itertools.islice(pipelines.train(start), steps)]


# ---------------------------------------------------------------------------------------------
# The streamed order


@pytest.mark.parametrize("settings", [
    {},  # epochs mode, every epoch reshuffled
    {"validation": 0.25},  # a held-out fraction, the same every epoch
    {"steps": 25},  # steps mode: one stream across epochs
])
def test_streamed_order_is_a_pure_function_of_the_step(tmp_path, settings):
    from tftrain.data.base import StreamedData
    from tftrain.data.pipeline.batches import build_pipelines

    examples = write_shards(tmp_path)
    raw = tfrecord_config(tmp_path)
    steps = settings.pop("steps", None)
    raw["data"].update(settings)
    raw["training"] = {"epochs": 3} if steps is None else {"steps": steps, "log_every": 5}
    config, data = load(raw)
    assert isinstance(data, StreamedData) and data.train_count == 48 and len(data.train.files) == 4
    pipelines = build_pipelines(data, config, config.seed)
    full = stream(pipelines)
    assert len(full) == pipelines.total_steps
    for start in (1, 5, pipelines.steps_per_epoch, pipelines.total_steps - 1):
        assert stream(pipelines, start) == full[start:], start  # a resumed run reads the very same batches
    flat = [k for batch in full for k in batch]
    assert set(flat) <= set(examples)
    for batch in pipelines.train(0):  # windows are decoded, then permuted: each label stays with its image
        assert batch[1].numpy().tolist() == [examples[k] for k in keys(batch)]
    if steps is not None:  # one walk through epoch after epoch, cut into full batches
        assert all(len(batch) == 4 for batch in full) and len(flat) == 4 * steps
        return
    spe, n = pipelines.steps_per_epoch, pipelines.train_examples
    epochs = [[k for batch in full[e * spe:(e + 1) * spe] for k in batch] for e in range(3)]
    for epoch in epochs:
        assert len(epoch) == len(set(epoch)) == n  # each training record once
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch
    in_file_order = list(examples)
    first = epochs[0][:16]
    # Shuffled within windows, not only by file: the first window mixes records of several files.
    assert first != sorted(first, key=in_file_order.index)
    assert len({in_file_order.index(k) // 12 for k in first}) > 1
    if settings:
        held = {k for batch in pipelines.validation for k in keys(batch)}
        assert len(held) == 12 and not held & set(epochs[0]) and held | set(epochs[0]) == set(examples)


def test_unshuffled_stream_reads_the_files_in_order_and_in_memory_holds_the_same(tmp_path):
    from tftrain.data.base import LoadedData
    from tftrain.data.pipeline.batches import build_pipelines

    examples = write_shards(tmp_path, compress=True)  # gzip, found by its bytes
    raw = tfrecord_config(tmp_path, shuffle=False)
    raw["training"] = {"epochs": 1}
    config, data = load(raw)
    assert data.train.compression == "GZIP"
    assert [k for batch in stream(build_pipelines(data, config, 0)) for k in batch] == list(examples)
    raw["data"]["in_memory_max_mb"] = 1  # 48 examples of 40 bytes: small data keeps the in-memory path
    _, memory = load(raw)
    assert isinstance(memory, LoadedData) and memory.x_train.shape == (48, *SHAPE)
    assert [x.tobytes() for x in memory.x_train] == list(examples)
    assert memory.y_train.tolist() == list(examples.values()) and memory.num_classes == 5


def test_each_worker_reads_its_own_files_and_resumes_its_own_stream(tmp_path):
    """multi_worker with at least as many files as workers: worker w reads files w, w+2, ... as
    an endless stream of its own epochs (each step takes batch_size / workers records of it), a
    pure function of (seed, step) too."""
    from tftrain.data.pipeline.batches import build_pipelines

    examples = list(write_shards(tmp_path))
    by_file = [set(examples[a:b]) for a, b in ((0, 11), (11, 23), (23, 36), (36, 48))]
    raw = tfrecord_config(tmp_path)
    raw["training"] = {"epochs": 2}
    config, data = load(raw)
    seen = []
    for worker in (0, 1):
        pipelines = build_pipelines(data, config, config.seed, workers=(worker, 2))
        assert pipelines.file_sharded
        full = stream(pipelines, steps=12)  # global batches of 4, two steps each
        assert stream(pipelines, 6, steps=9) == full[3:]  # step 6: record 12 of this worker's stream
        mine = [k for batch in full for k in batch]
        own = by_file[worker] | by_file[worker + 2]
        assert set(mine) <= own and len(set(mine[:len(own)])) == len(own)  # its first epoch: each record once
        seen.append(set(mine))
    assert not seen[0] & seen[1]
    config, data = load({**tfrecord_config(tmp_path, path=str(tmp_path / "train-00*")), "training": {"epochs": 1}})
    assert not build_pipelines(data, config, 0, workers=(0, 2)).file_sharded  # fewer files than workers: by data


# ---------------------------------------------------------------------------------------------
# Bad TFRecord input: one line naming the file and record, before training


def _records_with(tmp_path: Path, features: dict) -> Path:
    return write_records(tmp_path / "train-0.tfrecord", [example({"image": bytes(36), "label": [1]})] * 3
                         + [example(features)])


@pytest.mark.parametrize("case, message", [
    ("empty glob", r"data.path: .*nothing-\* matches no files; expected TFRecord files"),
    ("missing key", r"train-0.tfrecord: record 3: does not match data.options.features: .*label.*"
                    r"required but could not be found"),
    ("wrong type", r"train-0.tfrecord: record 3: .*label.*Data types don't match.*"
                   r"\(data.options.features.label says int64 of shape \[\]\)"),
    ("wrong shape", r"train-0.tfrecord: record 3: .*label.*\(data.options.features.label says int64"),
    ("raw size", r"train-0.tfrecord: record 3: feature 'image' holds 35 bytes, but decode: raw uint8 of shape "
                 r"\[6, 6, 1\] needs 36"),
    ("corrupt", r"train-0.tfrecord: corrupted record at \d+"),
    ("truncated", r"train-0.tfrecord: truncated record at \d+"),
    ("image shape", r"train-0.tfrecord: record 0: .*not compatible with expected shape"),
])
def test_bad_tfrecord_input_names_the_file_and_record(tmp_path, case, message):
    import io

    from PIL import Image

    raw = tfrecord_config(tmp_path, validation="none")
    if case == "empty glob":
        raw["data"]["path"] = str(tmp_path / "nothing-*")
    elif case == "missing key":
        _records_with(tmp_path, {"image": bytes(36)})
    elif case == "wrong type":
        _records_with(tmp_path, {"image": bytes(36), "label": [1.5]})
    elif case == "wrong shape":
        _records_with(tmp_path, {"image": bytes(36), "label": [1, 2]})
    elif case == "raw size":
        _records_with(tmp_path, {"image": bytes(35), "label": [1]})
    elif case in ("corrupt", "truncated"):
        path = _records_with(tmp_path, {"image": bytes(36), "label": [2]})
        data = bytearray(path.read_bytes())
        if case == "corrupt":
            data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data if case == "corrupt" else data[:-7]))
    else:  # a PNG of 6x6 where the features say 5x5
        png = io.BytesIO()
        Image.fromarray(np.zeros((6, 6), np.uint8)).save(png, format="PNG")
        write_records(tmp_path / "train-0.tfrecord", [example({"image": png.getvalue(), "label": [0]})])
        raw["data"]["options"]["features"] = {**FEATURES, "image": {"type": "bytes", "decode": "png",
                                                                     "shape": [5, 5, 1]}}
    with pytest.raises(DataError, match=message):
        load(raw)


def test_bad_tfrecord_file_through_the_cli_is_exit_2_and_writes_nothing(cli, tmp_path, write_config):
    _records_with(tmp_path, {"image": bytes(36)})
    config = write_config(tfrecord_config(tmp_path))
    result = cli("run", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "train-0.tfrecord: record 3" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_random_draws_need_data_in_memory(tmp_path):
    from tftrain.training.data_checks import check_data

    write_shards(tmp_path)
    raw = tfrecord_config(tmp_path)
    raw["training"] = {"steps": 8, "sampling": "with_replacement"}
    config, data = load(raw)
    with pytest.raises(DataError, match=r"training.sampling: with_replacement .* streams from its files "
                                        r"\(data.in_memory_max_mb: 0\)"):
        check_data(config, data)


# ---------------------------------------------------------------------------------------------
# tftrain convert, and a record corrupted after the data was checked


def test_convert_writes_shards_that_read_back_as_the_same_examples(cli, tmp_path, tiny_mnist, write_config):
    source = write_config({"data": {"dataset": "npz", "path": str(tiny_mnist)}, "loss": "sparse_categorical_crossentropy"},
                          "source.yaml")
    result = cli("convert", source, "--to", "tfrecord", "--shards", "3", "--output", tmp_path / "shards")
    assert result.exit_code == 0, result.output
    block = yaml.safe_load(result.stdout)["data"]
    assert block["dataset"] == "tfrecord" and block["options"]["features"]["input"] == {
        "type": "bytes", "shape": [28, 28], "decode": "raw", "dtype": "uint8"}
    names = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert names == ["test-00000-of-00001.tfrecord", "tftrain-dataset.json", *[f"train-0000{i}-of-00003.tfrecord"
                                                                               for i in range(3)]]
    config, data = load({"data": block, "loss": "sparse_categorical_crossentropy"})
    with np.load(tiny_mnist) as npz:
        for split in ("train", "test"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            order = {row.tobytes(): i for i, row in enumerate(npz[f"x_{split}"])}
            assert sorted(order[row.tobytes()] for row in x) == list(range(len(npz[f"x_{split}"])))
            assert [int(npz[f"y_{split}"][order[row.tobytes()]]) for row in x] == y.tolist()
    again = cli("convert", source, "--to", "tfrecord", "--output", tmp_path / "shards")
    assert again.exit_code == 2 and "exists and is not an empty folder" in again.output


# ---------------------------------------------------------------------------------------------
# Training recipes (issue 16) and evaluate on streamed data


def test_recipes_plan_the_same_on_streamed_and_in_memory_data(tmp_path):
    """Balanced class weights and per-channel statistics of streamed shards (read batch by batch)
    are those of the same records in memory; pipeline augmentation gets the same arguments."""
    from tftrain.training.plan import _recipe

    write_shards(tmp_path)
    raw = tfrecord_config(tmp_path, normalize="per_channel",
                          augmentation=["random_flip", {"random_contrast": {"factor": 0.2}}])
    raw["training"] = {"epochs": 1, "class_weight": "balanced"}
    recipes = {}
    for limit in (0, 1):  # streamed, then in memory (48 records of 40 bytes)
        raw["data"]["in_memory_max_mb"] = limit
        config, data = load(raw)
        assert data.streamed == (limit == 0)
        recipes[limit] = _recipe(config, data)
    (streamed_spec, streamed_weights, streamed_layers), (memory_spec, memory_weights, memory_layers) = recipes.values()
    assert streamed_weights is not None and len(streamed_weights) == 5
    np.testing.assert_allclose(streamed_weights, memory_weights, rtol=1e-12)
    np.testing.assert_allclose(np.array(streamed_spec.normalization), np.array(memory_spec.normalization), rtol=1e-9)
    assert streamed_spec.input_scale is None and streamed_layers == memory_layers
    assert dict(streamed_layers)["RandomContrast"]["value_range"] == [0, 255]  # uint8 pixels


def test_streamed_floats_need_a_value_range_for_contrast(tmp_path):
    from tftrain.data.pipeline.augmentation import layer_arguments

    pixels = np.random.default_rng(0).random((8, *SHAPE), dtype=np.float32)
    write_records(tmp_path / "train-0.tfrecord", [example({"image": x.tobytes(), "label": [i % 2]})
                                                  for i, x in enumerate(pixels)])
    raw = tfrecord_config(tmp_path, augmentation=[{"random_contrast": {"factor": 0.2}}])
    raw["data"]["options"]["features"] = {**FEATURES, "image": {**FEATURES["image"], "dtype": "float32"}}
    config, data = load(raw)
    assert data.input_dtype == "float32"

    with pytest.raises(DataError, match=r"data.augmentation.0.random_contrast: the float32 inputs of tfrecord "
                                        r"stream from disk, .*give value_range"):
        layer_arguments(config, data)


def test_a_run_on_streamed_shards_with_recipes_trains_and_evaluates(cli, tmp_path, write_config):
    """Augmentation and class weights on streamed batches, then evaluate (with --mistakes, whose
    images are picked from the streamed split) on the held-out records."""
    write_shards(tmp_path / "data")
    raw = tfrecord_config(tmp_path / "data", validation=0.25, augmentation=["random_flip"])
    raw["training"] = {"epochs": 1, "class_weight": "balanced"}
    raw["metrics"] = ["accuracy"]
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    evaluated = cli("evaluate", run, "--mistakes", "3", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((run / "eval.json").read_text())
    assert report["split"] == "validation (0.25 of train)" and report["examples"] == 12
    assert report["mistakes"]["shown"] == min(3, report["mistakes"]["misclassified"])
    if report["mistakes"]["shown"]:
        assert (run / report["mistakes"]["plot"]).is_file()


def test_record_corrupted_after_the_check_fails_the_run_naming_the_file(cli, tmp_path, tiny_mnist, write_config):
    source = write_config({"data": {"dataset": "npz", "path": str(tiny_mnist)}, "loss": "sparse_categorical_crossentropy"},
                          "source.yaml")
    assert cli("convert", source, "--to", "tfrecord", "--shards", "2", "--output", tmp_path / "shards").exit_code == 0
    shard = tmp_path / "shards" / "train-00001-of-00002.tfrecord"
    data = bytearray(shard.read_bytes())
    # A byte of the first record's data (not a length field, which is always walked before reading):
    # same size, so tftrain-dataset.json still vouches for it and no pass reads the data.
    data[12 + 100] ^= 0xFF
    shard.write_bytes(bytes(data))
    for loop in ("fit", "custom"):
        config = write_config({"data": {"dataset": "tfrecord", "path": str(tmp_path / "shards" / "train-*"),
                                        "in_memory_max_mb": 0, "batch_size": 8, "validation": "none",
                                        "options": {"label": "label", "features": {
                                            "input": {"type": "bytes", "decode": "raw", "shape": [28, 28]},
                                            "label": {"type": "int64"}}}},
                               "loss": "sparse_categorical_crossentropy", "training": {"loop": loop, "epochs": 2}},
                              f"{loop}.yaml")
        result = cli("run", config, "--runs-dir", tmp_path / loop)
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"{shard}: corrupted record at" in errors[0], result.output
        assert "Traceback" not in result.output
        run = next((tmp_path / loop).iterdir())
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed" and str(shard) in summary["error"]


# ---------------------------------------------------------------------------------------------
# TFDS: a dataset built here by a small builder


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> Path:
    """A tiny TFDS dataset (8x8x1 images, classes cat/dog/bird; 30 train, 9 test) prepared as
    tfrecord files by its own GeneratorBasedBuilder, as `tfds build` would."""
    import tensorflow_datasets as tfds

    class TftrainTiny(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, supervised_keys=("image", "label"), features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=["cat", "dog", "bird"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(30, 0), "test": self._generate_examples(9, 1)}

        def _generate_examples(self, n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
                yield i, {"image": rng.integers(0, 255, (8, 8, 1), dtype=np.uint8), "label": i % 3}

    folder = tmp_path_factory.mktemp("tfds")
    tfds.disable_progress_bar()
    TftrainTiny(data_dir=str(folder), file_format="tfrecord").download_and_prepare()
    return folder


def tfds_config(folder: Path, **options) -> dict:
    return {"seed": 0, "data": {"dataset": "tfds", "batch_size": 4, "in_memory_max_mb": 0,
                                "options": {"name": "tftrain_tiny", "data_dir": str(folder), **options}},
            "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy"}


def test_tfds_dataset_streams_and_loads_the_same_examples(tfds_dir):
    import tensorflow_datasets as tfds

    from tftrain.data.base import LoadedData, StreamedData
    from tftrain.data.pipeline.batches import build_pipelines, evaluation_batches

    config, data = load(tfds_config(tfds_dir))
    assert isinstance(data, StreamedData)
    assert (data.train_count, data.test_count, data.num_classes, data.class_names) == (30, 9, 3, ("cat", "dog", "bird"))
    assert data.input_shape == (8, 8, 1) and data.input_dtype == "uint8"
    pipelines = build_pipelines(data, config, 0)
    epoch = {k for batch in pipelines.train(0).take(pipelines.steps_per_epoch) for k in keys(batch)}
    expected = tfds.load("tftrain_tiny", data_dir=str(tfds_dir), split="train", as_supervised=True, download=False)
    truth = {x.numpy().tobytes(): int(y) for x, y in expected}
    assert epoch == set(truth)
    test = evaluation_batches(data, config, 0)
    assert test.name == "test" and test.examples == 9
    _, memory = load({**tfds_config(tfds_dir), "data": {**tfds_config(tfds_dir)["data"], "in_memory_max_mb": 10}})
    assert isinstance(memory, LoadedData)
    assert {x.tobytes(): int(y) for x, y in zip(memory.x_train, memory.y_train)} == truth
    sliced_config = tfds_config(tfds_dir, split_train="train[:10]+test[50%:]", split_test=None)
    sliced_config["data"]["validation"] = "none"  # no test split to validate on (validate says so otherwise)
    _, sliced = load(sliced_config)
    assert sliced.train_count == 15 and sliced.test is None


@pytest.mark.parametrize("options, message", [
    ({"name": "tftrain_tinny"}, r"data.options.name: unknown tfds dataset \"tftrain_tinny\" — did you mean "
                                r"'tftrain_tiny'"),
    ({"name": "mnsit"}, r"unknown tfds dataset \"mnsit\" — did you mean 'mnist'"),
    ({"name": "mnist"}, r"data.options.name: tfds mnist is not prepared in .* \(data.options.download: false\); "
                        r"where there is network, run `tfds build mnist --data_dir .*`"),
    ({"split_test": "validation"}, r"data.options.split_test: Unknown split 'validation'. Should be one of "
                                   r"\['train', 'test'\]"),
    ({"label": "labels"}, r"data.options.label: tfds tftrain_tiny has no feature 'labels' — did you mean 'label'"),
])
def test_tfds_bad_input(tfds_dir, tmp_path, options, message):
    folder = tmp_path / "empty" if options.get("name") == "mnist" else tfds_dir
    folder.mkdir(exist_ok=True)
    with pytest.raises(DataError, match=message):
        load(tfds_config(folder, **options))


# ---------------------------------------------------------------------------------------------
# Image folders and CSV files


def write_jpegs(root: Path, per_class: int = 5, size=(8, 8), classes=("cat", "dog")) -> None:
    from PIL import Image

    rng = np.random.default_rng(5)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.jpg", quality=90)


def folder_config(root: Path, **options) -> dict:
    return {"seed": 1, "data": {"dataset": "image_folder", "path": str(root / "train"), "batch_size": 3,
                                "in_memory_max_mb": 0, "options": {"test_path": str(root / "test"), **options}},
            "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
            "training": {"epochs": 2}}


@pytest.mark.parametrize("options", [{}, {"image_size": [5, 7], "crop_to_aspect_ratio": True}])
def test_streamed_image_folder_gives_the_very_batches_of_the_in_memory_one(tmp_path, options):
    from tftrain.data.base import FileList, LoadedData
    from tftrain.data.pipeline.batches import build_pipelines

    write_jpegs(tmp_path / "train")
    write_jpegs(tmp_path / "test", per_class=2)
    raw = folder_config(tmp_path, **options)
    config, streamed = load(raw)
    assert isinstance(streamed.train, FileList) and streamed.input_shape == (*(options.get("image_size") or (8, 8)), 3)
    raw["data"]["in_memory_max_mb"] = 10
    _, memory = load(raw)
    assert isinstance(memory, LoadedData)
    for a, b in zip(build_pipelines(streamed, config, 1).train(0), build_pipelines(memory, config, 1).train(0)):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    described = streamed.describe()
    assert described["train"]["x_shape"] == [10, *streamed.input_shape]
    assert described["streamed"]["files"]["train"]["count"] == 10


def test_image_folder_bad_input(tmp_path):
    from PIL import Image

    write_jpegs(tmp_path / "train")
    write_jpegs(tmp_path / "test", per_class=1)
    (tmp_path / "train" / "dog" / "notes.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"train/dog/notes.jpg: not a readable image .*; expected .bmp"):
        load(folder_config(tmp_path))
    (tmp_path / "train" / "dog" / "notes.jpg").unlink()
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "train" / "dog" / "tall.png")
    with pytest.raises(DataError, match=r"train: images of different sizes \(.*0.jpg is 8x8, .*tall.png is 8x9, "
                                        r"width x height\): set data.options.image_size"):
        load(folder_config(tmp_path))
    assert load(folder_config(tmp_path, image_size=[8, 8]))[1].train_count == 11


def test_streamed_csv_reads_what_the_in_memory_path_reads(tmp_path):
    from tftrain.data.base import StreamedData
    from tftrain.data.pipeline.batches import evaluation_batches

    rng = np.random.default_rng(2)
    for name, n in (("train.csv", 40), ("test.csv", 7)):
        rows = ["a,b,species"] + [f"{rng.normal():.4f},{rng.normal():.4f},{rng.choice(['setosa', 'virginica'])}"
                                  for _ in range(n)]
        rows.insert(3, "")  # a blank line, skipped by both paths
        (tmp_path / name).write_text("\r\n".join(rows) + "\r\n")
    raw = {"data": {"dataset": "csv", "path": str(tmp_path / "train.csv"), "in_memory_max_mb": 0, "batch_size": 5,
                    "options": {"label": "species", "test_path": str(tmp_path / "test.csv")}},
           "loss": "sparse_categorical_crossentropy"}
    config, streamed = load(raw)
    assert isinstance(streamed, StreamedData) and (streamed.train_count, streamed.test_count) == (40, 7)
    raw["data"]["in_memory_max_mb"] = 10
    _, memory = load(raw)
    assert streamed.class_names == memory.class_names == ("setosa", "virginica")
    batches = list(evaluation_batches(streamed, config, 0).batches)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), memory.x_test)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), memory.y_test)
    (tmp_path / "test.csv").write_text("a,b,species\n1,2,setosa\n1,x,setosa\n")
    with pytest.raises(DataError, match=r"test.csv: line 3, column 'b': 'x'; every feature column"):
        load({**raw, "data": {**raw["data"], "in_memory_max_mb": 0}})


# ---------------------------------------------------------------------------------------------
# Training on streamed shards: killed with SIGKILL mid-epoch, resumed bit-identical


STEPS_PER_EPOCH = 9  # 48 records, a quarter held out: 36, batch 4
KILL_AT = 14  # mid-epoch 2 (its 6th step); the newest checkpoint is its step 4 (every_steps: 4 counts in the epoch)


def _kill_config(folder: Path, loop: str) -> dict:
    raw = tfrecord_config(folder / "data", validation=0.25)
    raw.update(name=f"shards-{loop}", seed=11, optimizer={"name": "adam", "learning_rate": 0.01},
               metrics=["accuracy"], training={"loop": loop, "epochs": 3, "checkpoint": {"every_steps": 4},
                         "steps_per_execution": 1})  # killed after a chosen step: one step per call
    raw["model"]["dropout"] = 0.5  # the RNG state matters too, not only the weights and the data order
    return raw


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A paced process per loop SIGKILLed at step KILL_AT, the uninterrupted runs trained here
    meanwhile, then the killed ones resumed."""
    root = tmp_path_factory.mktemp("shards")
    write_shards(root / "data")
    env = child_env(root)
    for loop in ("fit", "custom"):
        (root / f"{loop}.yaml").write_text(yaml.safe_dump(_kill_config(root, loop)))
    children = {loop: Child(["run", "--runs-dir", "runs", f"{loop}.yaml"], root, env, True, KILL_AT, signal.SIGKILL)
                for loop in ("fit", "custom")}
    base = {loop: InProcess(["run", "--runs-dir", "base", f"{loop}.yaml"], root) for loop in ("fit", "custom")}
    codes = {loop: child.wait() for loop, child in children.items()}
    dirs = {loop: child.run_dir(root) for loop, child in children.items()}
    resumed = {loop: InProcess(["run", "--resume", dirs[loop]], root) for loop in dirs}
    return {"root": root, "children": children, "codes": codes, "base": base, "dirs": dirs, "resumed": resumed}


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_sigkill_mid_epoch_on_shards_then_resume_is_bit_identical(killed, loop):
    assert killed["base"][loop].exit_code == 0, killed["base"][loop]
    assert killed["codes"][loop] == -9, killed["children"][loop]
    resumed = killed["resumed"][loop]
    assert resumed.exit_code == 0, resumed
    assert "resuming from epoch 2, step 4" in resumed.output, resumed.output  # every_steps counts in the epoch: step 13
    run, base = killed["dirs"][loop], killed["base"][loop].run_dir(killed["root"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["data"]["streamed"]["files"]["train"]["count"] == 4
    assert summary["data"]["train"]["x_shape"] == [48, *SHAPE]
    assert_identical(run, base)


def test_both_loops_train_the_same_model_on_streamed_shards(killed):
    import keras

    fit, custom = (keras.saving.load_model(killed["base"][loop].run_dir(killed["root"]) / "model.keras", compile=False)
                   for loop in ("fit", "custom"))
    for a, b in zip(fit.get_weights(), custom.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
