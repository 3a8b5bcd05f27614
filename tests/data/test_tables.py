"""Tables with typed columns (issue 28): csv with `options.columns` and jsonl.

- penguins species (palmerpenguins' CSV: categories, numbers, "NA" cells) trains in both loops
  to >= 0.95 validation accuracy and at least a scikit-learn baseline on the very same split;
- the model takes raw rows: `tftrain predict RUN rows.csv` (blanks, NA, an unseen island) and
  the exported SavedModel, loaded in another process, give the same answers;
- kill -9 mid-epoch and resume: bit-identical, both loops, for a table with categories,
  missing numbers, a hashed column, a text column and a cross;
- bad input: one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from tests.kit import (
    EPOCHS,
    MID_EPOCH_KILLS,
    STEPS_PER_EPOCH,
    Child,
    InProcess,
    assert_identical,
    child_env,
    run_refused,
)

palmerpenguins = pytest.importorskip("palmerpenguins")
PENGUINS = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))


def penguins_config(loop: str = "fit", **data) -> dict:
    return {
        "name": f"penguins-{loop}", "seed": 0, "deterministic": True,
        "data": {"dataset": "csv", "path": str(PENGUINS), "batch_size": 32, "validation": 0.2, **data,
                 "options": {"label": "species", "columns": {
                     "island": "category", "bill_length_mm": "numeric", "bill_depth_mm": "numeric",
                     "flipper_length_mm": "numeric", "body_mass_g": "numeric",
                     "sex": {"type": "category", "embedding": 2}},
                     "crosses": [{"columns": ["island", "sex"], "bins": 16}]}},
        "model": {"type": "dense", "hidden": [32]},
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": 0.003}, "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": 25},
    }


def sklearn_baseline(config_path: Path) -> float:
    """Logistic regression (mean imputation, scaling, one-hot) on the run's own training split,
    scored on its validation split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import split_for_training
    from tftrain.data.tables.preprocessing import numbers_or_nan
    from tftrain.spec.loading import load_config

    config = load_config(config_path)
    data = load_data(config, config.seed)
    train, validation = split_for_training(data, config, config.seed)
    kinds = [data.extra["columns"][name] for name in data.extra["features"]]
    numeric = [i for i, kind in enumerate(kinds) if kind == "numeric"]
    other = [i for i, kind in enumerate(kinds) if kind != "numeric"]
    missing = tuple(config.data.options["missing"])

    def columns(x):
        return np.column_stack([numbers_or_nan(x[:, numeric], missing), x[:, other].astype(str)]).astype(object)

    k = len(numeric)
    features = ColumnTransformer([("numbers", make_pipeline(SimpleImputer(), StandardScaler()), list(range(k))),
                                  ("categories", OneHotEncoder(handle_unknown="ignore"), list(range(k, len(kinds))))])
    model = make_pipeline(features, LogisticRegression(max_iter=2000)).fit(columns(train.x), train.y)
    return float(model.score(columns(validation.x), validation.y))


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_penguins_species_reach_095_and_the_sklearn_baseline_in_both_loops(cli, write_config, tmp_path, loop):
    config = write_config(penguins_config(loop))
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    summary = json.loads((run / "summary.json").read_text())
    accuracy = summary["final"]["val_accuracy"]
    baseline = sklearn_baseline(config)
    assert accuracy >= 0.95 and accuracy >= baseline, (accuracy, baseline)
    assert summary["data"]["class_names"] == ["Adelie", "Chinstrap", "Gentoo"]
    prep = summary["data"]["preprocessing"]
    assert prep["columns"]["island"] == {"type": "category", "vocabulary": 3}
    # statistics of the training split only (275 of 344 rows), missing cells left out
    assert prep["columns"]["body_mass_g"]["mean"] != pytest.approx(4201.754385964912)


ROWS = ("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
        "Biscoe,48.6,16,230,5800,male\n"
        "Dream,46.5,17.9,192,3500,\n"          # a blank category
        "Torgersen,NA,NA,NA,NA,NA\n"            # every number missing
        "Mars,39,18,190, 3700 ,female\n")      # an island never seen, padded cells


