"""What finished runs leave behind and the commands that read it: TensorBoard events, plots,
`runs`, `compare`, `plot`, `predict`, `export`.

Three tiny runs are trained once for the whole module (a linear regression with model.fit, a
logistic regression with the custom loop, a dense MNIST-format classifier) and shared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from tftrain.cli import app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{"regression": run dir (fit), "binary": run dir (custom), "mnist": run dir (fit), "mnist_npz": path}."""
    root = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    mnist = root / "mnist.npz"
    np.savez(mnist, x_train=rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
             y_train=np.arange(32, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
             y_test=np.arange(8, dtype=np.uint8) % 10)
    configs = {
        "regression": {
            "name": "reg", "data": {"dataset": "synthetic_regression", "batch_size": 8, "validation": 0.25,
                                    "options": {"num_examples": 32, "w": 3.0, "b": 2.0, "noise": 0.1}},
            "model": {"type": "linear"}, "loss": "mse", "optimizer": {"name": "sgd", "learning_rate": 0.05},
            # One step per call: a TensorBoard batch point after every step.
            "metrics": ["mae"], "training": {"loop": "fit", "epochs": 3, "steps_per_execution": 1}},
        "binary": {
            "name": "bin", "data": {"dataset": "synthetic_binary", "batch_size": 8, "validation": 0.25,
                                    "options": {"num_examples": 32}},
            "model": {"type": "linear", "w_init": 0.0, "output_activation": None},
            "loss": {"name": "binary_crossentropy", "from_logits": True},
            "optimizer": {"name": "sgd", "learning_rate": 0.1}, "metrics": ["accuracy"],
            "training": {"loop": "custom", "epochs": 2, "steps_per_execution": 1}},
        "mnist": {
            "name": "digits", "data": {"dataset": "mnist", "path": str(mnist), "batch_size": 8},
            "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["accuracy"],
            "training": {"loop": "fit", "epochs": 1}},
    }
    runs = {}
    for key, config in configs.items():
        path = root / f"{key}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = _invoke("run", path, "--runs-dir", root / "runs", "--quiet")
        assert result.exit_code == 0, result.output
        runs[key] = Path(result.stdout.strip())
    return {**runs, "mnist_npz": mnist, "runs_dir": root / "runs"}


# -- TensorBoard ----------------------------------------------------------------------------

def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in an event folder, read back with TensorBoard's own reader."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


@pytest.mark.parametrize("kind", ["regression", "binary"])  # model.fit and the custom loop
def test_tensorboard_scalars_and_graph_match_history_in_both_loops(trained, kind):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = trained[kind]
    history = [{k: float(v) for k, v in row.items()} for row in _history(run)]
    train = _scalars(run / "tensorboard" / "train")
    validation = _scalars(run / "tensorboard" / "validation")
    metric = "mae" if kind == "regression" else "accuracy"
    epochs = [int(row["epoch"]) for row in history]
    for tag, column, scalars in (("epoch_loss", "loss", train), (f"epoch_{metric}", metric, train),
                                 ("epoch_learning_rate", "lr", train), ("epoch_w", "w", train),
                                 ("epoch_loss", "val_loss", validation),
                                 (f"epoch_{metric}", f"val_{metric}", validation)):
        assert [s for s, _ in scalars[tag]] == epochs, tag
        assert [v for _, v in scalars[tag]] == pytest.approx([row[column] for row in history], rel=1e-6), tag
    # Batch-level points: stepped by global step, the last one at the end of training.
    steps_per_epoch = 3  # 24 training examples, batch 8
    batch_steps = [s for s, _ in train["batch_loss"]]
    assert batch_steps == list(range(1, len(epochs) * steps_per_epoch + 1))
    assert "batch_learning_rate" in train
    accumulator = EventAccumulator(str(run / "tensorboard" / "train"))
    accumulator.Reload()
    graph = accumulator.Graph()
    ops = {node.op for node in graph.node}
    assert "MatMul" in ops and "Placeholder" in ops  # the linear layer's forward pass


def test_tensorboard_in_steps_mode_steps_by_global_step_per_log_interval(tmp_path, write_config):
    from tftrain.runs import RunDir
    from tftrain.runs.plots import read_curves

    config = write_config({
        "name": "sgd1", "data": {"dataset": "synthetic_binary", "batch_size": 1, "validation": "none",
                                 "options": {"num_examples": 10}},
        "model": {"type": "linear", "w_init": 0.0}, "loss": {"name": "binary_crossentropy", "from_logits": True},
        "training": {"loop": "custom", "steps": 6, "log_every": 3, "sampling": "with_replacement"}})
    result = _invoke("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip())
    train = _scalars(run / "tensorboard" / "train")
    assert [s for s, _ in train["epoch_loss"]] == [3, 6]  # one point per log interval, at its last step
    assert [v for _, v in train["epoch_loss"]] == pytest.approx([float(r["loss"]) for r in _history(run)])
    assert not any(tag.startswith("batch_") for tag in train)  # intervals already are the fine grain
    assert not (run / "tensorboard" / "validation").exists()
    curves = read_curves(RunDir(run))
    assert curves.x_name == "step" and curves.x == [3.0, 6.0]


def _history(run: Path) -> list[dict[str, str]]:
    import csv

    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


# -- plots ----------------------------------------------------------------------------------

def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        return image.size


def test_every_run_writes_curves_and_linear_parameter_plots(trained):
    regression = sorted(p.name for p in (trained["regression"] / "plots").iterdir())
    assert regression == ["loss.png", "mae.png", "parameters.png"]
    assert sorted(p.name for p in (trained["mnist"] / "plots").iterdir()) == ["accuracy.png", "loss.png"]
    for path in (trained["regression"] / "plots").iterdir():
        width, height = _png_size(path)
        assert width >= 600 and height >= 380
    # The true w and b of the generated data are recorded for the parameter plot.
    summary = json.loads((trained["regression"] / "summary.json").read_text())
    assert summary["data"]["true_w"] == 3.0 and summary["data"]["true_b"] == 2.0


def test_parameter_plot_draws_the_path_from_w_init_and_the_true_values(trained):
    from tftrain.runs import RunDir
    from tftrain.runs.plots import read_curves

    curves = read_curves(RunDir(trained["regression"]))
    x, w = curves.parameter("w")
    assert x[0] == 0.0 and w[0] == 5.0  # w_init, before the first epoch
    assert w[1:] == pytest.approx([float(r["w"]) for r in _history(trained["regression"])])
    assert curves.truth == {"w": 3.0, "b": 2.0}


def test_plot_overlays_several_runs_in_one_png(trained, tmp_path):
    output = tmp_path / "both.png"
    result = _invoke("plot", trained["regression"], trained["binary"], "--output", output)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(output)
    width, height = _png_size(output)
    assert width > height  # panels side by side: loss, mae, accuracy / w, b


def test_plots_of_a_one_epoch_run_have_sane_axes_and_a_legend_beside_the_points(trained):
    """One epoch: its points in the middle of a unit-wide epoch axis with whole-number ticks,
    values without an offset, and a legend that covers none of the points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tftrain.commands.plot import overlay_figure
    from tftrain.runs import RunDir
    from tftrain.runs.plots import metric_figure, read_curves

    curves = read_curves(RunDir(trained["mnist"]))
    assert curves.x == [1.0] and "val_loss" in curves.columns
    for figure in (metric_figure(curves, "loss"), overlay_figure([curves])):
        FigureCanvasAgg(figure).draw()
        renderer = figure.canvas.get_renderer()
        for ax in figure.axes:
            low, high = ax.get_xlim()
            assert low <= 0.0 and high >= 2.0
            assert all(float(t).is_integer() for t in ax.get_xticks() if low <= t <= high)
            assert ax.yaxis.get_offset_text().get_text() == ""
            legend = ax.get_legend().get_window_extent(renderer)
            points = np.concatenate([ax.transData.transform(np.column_stack(line.get_data()))
                                     for line in ax.get_lines()])
            assert len(points) >= 2 and not any(legend.contains(x, y) for x, y in points)


def test_plot_refuses_a_non_png_output_and_a_folder_that_is_not_a_run(trained, tmp_path):
    result = _invoke("plot", trained["regression"], "--output", tmp_path / "x.jpg")
    assert result.exit_code == 2 and "expected a .png" in result.stderr
    result = _invoke("plot", tmp_path, "--output", tmp_path / "x.png")
    assert result.exit_code == 2 and "not a tftrain run directory" in result.stderr
    assert not (tmp_path / "x.png").exists()


# -- runs and compare -----------------------------------------------------------------------

def test_runs_lists_newest_first_as_table_and_json(trained):
    result = _invoke("runs", trained["runs_dir"], "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["run"] for row in rows] == [trained[k].name for k in ("mnist", "binary", "regression")]
    assert [row["started"] for row in rows] == sorted((row["started"] for row in rows), reverse=True)
    regression = rows[2]
    assert regression["status"] == "completed" and regression["epochs_done"] == 3 and regression["epochs"] == 3
    assert regression["best_monitor"] == "val_loss"
    assert regression["best_value"] == pytest.approx(min(float(r["val_loss"]) for r in _history(trained["regression"])))

    table = _invoke("runs", trained["runs_dir"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    positions = [next(i for i, line in enumerate(lines) if trained[k].name in line)
                 for k in ("mnist", "binary", "regression")]
    assert positions == sorted(positions)
    assert "3/3 epochs" in table.stdout and "completed" in table.stdout and "val_loss=" in table.stdout


def test_runs_on_a_missing_folder_is_bad_input(tmp_path):
    result = _invoke("runs", tmp_path / "nope")
    assert result.exit_code == 2 and "no such folder of runs" in result.stderr


def test_compare_shows_config_and_metric_differences_side_by_side(trained):
    result = _invoke("compare", trained["regression"], trained["binary"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["training.loop"] == ["fit", "custom"]
    assert data["config"]["data.dataset"] == ["synthetic_regression", "synthetic_binary"]
    assert "data.batch_size" not in data["config"]  # equal values are not differences
    assert data["metrics"]["final mae"][1] is None and data["metrics"]["final accuracy"][0] is None
    table = _invoke("compare", trained["regression"], trained["binary"])
    assert "config differences" in table.stdout and "change" in table.stdout
    assert "training.loop" in table.stdout and "custom" in table.stdout


def test_compare_needs_two_runs(trained):
    result = _invoke("compare", trained["regression"])
    assert result.exit_code == 2 and "at least two" in result.stderr


# -- predict --------------------------------------------------------------------------------

def test_predict_regression_values_from_npy_and_csv(trained, tmp_path):
    last = _history(trained["regression"])[-1]
    w, b = float(last["w"]), float(last["b"])
    np.save(tmp_path / "x.npy", np.array([-1.0, 0.0, 2.0], dtype=np.float32))
    (tmp_path / "x.csv").write_text("x\n-1\n0\n2\n")
    result = _invoke("predict", trained["regression"], tmp_path / "x.npy", tmp_path / "x.csv", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["task"] == "regression"
    values = [p["value"] for p in data["predictions"]]
    expected = [w * x + b for x in (-1.0, 0.0, 2.0)]
    assert values == pytest.approx(expected * 2, rel=1e-5)


def test_predict_binary_logits_become_sigmoid_probabilities(trained, tmp_path):
    last = _history(trained["binary"])[-1]
    w, b = float(last["w"]), float(last["b"])
    xs = np.array([[-3.0], [0.5], [3.0]], dtype=np.float32)
    np.savez(tmp_path / "points.npz", x=xs)
    output = tmp_path / "out.csv"
    result = _invoke("predict", trained["binary"], tmp_path / "points.npz", "--output", output)
    assert result.exit_code == 0, result.output
    rows = output.read_text().splitlines()
    assert rows[0] == "source,index,class,probability"
    probabilities = [float(r.split(",")[3]) for r in rows[1:]]
    expected = [1 / (1 + math.exp(-(w * x + b))) for x in xs[:, 0]]
    assert probabilities == pytest.approx(expected, rel=1e-5)
    assert [int(r.split(",")[2]) for r in rows[1:]] == [int(p >= 0.5) for p in expected]


def test_predict_classes_of_images_and_arrays_agree_with_the_model(trained, tmp_path):
    import keras

    x = np.load(trained["mnist_npz"])["x_test"][:3]
    np.save(tmp_path / "digits.npy", x)
    images = tmp_path / "images"
    images.mkdir()
    for i, digit in enumerate(x):
        Image.fromarray(digit).save(images / f"{i}.png")
    result = _invoke("predict", trained["mnist"], tmp_path / "digits.npy", images, "--json")
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"]
    model = keras.saving.load_model(trained["mnist"] / "model.keras", compile=False)
    probabilities = model.predict(x, verbose=0)
    for i, row in enumerate(predictions):  # three from the .npy, then the same three as PNG files
        expected = probabilities[i % 3]
        assert row["class"] == int(expected.argmax())
        assert row["probability"] == pytest.approx(float(expected.max()), rel=1e-5)  # softmax output as is
    assert [Path(r["source"]).name for r in predictions[3:]] == ["0.png", "1.png", "2.png"]
    table = _invoke("predict", trained["mnist"], images)
    assert table.exit_code == 0 and "probability" in table.stdout and "0.png" in table.stdout


def test_predict_rejects_inputs_of_the_wrong_shape_or_kind(trained, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5), dtype=np.float32))
    result = _invoke("predict", trained["mnist"], tmp_path / "wrong.npy")
    assert result.exit_code == 2
    assert "wrong.npy: an array of shape (2, 5); the model expects examples of shape (28, 28)" in result.stderr
    (tmp_path / "notes.txt").write_text("hello")
    result = _invoke("predict", trained["mnist"], tmp_path / "notes.txt")
    assert result.exit_code == 2 and "unsupported input" in result.stderr
    result = _invoke("predict", trained["regression"], tmp_path / "missing.npy")
    assert result.exit_code == 2 and "no such input file" in result.stderr


# -- export ---------------------------------------------------------------------------------

def test_export_saved_model_reloads_with_tf_and_gives_the_same_outputs(trained, tmp_path):
    import keras
    import tensorflow as tf

    target = tmp_path / "serving" / "digits" / "1"
    result = _invoke("export", trained["mnist"], "--format", "saved_model", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target)
    assert "serving_default: inputs (None, 28, 28) uint8 -> class (None,) int64" in result.stderr
    assert "serve: inputs (None, 28, 28) float32 -> output_0 (None, 10) float32" in result.stderr
    raw = np.load(trained["mnist_npz"])["x_test"]
    x = raw.astype(np.float32)
    loaded = tf.saved_model.load(str(target))
    expected = keras.saving.load_model(trained["mnist"] / "model.keras", compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    serving = loaded.signatures["serving_default"](inputs=tf.constant(raw))  # the uint8 images as they come
    np.testing.assert_allclose(serving["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    again = _invoke("export", trained["mnist"], "--output", target)
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_export_keras_formats(trained, tmp_path):
    import keras

    model = trained["regression"] / "model.keras"
    result = _invoke("export", trained["regression"], "--format", "keras", "--output", tmp_path / "m.keras")
    assert result.exit_code == 0, result.output
    # The same model (its weights: a .keras file also records the moment it was saved).
    exported = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    final = keras.saving.load_model(model, compile=False)
    assert [w.shape for w in exported.get_weights()] == [w.shape for w in final.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(exported.get_weights(), final.get_weights(), strict=True))
    result = _invoke("export", trained["regression"], "--format", "weights")
    assert result.exit_code == 0, result.output
    weights = trained["regression"] / "export" / "model.weights.h5"
    assert Path(result.stdout.strip()) == weights
    fresh = keras.saving.load_model(model, compile=False)
    for variable in fresh.weights:
        variable.assign(np.zeros(variable.shape))
    fresh.load_weights(weights)
    x = np.array([[0.0], [1.0]], dtype=np.float32)
    original = keras.saving.load_model(model, compile=False)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), original.predict(x, verbose=0))
    result = _invoke("export", trained["regression"], "--format", "h5", "--output", tmp_path / "legacy.h5")
    assert result.exit_code == 0, result.output
    legacy = keras.saving.load_model(tmp_path / "legacy.h5", compile=False)
    np.testing.assert_allclose(legacy.predict(x, verbose=0), original.predict(x, verbose=0))
    result = _invoke("export", trained["regression"], "--format", "keras", "--output", tmp_path / "m.h5")
    assert result.exit_code == 2 and "ending in .keras" in result.stderr
    result = _invoke("export", trained["regression"], "--format", "tfjs")
    assert result.exit_code == 2 and "unknown format 'tfjs'" in result.stderr
