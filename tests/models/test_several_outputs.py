"""Several outputs (issue 28, item 4): a graph with `outputs: [a, b]`, one label column each.

- a two-input (a category column read by its own embedding, and the rest), two-output graph on
  palmerpenguins' CSV (species: classes, body_mass_g: a regression) trains in both loops, logs
  each output's values under Keras's names, evaluates per output, predicts and exports per output;
- kill -9 mid-epoch and resume: bit-identical, both loops, for a two-output table;
- bad input: one line, exit 2, nothing written, checked without TensorFlow where the config tells.
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
    mirrored_beside_one_device,
    run_refused,
)

palmerpenguins = pytest.importorskip("palmerpenguins")
PENGUINS = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
_RNG = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))

# species (classes) from bills, flippers, sex and the island (an embedding of its own: a second input).
NODES = [
    {"name": "place", "layer": {"dense": {"units": 2, "activation": "tanh"}}, "inputs": ["columns.island"]},
    {"name": "joined", "layer": "concatenate", "inputs": ["input", "place"]},
    {"name": "hidden", "layer": {"dense": {"units": 16, "activation": "relu"}}},
    {"name": "species_head", "layer": {"dense": 3}, "inputs": ["hidden"]},
    {"name": "grams", "layer": {"dense": 1}, "inputs": ["hidden"]},
    {"name": "mass_head", "layer": {"rescaling": {"scale": 1000.0, "offset": 4000.0}}},  # about the mean mass
]


def two_outputs(loop: str = "fit", path: Path = PENGUINS, **changes) -> dict:
    config = {
        "name": f"two-{loop}", "seed": 0, "deterministic": True,
        "data": {"dataset": "csv", "path": str(path), "batch_size": 32, "validation": 0.2,
                 "options": {"label": ["species", "body_mass_g"], "columns": {
                     "island": "category",
                     "bill_length_mm": "numeric", "bill_depth_mm": "numeric", "flipper_length_mm": "numeric",
                     "sex": "category"}}},
        "model": {"type": "graph", "nodes": NODES, "outputs": ["species_head", "mass_head"]},
        "loss": {"species": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                 "body_mass_g": "mse"},
        "loss_weights": {"species": 1.0, "body_mass_g": 1.0e-6},
        "metrics": {"species": ["accuracy"], "body_mass_g": ["mae"]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"loop": loop, "epochs": 20},
    }
    config.update(changes)
    return config


def penguins_with_mass(path: Path) -> Path:
    """palmerpenguins' CSV without the two rows whose body mass is NA (a label column has no blanks)."""
    lines = PENGUINS.read_text().splitlines()
    mass = lines[0].split(",").index("body_mass_g")
    path.write_text("\n".join([lines[0], *(row for row in lines[1:] if row.split(",")[mass] != "NA")]) + "\n")
    return path


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_two_inputs_two_outputs_train_log_each_output_and_evaluate_per_output(cli, write_config, tmp_path, loop):
    data = penguins_with_mass(tmp_path / "penguins.csv")
    # 8 epochs: both outputs are learnt by the 3rd to 5th (val accuracy 0.93-0.99, MAE ~240 g), well
    # inside the bounds below; each epoch more costs a second, mostly saving snapshots.
    config = two_outputs(loop, data, training={"loop": loop, "epochs": 8,
                                               "early_stopping": {"monitor": "val_species_accuracy", "patience": 50}})
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    final = json.loads((run / "summary.json").read_text())["final"]
    assert {"loss", "species_loss", "species_accuracy", "body_mass_g_loss", "body_mass_g_mae", "val_loss",
            "val_species_accuracy", "val_body_mass_g_mae"} <= set(final), final
    assert final["val_species_accuracy"] >= 0.9, final
    assert final["val_body_mass_g_mae"] < 500, final  # grams; the masses spread over 2700..6300
    evaluated = cli("evaluate", run, "--checkpoint", "last", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    species, mass = report["outputs"]["species"], report["outputs"]["body_mass_g"]
    assert species["task"] == "multiclass" and species["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert species["classification"]["accuracy"] == pytest.approx(final["val_species_accuracy"], abs=1e-6)
    assert mass["task"] == "regression" and mass["regression"]["mae"] == pytest.approx(final["val_body_mass_g_mae"],
                                                                                        rel=1e-4)
    assert (run / species["plots"]["confusion_matrix"]).is_file() and (run / mass["plots"]["residuals"]).is_file()
    shown = cli("evaluate", run, "--checkpoint", "last")
    assert "output species (multiclass)" in shown.output and "Gentoo" in shown.output, shown.output


SERVE = """
import json, sys
import numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
header, *lines = [line.split(",") for line in open(sys.argv[2]).read().splitlines()]
order = [header.index(name) for name in json.loads(sys.argv[3])]  # the model's columns, in its order
rows = [[cells[i] for i in order] for cells in lines]
out = serve(inputs=tf.constant(np.array(rows, dtype=object)))
print(json.dumps({k: np.asarray(v).tolist() for k, v in sorted(out.items())}))
"""


def test_predict_and_the_saved_model_name_each_output(cli, write_config, tmp_path):
    data = penguins_with_mass(tmp_path / "penguins.csv")
    result = cli("run", write_config(two_outputs("fit", data, training={"epochs": 3})), "--runs-dir",
                 tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    # the columns the model takes, in its order, with a blank and an island it never saw
    (tmp_path / "rows.csv").write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,sex\n"
                                       "Biscoe,47.5,15.0,218,female\nAtlantis,39.1,18.7,,male\n")
    predicted = cli("predict", run, tmp_path / "rows.csv", "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert [set(r) for r in rows] == [{"source", "index", "species", "body_mass_g"}] * 2
    assert all(r["species"]["label"] in ("Adelie", "Chinstrap", "Gentoo") and isinstance(r["body_mass_g"]["value"],
                                                                                          float) for r in rows)
    exported = cli("export", run, "--format", "saved_model")
    assert exported.exit_code == 0, exported.output
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    features = json.dumps(json.loads((run / "summary.json").read_text())["data"]["features"])
    served = subprocess.run([sys.executable, "-c", SERVE, str(run / "export" / "saved_model"), str(tmp_path / "rows.csv"),
                             features],
                            capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=300)
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert set(answer) == {"species_probabilities", "species_class", "body_mass_g_values"}
    assert answer["species_class"] == [r["species"]["class"] for r in rows]
    assert [v[0] for v in answer["body_mass_g_values"]] == pytest.approx([r["body_mass_g"]["value"] for r in rows],
                                                                          rel=1e-5)
    refused = cli("export", run, "--format", "tflite")
    assert refused.exit_code == 2 and "input 'inputs' is rows of text cells" in refused.output, refused.output


def _changed(config: dict, path: str, value) -> dict:
    """`config` with the value at a dotted key path replaced (None: removed)."""
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is None:
        node.pop(last)
    else:
        node[last] = value
    return config


BAD = [
    ("data.options.label", ["species"],
     "model.outputs: 2 outputs (species_head, mass_head) but 1 label columns in data.options.label (species)"),
    ("loss", {"species": "sparse_categorical_crossentropy", "body_mass": "mse"},
     "loss: unknown output \"body_mass\" — did you mean 'body_mass_g'?"),
    ("metrics", {"specie": ["accuracy"]}, "metrics: unknown output \"specie\" — did you mean 'species'?"),
    ("loss_weights", {"species": 1.0, "mass": 0.1}, "loss_weights: unknown output \"mass\""),
    ("loss", {"species": {"name": "sparse_categorical_crossentropy", "from_logits": True}},
     "loss: no loss for output 'body_mass_g'"),
    ("data.options.label", ["species", "species"],
     "data.options.label: 'species' is listed twice; each output needs its own label column"),
    ("model", {"type": "dense"}, "data.options.label: a list of labels (species, body_mass_g) trains several outputs"),
    ("data.in_memory_max_mb", 0, "data.options.label: several outputs (species, body_mass_g) are read in memory "
                                 "only, and penguins.csv needs streaming (data.in_memory_max_mb: 0)"),
    ("model.outputs", ["species_head", "mass_hed"], "model.outputs.1: unknown node \"mass_hed\" — did you mean "
                                                    "'mass_head'?"),
    ("loss", {"species": "sparse_categorical_crossentropy", "body_mass_g": "mse"},
     "loss.species: sparse_categorical_crossentropy expects probabilities, but the model's output layer has no "
     "activation"),
    ("data.options.columns", None, "data.options.label: a list of labels (several outputs) needs typed inputs"),
    ("training", {"early_stopping": {"monitor": "val_species_acc"}},
     "training.early_stopping.monitor: the run does not log \"val_species_acc\" — did you mean "
     "'val_species_accuracy'?"),
    ("metrics", {"species": ["accuracy"], "body_mass_g": ["r2_score"], "mass_head": ["mae"]},
     "metrics: output 'body_mass_g' is given twice (body_mass_g and mass_head)"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_outputs_are_one_line_and_write_nothing(cli, write_config, tmp_path, key, value, message):
    line = run_refused(cli, tmp_path, write_config(_changed(two_outputs(), key, value)))
    assert message in line, line


@pytest.mark.parametrize("key, value, message", [
    ("loss", {"species": "mse", "body_mass_g": "mse"},
     "loss.species: mean_squared_error is a regression loss, but the label column 'species' names 3 classes (text)"),
    ("model.nodes", [*NODES[:3], {"name": "species_head", "layer": {"dense": 2}, "inputs": ["hidden"]}, *NODES[4:]],
     "model.outputs: node species_head (output species) has shape (None, 2), but its loss needs (None, 3): one unit "
     "per class of species"),
])
def test_outputs_that_do_not_fit_their_labels_are_one_line(cli, write_config, tmp_path, key, value, message):
    config = _changed(two_outputs(path=penguins_with_mass(tmp_path / "penguins.csv")), key, value)
    line = run_refused(cli, tmp_path, write_config(config))
    assert message in line, line


def test_a_loss_map_needs_several_outputs_and_validate_says_so_without_tensorflow(tmp_path):
    config = {
        "data": {"dataset": "synthetic_regression"}, "model": {"type": "linear"}, "loss": {"y": "mse"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code = ("import sys\nfrom tftrain.cli import app\ntry:\n    app(sys.argv[1:], prog_name='tftrain')\n"
            "except SystemExit as exit:\n    print('EXIT', exit.code, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "validate", str(tmp_path / "c.yaml")], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, check=False)
    assert done.stdout.strip().splitlines()[-1] == "EXIT 2 False", done.stdout + done.stderr
    assert "loss: a value per output needs several outputs" in done.stderr, done.stderr


def write_two_label_table(path: Path, n: int = 48) -> None:
    """n rows: a category, numbers with blanks; a class label and a numeric label follow them."""
    rng = np.random.default_rng(5)
    lines = ["color,size,weight,kind,amount"]
    for i in range(n):
        color, size = ["red", "green", "blue"][i % 3], rng.normal(10, 3)
        weight = "" if i % 7 == 0 else f"{rng.normal(50, 10):.2f}"
        lines.append(f"{color},{size:.3f},{weight},{'ab'[int((size > 10) ^ (color == 'red'))]},{size * 2 + 1:.3f}")
    path.write_text("\n".join(lines) + "\n")


def resumable_config(data: Path, loop: str) -> dict:
    return {
        "name": f"two-{loop}", "seed": 7, "deterministic": True,
        "data": {"dataset": "csv", "path": str(data), "batch_size": 4, "validation": 0.25,
                 "options": {"label": ["kind", "amount"], "columns": {"color": "category", "size": "numeric",
                                                                       "weight": "numeric"}}},
        "model": {"type": "graph", "outputs": ["kind_out", "amount_out"], "nodes": [
            {"name": "tint", "layer": {"dense": 2}, "inputs": ["columns.color"]},
            {"name": "joined", "layer": "concatenate", "inputs": ["input", "tint"]},
            {"name": "hidden", "layer": {"dense": {"units": 8, "activation": "relu"}}},
            {"name": "drop", "layer": {"dropout": 0.5}},  # dropout: the RNG state resumes too
            {"name": "kind_out", "layer": {"dense": 2}, "inputs": ["drop"]},
            {"name": "amount_out", "layer": {"dense": 1}, "inputs": ["drop"]}]},
        "loss": {"kind": {"name": "sparse_categorical_crossentropy", "from_logits": True}, "amount": "mse"},
        "loss_weights": 0.5, "metrics": {"kind": "accuracy", "amount": "mae"},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"loop": loop, "epochs": EPOCHS, "checkpoint": {"every_steps": 4},
                     "steps_per_execution": 1},  # killed after a chosen step: one step per call
    }


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_two_outputs_sigkilled_mid_epoch_resume_bit_identical(tmp_path, loop):
    at = _RNG.choice(MID_EPOCH_KILLS)
    write_two_label_table(tmp_path / "table.csv")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(resumable_config(tmp_path / "table.csv", loop)))
    killed = Child(["run", "--runs-dir", "runs", "c.yaml"], tmp_path, child_env(tmp_path), paced=True, at=at,
                   signal=signal.SIGKILL)
    base = InProcess(["run", "--runs-dir", "base", "c.yaml"], tmp_path)
    assert killed.wait() == -9, killed
    assert base.exit_code == 0, base
    assert STEPS_PER_EPOCH == 9  # 36 training rows in batches of 4, as the kit's kill steps assume
    run = killed.run_dir(tmp_path)
    resumed = InProcess(["run", "--resume", run], tmp_path)
    assert resumed.exit_code == 0, resumed
    assert any(line.startswith("resuming from epoch ") and not line.endswith(", step 0") for line in resumed.lines)
    assert_identical(run, base.run_dir(tmp_path))
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"kind_loss", "kind_accuracy", "amount_mae", "val_amount_loss"} <= set(history), history


def test_the_smoke_test_reloads_and_evaluates_a_two_output_table(cli, write_config, tmp_path):
    data = penguins_with_mass(tmp_path / "penguins.csv")
    result = cli("run", write_config(two_outputs("fit", data)), "--runs-dir", tmp_path / "runs", "--smoke")
    assert result.exit_code == 0, result.output
    assert "same outputs" in result.output and "species_accuracy=" in result.output, result.output


def test_jsonl_with_a_binary_and_a_numeric_output_trains_and_predicts_both(cli, write_config, tmp_path):
    rng = np.random.default_rng(3)
    records = []
    for i in range(60):
        x = float(rng.normal())
        records.append({"x": None if i % 9 == 0 else x, "kind": "ab"[i % 2], "up": "yes" if x > 0 else "no",
                        "twice": round(2 * x + (i % 2), 3)})
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {"seed": 1, "data": {"dataset": "jsonl", "path": str(tmp_path / "t.jsonl"), "batch_size": 8,
                                  "validation": 0.2, "options": {"label": ["up", "twice"],
                                                                 "columns": {"x": "numeric", "kind": "category"}}},
              "model": {"type": "graph", "outputs": ["p", "v"], "nodes": [
                  {"name": "h", "layer": {"dense": {"units": 8, "activation": "relu"}}},
                  {"name": "p", "layer": {"dense": {"units": 1, "activation": "sigmoid"}}, "inputs": ["h"]},
                  {"name": "v", "layer": {"dense": 1}, "inputs": ["h"]}]},
              "loss": {"up": "binary_crossentropy", "twice": "mse"}, "metrics": {"up": "accuracy"},
              "optimizer": {"name": "adam", "learning_rate": 0.05}, "training": {"epochs": 15}}
    result = cli("run", write_config(config), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    final = json.loads((run / "summary.json").read_text())["final"]
    assert final["val_up_accuracy"] >= 0.8 and final["val_twice_loss"] < 1.0, final
    (tmp_path / "new.jsonl").write_text('{"x": 2.5, "kind": "a"}\n{"kind": "b", "x": -2}\n')
    predicted = cli("predict", run, tmp_path / "new.jsonl", "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert [r["up"]["label"] for r in rows] == ["yes", "no"]
    assert rows[0]["twice"]["value"] > rows[1]["twice"]["value"]


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_two_outputs_under_mirrored_on_two_cpus_train_as_one_device(tmp_path, loop):
    """Per-output losses, metrics and weights on two replicas (a fresh process: logical devices
    exist only before TensorFlow starts) log what one device logs."""


    raw = two_outputs(loop, path=penguins_with_mass(tmp_path / "penguins.csv"), name=f"mirrored-{loop}")
    raw["training"]["epochs"] = 2
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    run, single = mirrored_beside_one_device(config, tmp_path, child_env(tmp_path))
    got, want = [(r / "history.csv").read_text().splitlines() for r in (run, single)]
    assert got[0] == want[0] and {"species_loss", "body_mass_g_mae", "val_species_accuracy"} <= set(got[0].split(","))
    for a, b in zip(got[1:], want[1:], strict=True):
        assert [float(v) for v in a.split(",")] == pytest.approx([float(v) for v in b.split(",")], rel=1e-4)