def test_predict_and_the_saved_model_in_another_process_take_raw_rows_alike(cli, write_config, tmp_path):
    config = penguins_config()
    config["training"]["epochs"] = 3
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = result.output.strip().splitlines()[-1]
    (tmp_path / "rows.csv").write_text(ROWS)
    predicted = cli("predict", run, tmp_path / "rows.csv", "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert len(rows) == 4 and {r["label"] for r in rows} <= {"Adelie", "Chinstrap", "Gentoo"}
    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    assert "inputs (None, 6) string" in exported.output
    # The SavedModel takes a row's cells in the model's column order (summary.json's data.features).
    features = json.loads((Path(run) / "summary.json").read_text())["data"]["features"]
    serve = ("import sys, json, tensorflow as tf\n"
             "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
             "header, *lines = [line.split(',') for line in open(sys.argv[2]).read().splitlines()]\n"
             f"rows = [[line[header.index(name)] for name in {features!r}] for line in lines]\n"
             "out = f(inputs=tf.constant(rows))\n"
             "print(json.dumps({'class': out['class'].numpy().tolist(),"
             " 'p': out['probabilities'].numpy().max(axis=1).tolist()}))\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}  # no tftrain on the path: the SavedModel alone
    env.pop("PYTHONPATH", None)
    served = subprocess.run([sys.executable, "-c", serve, str(Path(run) / "export" / "saved_model"),
                             str(tmp_path / "rows.csv")], capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
                            timeout=300)
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["class"] == [r["class"] for r in rows]
    assert answer["p"] == pytest.approx([r["probability"] for r in rows], rel=1e-5)
    refused = cli("export", run, "--format", "tflite")
    assert refused.exit_code == 2 and "input 'inputs' is rows of text cells" in refused.output, refused.output


def write_mixed_table(path: Path, n: int = 48) -> None:
    """n rows: a category, numbers with blanks, a hashed id, a short text; the label follows them."""
    rng = np.random.default_rng(5)
    colors, words = ["red", "green", "blue"], ["good", "bad", "fine", "poor", "great", "awful"]
    lines = ["color,size,weight,zip,note,label"]
    for i in range(n):
        color, size = colors[i % 3], rng.normal(10, 3)
        weight = "" if i % 7 == 0 else f"{rng.normal(50, 10):.2f}"
        note = " ".join(rng.choice(words, 3))
        label = int((size > 10) ^ (color == "red"))
        lines.append(f"{color},{size:.3f},{weight},{rng.integers(10000, 99999)},{note},{label}")
    path.write_text("\n".join(lines) + "\n")


def mixed_config(data: Path, loop: str) -> dict:
    return {
        "name": f"table-{loop}", "seed": 7, "deterministic": True,
        "data": {"dataset": "csv", "path": str(data), "batch_size": 4, "validation": 0.25,
                 "options": {"label": "label", "columns": {
                     "color": {"type": "category", "embedding": 3}, "size": "numeric", "weight": "numeric",
                     "zip": {"type": "hashed", "bins": 8}, "note": {"type": "text", "max_tokens": 16}},
                     "crosses": [{"columns": ["color", "zip"], "bins": 8}]}},
        "model": {"type": "dense", "hidden": [8], "dropout": 0.5},  # dropout: the RNG state resumes too
        "loss": "sparse_categorical_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": EPOCHS, "checkpoint": {"every_steps": 4},
                     "steps_per_execution": 1},  # killed after a chosen step: one step per call
    }


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_typed_table_sigkilled_mid_epoch_resumes_bit_identical(tmp_path, loop):
    at = _RNG.choice(MID_EPOCH_KILLS)
    write_mixed_table(tmp_path / "table.csv")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(mixed_config(tmp_path / "table.csv", loop)))
    env = child_env(tmp_path)
    killed = Child(["run", "--runs-dir", "runs", "c.yaml"], tmp_path, env, paced=True, at=at, signal=signal.SIGKILL)
    base = InProcess(["run", "--runs-dir", "base", "c.yaml"], tmp_path)
    assert killed.wait() == -9, killed
    assert base.exit_code == 0, base
    assert STEPS_PER_EPOCH == 9  # 36 training rows in batches of 4, as the kit's kill steps assume
    run = killed.run_dir(tmp_path)
    resumed = InProcess(["run", "--resume", run], tmp_path)
    assert resumed.exit_code == 0, resumed
    assert any(line.startswith("resuming from epoch ") and not line.endswith(", step 0") for line in resumed.lines)
    assert_identical(run, base.run_dir(tmp_path))


