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

Reported: training examples/second after the first compiled call (tftrain's ThroughputCallback
in both), the ratio to the example, and wall time. tftrain preprocesses every epoch (the model
takes raw rows); the text example caches its vectorized texts after the first epoch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import baseline_variant, machine, run_case, tftrain_variant, training_table  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--cases", default="table,text")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = args.cases.split(",")
        if "table" in cases:
            data = write_table(work / "table.csv", args.rows)
            (work / "table.yaml").write_text(yaml.safe_dump(table_config(data)))
            variants = [baseline_variant("Keras FeatureSpace example", "featurespace_table.py",
                                         ["--data", str(data), "--epochs", "2"]),
                        tftrain_variant("tftrain typed columns", work / "table.yaml", [])]
            print(f"\n### table: {args.rows:,} rows\n\n" + training_table(variants, run_case("table", variants,
                                                                                         args.repeats, work)))
        if "text" in cases:
            data = write_texts(work / "texts", args.texts)
            (work / "text.yaml").write_text(yaml.safe_dump(text_config(data)))
            variants = [baseline_variant("Keras text-from-scratch example", "text_from_scratch.py",
                                         ["--data", str(data), "--epochs", "2"]),
                        tftrain_variant("tftrain text_folder", work / "text.yaml", [])]
            print(f"\n### text: {args.texts:,} texts of 180 words\n\n" + training_table(
                variants, run_case("text", variants, args.repeats, work)))


if __name__ == "__main__":
    main()
