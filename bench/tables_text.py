"""Typed tables and text (issue 28): tftrain against the Keras examples, side by side.

    nice python bench/tables_text.py [--repeats 2] [--rows 20000] [--texts 2000]

Cases (each variant its own process, alternating rounds: bench/compare.py's helpers):

  table  a generated table (three string categories, an integer category, four numbers, a
         binary target; no blanks, which FeatureSpace's float_normalized cannot take):
         bench/baselines/featurespace_table.py (the "Structured data classification with
         FeatureSpace" example: preprocessing in tf.data) against `tftrain run` with typed
         `columns` (the same encodings and cross, preprocessing inside the model, from raw text
         cells), both Dense(32) -> Dropout(0.5) -> Dense(1, sigmoid), batch 32, 2 epochs.
  text   a generated two-class folder of .txt files: bench/baselines/text_from_scratch.py (the
         "Text classification from scratch" example: TextVectorization mapped in tf.data, then
         `.cache()`) against `tftrain run` on text_folder (TextVectorization inside the model),
         the example's CNN, batch 32, 2 epochs.

Beside them, in the same rounds: the same tftrain run with the data streamed
(`data.in_memory_max_mb: 0`: the table's lines, the folder's files read while training), and
tftrain with the same model on the features pre-encoded once (an .npz of what the model's
preprocessing layers give): the training cost without preprocessing. The three tftrain variants
use one intra-op thread per core (`training.cpu_threads`), so they differ in their input only
(`auto` picks one thread for the small pre-encoded model, and TensorFlow's default for a model
of raw rows, whose multiply-adds it does not count).

Reported: training examples/second after the first compiled call (tftrain's ThroughputCallback
in every variant) and CPU time per example, the ratio to the example, and wall time. tftrain
preprocesses every epoch (the model takes raw rows); the text example caches its vectorized
texts after the first epoch. Then the preprocessing cost: reading and checking the data and
fitting its statistics and vocabularies once (wall and CPU seconds, in memory and streamed),
encoding every row once, and per epoch the CPU time per example of raw rows minus that of the
pre-encoded features (the share of a step the preprocessing layers take).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (  # noqa: E402 (bench/ is not a package)
    _num,
    baseline_variant,
    machine,
    markdown_table,
    median,
    ratio_notes,
    run_case,
    tftrain_variant,
    training_table,
)

WORDS = [f"w{i}" for i in range(3000)]


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    city = rng.choice(["north", "south", "east", "west", "centre"], rows)
    job = rng.choice([f"job{i}" for i in range(12)], rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    rooms = rng.integers(1, 6, rows)
    age, income, score, hours = rng.normal(40, 12, rows), rng.normal(50, 15, rows), rng.normal(0, 1, rows), rng.normal(38, 6, rows)
    logit = 0.05 * (age - 40) + 0.04 * (income - 50) + score + (plan == "pro") - (city == "west") * 0.8
    target = (logit + rng.normal(0, 0.5, rows) > 0).astype(int)
    lines = [f"{city[i]},{job[i]},{plan[i]},{rooms[i]},{age[i]:.1f},{income[i]:.2f},{score[i]:.3f},{hours[i]:.1f},"
             f"{target[i]}" for i in range(rows)]
    path.write_text("city,job,plan,rooms,age,income,score,hours,target\n" + "\n".join(lines) + "\n")
    return path


def write_texts(root: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label in ("neg", "pos"):
        (root / label).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = i % 2
        words = rng.choice(WORDS, 180)
        words[rng.integers(0, 180, 4)] = ["awful", "good"][label]
        (root / ["neg", "pos"][label] / f"{i:05d}.txt").write_text(" ".join(words))
    return root


def table_config(data: Path) -> dict:
    return {"name": "table", "data": {"dataset": "csv", "path": str(data), "batch_size": 32, "validation": "none",
                                      "shuffle": False,
                                      "options": {"label": "target", "columns": {
                                          "city": "category", "job": "category", "plan": "category",
                                          "rooms": "category", "age": "numeric", "income": "numeric",
                                          "score": "numeric", "hours": "numeric"},
                                          "crosses": [{"columns": ["city", "plan"], "bins": 32}]}},
            "model": {"type": "dense", "hidden": [32], "dropout": 0.5, "output_activation": "sigmoid"},
            "loss": "binary_crossentropy", "optimizer": {"name": "adam", "learning_rate": 0.001},
            "metrics": ["accuracy"], "training": {"epochs": 2}}


def text_config(data: Path) -> dict:
    return {"name": "text", "data": {"dataset": "text_folder", "path": str(data), "batch_size": 32,
                                     "validation": "none",
                                     "options": {"max_tokens": 20000, "output_mode": "int", "sequence_length": 500}},
            "model": {"type": "sequential", "layers": [
                {"embedding": {"input_dim": 20000, "output_dim": 128}}, {"dropout": 0.5},
                {"conv1d": {"filters": 128, "kernel_size": 7, "strides": 3, "activation": "relu"}},
                {"conv1d": {"filters": 128, "kernel_size": 7, "strides": 3, "activation": "relu"}},
                "global_max_pooling1d", {"dense": {"units": 128, "activation": "relu"}}, {"dropout": 0.5},
                {"dense": {"units": 1, "activation": "sigmoid"}}]},
            "loss": "binary_crossentropy", "optimizer": {"name": "adam", "learning_rate": 0.001},
            "metrics": ["accuracy"], "training": {"epochs": 2}}


def _timed(compute) -> tuple:
    """(compute()'s value, {"wall": seconds, "cpu": this process's CPU seconds})."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = compute()
    return value, {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def encode(config_path: Path, npz: Path, result: Path) -> None:
    """(A child process: TensorFlow stays out of the bench's own.) Read and check the data and fit
    its preprocessing once in memory and once streamed, encode every training row once with the
    fitted layers, and write the features (`npz`) and the timings (`result`)."""
    import keras
    import numpy
    import tensorflow as tf

    from tftrain.data import load_data
    from tftrain.data.tables.fit import fitted_table
    from tftrain.data.tables.preprocessing import encode as encoded_features
    from tftrain.spec.loading import load_config

    timings, fitted = {}, {}
    for name, sets in (("warm-up", ["data.limit=64"]), ("streamed", ["data.in_memory_max_mb=0"]), ("memory", [])):
        config = load_config(config_path, sets)  # (the warm-up: TensorFlow's first ops and traces, not timed)
        data, timings[f"{name}_read"] = _timed(lambda: load_data(config, config.seed))
        fitted[name], timings[f"{name}_fit"] = _timed(lambda: fitted_table(config, data))
    assert fitted["memory"].columns[0].vocabulary == fitted["streamed"].columns[0].vocabulary
    rows = keras.Input(shape=data.input_shape, dtype="string")
    encoder = keras.Model(rows, encoded_features(fitted["memory"], rows))
    rows = tf.data.Dataset.from_tensor_slices(data.x_train.astype(str)).batch(1024)
    x, timings["encode"] = _timed(lambda: encoder.predict(rows, verbose=0))
    numpy.savez(npz, x_train=x, y_train=data.y_train)
    result.write_text(json.dumps({"rows": len(x), **timings}))


def pre_encoded_config(config: dict, npz: Path) -> dict:
    """The same run on the pre-encoded features."""
    data = {key: config["data"][key] for key in ("batch_size", "validation", "shuffle") if key in config["data"]}
    return {**config, "name": f"{config['name']}-encoded", "data": {"dataset": "npz", "path": str(npz), **data}}


def variants_of(case: str, config: dict, work: Path, baseline) -> tuple[list, dict]:
    """The case's four variants and its preprocessing timings (an encoding child process)."""
    path, encoded = work / f"{case}.yaml", work / f"{case}-encoded.npz"
    path.write_text(yaml.safe_dump(config))
    timings = work / f"{case}-timings.json"
    subprocess.run([sys.executable, __file__, "--encode", str(path), str(encoded), str(timings)], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    (work / f"{case}-encoded.yaml").write_text(yaml.safe_dump(pre_encoded_config(config, encoded)))
    label = "typed columns" if case == "table" else "text_folder"
    threads = f"training.cpu_threads={os.cpu_count()}"  # alike in the three: `auto` would tell them apart
    return [baseline, tftrain_variant(f"tftrain {label}", path, [threads]),
            tftrain_variant(f"tftrain {label}, streamed", path, [threads, "data.in_memory_max_mb=0"]),
            tftrain_variant("tftrain, pre-encoded features", work / f"{case}-encoded.yaml", [threads])], \
        json.loads(timings.read_text())


def preprocessing_table(case: str, timings: dict, results: dict, names: list[str]) -> str:
    """Fit once (in memory, streamed), encode once, and per epoch: raw rows' CPU per example
    against the pre-encoded features'."""
    rows = timings["rows"]
    raw = {name: median(results[name], "cpu_us_per_example") for name in names[1:]}
    encoded = raw.pop(names[3])
    lines = []
    for name, cpu in raw.items():
        mode = "streamed" if "streamed" in name else "memory"
        read, fit = timings[f"{mode}_read"], timings[f"{mode}_fit"]
        per_epoch = cpu - encoded if cpu and encoded else None
        lines.append([f"{case}: {name}", f"{read['wall']:.2f} / {read['cpu']:.2f}",
                      f"{fit['wall']:.2f} / {fit['cpu']:.2f}",
                      _num(timings["encode"]["cpu"] * 1e6 / rows, 1), _num(cpu, 1), _num(encoded, 1),
                      _num(per_epoch, 1), f"{per_epoch / cpu:.0%}" if per_epoch is not None else "-"])
    streamed = f"- streamed against in memory: {ratio_notes(results, names[2], names[1])}"
    return markdown_table(["case", "read + check once, s (wall / CPU)", "fit once, s (wall / CPU)",
                           "encode once, CPU us/row", "per epoch: raw rows CPU us/ex", "pre-encoded CPU us/ex",
                           "preprocessing CPU us/ex", "share of a step"], lines) + "\n\n" + streamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--cases", default="table,text")
    parser.add_argument("--encode", nargs=3, type=Path, metavar=("CONFIG", "NPZ", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.encode:
        return encode(*args.encode)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = args.cases.split(",")
        if "table" in cases:
            data = write_table(work / "table.csv", args.rows)
            baseline = baseline_variant("Keras FeatureSpace example", "featurespace_table.py",
                                        ["--data", str(data), "--epochs", "2"])
            variants, timings = variants_of("table", table_config(data), work, baseline)
            results = run_case("table", variants, args.repeats, work)
            print(f"\n### table: {args.rows:,} rows\n\n" + training_table(variants, results) + "\n\n"
                  + preprocessing_table("table", timings, results, [v.name for v in variants]))
        if "text" in cases:
            data = write_texts(work / "texts", args.texts)
            baseline = baseline_variant("Keras text-from-scratch example", "text_from_scratch.py",
                                        ["--data", str(data), "--epochs", "2"])
            variants, timings = variants_of("text", text_config(data), work, baseline)
            results = run_case("text", variants, args.repeats, work)
            print(f"\n### text: {args.texts:,} texts of 180 words\n\n" + training_table(variants, results) + "\n\n"
                  + preprocessing_table("text", timings, results, [v.name for v in variants]))


if __name__ == "__main__":
    main()