def test_a_resume_on_changed_data_stops_instead_of_refitting_differently(tmp_path):
    write_mixed_table(tmp_path / "table.csv")
    config = mixed_config(tmp_path / "table.csv", "fit")
    config["training"]["epochs"] = 1
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    first = InProcess(["run", "--runs-dir", "runs", "c.yaml"], tmp_path)
    assert first.exit_code == 0, first
    run = first.run_dir(tmp_path)
    write_mixed_table(tmp_path / "table.csv", n=60)  # other rows: other statistics and vocabularies
    again = InProcess(["run", "--resume", run, "--set", "training.epochs=2"], tmp_path)
    assert again.exit_code == 2, again
    assert "differ from those the run trained with" in again.output


def test_jsonl_with_typed_columns_trains_and_predicts(cli, write_config, tmp_path):
    rng = np.random.default_rng(3)
    records = []
    for i in range(60):
        x = float(rng.normal())
        records.append({"x": None if i % 9 == 0 else x, "kind": ["a", "b"][i % 2], "y": "up" if x > 0 else "down"})
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {"seed": 1, "data": {"dataset": "jsonl", "path": str(tmp_path / "t.jsonl"), "batch_size": 8,
                                  "validation": 0.2, "options": {"label": "y", "columns": {"x": "numeric",
                                                                                           "kind": "category"}}},
              "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
              "optimizer": {"name": "adam", "learning_rate": 0.05}, "metrics": ["accuracy"],
              "training": {"epochs": 15}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    assert json.loads((run / "summary.json").read_text())["final"]["val_accuracy"] >= 0.8
    (tmp_path / "new.jsonl").write_text('{"x": 2.5, "kind": "a"}\n{"kind": "b", "x": -2}\n')
    predicted = cli("predict", run, tmp_path / "new.jsonl", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert [r["label"] for r in json.loads(predicted.stdout)["predictions"]] == ["up", "down"]



def _table(tmp_path: Path, text: str, columns: dict, name: str = "t.csv", **options) -> dict:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1") if isinstance(text, str) else text)
    return {"data": {"dataset": "csv", "path": str(path), "validation": "none",
                     "options": {"label": "y", "columns": columns, **options}},
            "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy", "training": {"epochs": 1}}


BAD = [
    ("a,b,y\n1,x,0\n2,z,1\n", {"aa": "numeric"}, {},
     "data.options.columns.aa: column 'aa' is not in {path} — did you mean 'a'? (columns: a, b, y)"),
    ("a,b,y\n1,x,0\n2.5,z,1\nseven,x,0\n", {"a": "numeric", "b": "category"}, {},
     "{path}: line 4, column 'a': 'seven' is not a number"),
    ("a,b,y\n1,x,0\n2,z,1\n3,w,0\n", {"a": "numeric", "b": {"type": "category", "max_values": 2}}, {},
     "data.options.columns.b: 3 distinct values in the training split, more than max_values 2; use type: hashed"),
    ("a,b,y\n1,caf\xe9,0\n2,z,1\n", {"a": "numeric", "b": "category"}, {},
     "{path}: byte 11 (b'\\xe9') is not utf-8-sig text; set data.options.encoding"),
    ("a,b,y\n1,x,0\n", {"a": "numeric", "b": "category"}, {"crosses": [{"columns": ["a", "b"]}]},
     "data.options.crosses.0.columns: 'a' is a numeric column; crosses join category or hashed columns"),
    ("a,b,y\n1,x,0\n", {"a": "numeric", "b": "category"}, {"crosses": [{"columns": ["bb", "b"]}]},
     "data.options.crosses.0.columns: 'bb' is not in columns — did you mean 'b'?"),
    ("a,b,y\n1,x,0\n", {"a": "numeric", "y": "category"}, {},
     "data.options.columns: 'y' is the label; it cannot be an input column too"),
    ("a,b,y\n1,x,0\n", {"a": {"type": "numeric", "bins": 4}}, {},
     "bins does not apply to a numeric column"),
    ("a,b,y\n1,x,0\n2,y,1\n", {"a": "numeric", "b": {"type": "text", "output_mode": "int"}}, {},
     "data.options.columns.b: a text column with output_mode: int gives token sequences"),
]


@pytest.mark.parametrize("text, columns, options, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_tables_are_one_line_and_write_nothing(cli, write_config, tmp_path, text, columns, options, message):
    line = run_refused(cli, tmp_path, write_config(_table(tmp_path, text, columns, **options)))
    assert message.format(path=tmp_path / "t.csv") in line, line


def test_a_jsonl_key_no_record_has_is_named_with_a_did_you_mean(cli, write_config, tmp_path):
    (tmp_path / "t.jsonl").write_text('{"age": 3, "y": 1}\n{"age": 4, "y": 0}\n')
    config = {"data": {"dataset": "jsonl", "path": str(tmp_path / "t.jsonl"), "validation": "none",
                       "options": {"label": "y", "columns": {"agee": "numeric"}}},
              "model": {"type": "dense"}, "loss": "sparse_categorical_crossentropy"}
    line = run_refused(cli, tmp_path, write_config(config))
    assert "data.options.columns: 'agee' is in no record of" in line and "did you mean 'age'?" in line, line


def test_validate_checks_typed_columns_without_tensorflow(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(penguins_config()))
    code = ("import sys\nfrom tftrain.cli import app\ntry:\n    app(sys.argv[1:], prog_name='tftrain')\n"
            "except SystemExit as exit:\n    print('EXIT', exit.code, 'tensorflow' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "validate", str(config)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert done.stdout.strip().splitlines()[-1] == "EXIT 0 False False", done.stdout + done.stderr


def graph_on_columns(data: Path, nodes: list) -> dict:
    """The mixed table with its text as token ids, for a graph that reads `columns.note` itself."""
    config = mixed_config(data, "fit")
    config["data"]["options"]["columns"]["note"] = {"type": "text", "output_mode": "int", "sequence_length": 6,
                                                    "max_tokens": 16}
    config["data"]["options"]["crosses"] = []
    config["model"] = {"type": "graph", "nodes": nodes}
    config["loss"] = {"name": "sparse_categorical_crossentropy", "from_logits": True}
    config["training"] = {"epochs": 2}
    return config


SEQUENCE_AND_FEATURES = [
    {"name": "words", "layer": {"embedding": {"input_dim": 16, "output_dim": 4}}, "inputs": ["columns.note"]},
    {"name": "pooled", "layer": "global_average_pooling1d"},
    {"name": "joined", "layer": "concatenate", "inputs": ["input", "pooled"]},
    {"name": "out", "layer": {"dense": 2}}]


def test_a_graph_takes_a_text_column_as_its_own_input_beside_the_other_features(cli, write_config, tmp_path):
    write_mixed_table(tmp_path / "table.csv")
    result = cli("run", write_config(graph_on_columns(tmp_path / "table.csv", SEQUENCE_AND_FEATURES)),
                 "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    import keras

    model = keras.saving.load_model(run / "model.keras")
    assert tuple(model.get_layer("words").input.shape) == (None, 6)  # the token ids of `note`
    (tmp_path / "rows.csv").write_text("note,weight,size,zip,color\ngood fine,,9.5,12345,red\n")
    predicted = cli("predict", run, tmp_path / "rows.csv", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.stdout)["predictions"]) == 1


@pytest.mark.parametrize("nodes, message", [
    ([{**SEQUENCE_AND_FEATURES[0], "inputs": ["columns.nott"]}, *SEQUENCE_AND_FEATURES[1:]],
     "'columns.nott' is not an input of this data (data columns: columns.color, columns.note, columns.size, "
     "columns.weight, columns.zip) — did you mean 'columns.note'?"),
    ([{"name": "hidden", "layer": {"dense": 4}}, {"name": "out", "layer": {"dense": 2}}],
     "model.nodes: no node reads columns.note (a token sequence, which is not part of 'input')"),
])
def test_graph_column_inputs_are_checked_by_name(cli, write_config, tmp_path, nodes, message):
    write_mixed_table(tmp_path / "table.csv")
    line = run_refused(cli, tmp_path, write_config(graph_on_columns(tmp_path / "table.csv", nodes)))
    assert message in line, line
