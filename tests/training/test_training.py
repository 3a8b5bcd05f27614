"""Each seed config trained for real on tiny data, both loops, and evaluate (issue 2)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import CONFIGS


def _run(cli, config, runs, *overrides):
    args = ["run", config, "--runs-dir", runs]
    for override in overrides:
        args += ["--set", override]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    run_dir = result.stdout.strip().splitlines()[-1]
    return __import__("pathlib").Path(run_dir)


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_linear_regression_learns_w_and_b_and_writes_a_self_describing_run(cli, tmp_path):
    run = _run(cli, CONFIGS / "linear_regression.yaml", tmp_path / "runs")
    assert run.parent == tmp_path / "runs" and run.name.startswith("linear-regression-")
    for name in ("config.yaml", "summary.json", "history.csv", "model.keras",
                 "checkpoints/last.keras", "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    rows = _history(run)
    assert len(rows) == 10
    assert float(rows[0]["w"]) < 5.0  # the first step moves w from 5.0 towards 3
    assert abs(float(rows[-1]["w"]) - 3.0) < 0.3 and abs(float(rows[-1]["b"]) - 2.0) < 0.4
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 10 and summary["steps_done"] == 10
    assert summary["seed"] == 0 and summary["examples_per_second"] > 0
    assert set(summary["versions"]) >= {"tftrain", "tensorflow", "keras", "python"}
    assert summary["data"]["train"]["x_shape"] == [201, 1]


def test_fit_and_custom_loops_follow_the_same_trajectory(cli, tmp_path):
    """With noise 0 the w/b trajectory of model.fit and the GradientTape loop agree to 1e-5."""
    trajectories = {}
    for loop in ("fit", "custom"):
        run = _run(cli, CONFIGS / "linear_regression.yaml", tmp_path / loop,
                   f"training.loop={loop}", "data.options.noise=0.0")
        trajectories[loop] = np.array([[float(r["w"]), float(r["b"]), float(r["loss"])] for r in _history(run)])
    assert trajectories["fit"].shape == (10, 3)
    np.testing.assert_allclose(trajectories["custom"], trajectories["fit"], atol=1e-5, rtol=0)
    assert not np.allclose(trajectories["fit"][0, :2], trajectories["fit"][-1, :2])  # it did move


def test_the_loss_mean_keeps_kerass_mean_bit_for_bit():
    """The loops' loss tracker (two updates a step) accumulates exactly what Keras's Mean
    does for a scalar loss weighted by its batch size, inside a compiled step as in the loop."""
    import keras
    import tensorflow as tf

    from tftrain.training.loss_tracker import LossMean

    ours, keras_mean = LossMean(name="loss"), keras.metrics.Mean(name="loss")
    rng = np.random.default_rng(0)
    losses = rng.lognormal(size=50).astype(np.float32)
    weights = rng.integers(1, 65, size=50).astype(np.int32)
    step = tf.function(lambda metric, loss, n: metric.update_state(loss, sample_weight=n))
    for loss, n in zip(losses, weights):
        for metric in (ours, keras_mean):
            step(metric, tf.constant(loss), tf.constant(n))
    assert [v.numpy() for v in ours.variables] == [v.numpy() for v in keras_mean.variables]
    assert ours.result().numpy() == keras_mean.result().numpy()
    assert ours.count.numpy() == weights.sum()


def test_fit_with_the_loss_mean_logs_what_kerass_tracker_logs():
    """use_lean_loss_tracker gives Keras's fit and evaluate the LossMean: the same losses bit for
    bit as compile's Mean, and the tracker appears once in model.metrics (tracked, it would be
    there twice, and so would its variables in a checkpoint of the accumulators)."""
    import keras

    from tftrain.training.loss_tracker import LossMean, use_lean_loss_tracker

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 4)).astype(np.float32), rng.integers(0, 3, size=100)
    runs = []
    for lean in (False, True):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        if lean:
            use_lean_loss_tracker(model)
            assert [type(m) for m in model.metrics].count(LossMean) == 1 and not model._metrics
        history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history  # 100 = 3 x 32 + 4
        runs.append((history["loss"], model.evaluate(x, y, batch_size=32, verbose=0)))
    assert runs[0] == runs[1]


def test_mnist_dense_fit(cli, tmp_path, tiny_mnist):
    run = _run(cli, CONFIGS / "mnist_dense.yaml", tmp_path / "runs",
               f"data.path={tiny_mnist}", "training.epochs=2", "data.batch_size=16")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["params"] == 101_770  # Flatten -> Dense(128, relu) -> Dense(10, softmax)
    assert summary["data"]["train"]["x_dtype"] == "uint8"  # pixels stay uint8; the model rescales
    rows = _history(run)
    assert list(rows[0])[:6] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert summary["best"]["monitor"] == "val_loss"


def test_mnist_reads_the_keras_cache_file(cli, tmp_path, tiny_mnist, monkeypatch):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(tiny_mnist.read_bytes())
    run = _run(cli, CONFIGS / "mnist_dense.yaml", tmp_path / "runs", "training.epochs=1")
    assert str(cache / "mnist.npz") in json.loads((run / "summary.json").read_text())["data"]["source"]


def test_mnist_missing_offline_says_which_file_to_put_where(cli, tmp_path):
    runs = tmp_path / "runs"
    result = cli("run", CONFIGS / "mnist_dense.yaml", "--runs-dir", runs)
    assert result.exit_code == 2
    assert "mnist.npz" in result.output and "keras_home/datasets/mnist.npz" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not runs.exists()


def test_cifar10_cnn_custom_loop_on_tiny_images(cli, tmp_path, tiny_images):
    run = _run(cli, CONFIGS / "cifar10_cnn.yaml", tmp_path / "runs",
               "data.dataset=npz", f"data.path={tiny_images}", "training.epochs=2", "data.batch_size=8")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["params"] == 122_570 and summary["loop"] == "custom"
    rows = _history(run)
    assert len(rows) == 2 and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert summary["steps_done"] == 2 * 4  # 32 examples / batch 8, two epochs


def test_binary_classification_single_example_sgd_with_replacement(cli, tmp_path):
    run = _run(cli, CONFIGS / "binary_classification.yaml", tmp_path / "runs")
    rows = _history(run)
    assert [int(r["step"]) for r in rows] == [25, 50, 75, 100]  # a row every log_every steps
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps_done"] == 100
    result = cli("evaluate", run, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["accuracy"] >= 0.97


def test_evaluate_prints_table_writes_eval_json_and_picks_checkpoints(cli, tmp_path, tiny_mnist):
    run = _run(cli, CONFIGS / "mnist_dense.yaml", tmp_path / "runs",
               f"data.path={tiny_mnist}", "training.epochs=2", "training.loop=custom")
    table = cli("evaluate", run, "--checkpoint", "last")  # the default is best, where the run tracked a monitor
    assert table.exit_code == 0 and "accuracy" in table.stdout and "test (16 examples)" in table.stdout
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["split"] == "test" and evaluation["examples"] == 16
    assert set(evaluation["metrics"]) == {"loss", "accuracy"}
    # The last model's test loss is what training reported as the final val_loss.
    final_val_loss = float(_history(run)[-1]["val_loss"])
    assert evaluation["metrics"]["loss"] == pytest.approx(final_val_loss, rel=1e-4)
    best = json.loads(cli("evaluate", run, "--checkpoint", "best", "--json").stdout)
    assert best["model"] == "checkpoints/best.keras"
    assert cli("evaluate", run, "--checkpoint", "middle").exit_code == 2
    assert cli("evaluate", tmp_path).exit_code == 2  # not a run directory


@pytest.mark.parametrize("optimizer", [
    "{name: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}",
    "{name: adam, learning_rate: 0.05}", "{name: rmsprop, learning_rate: 0.01}",
    "{name: adagrad, learning_rate: 0.5}", "{name: adadelta, learning_rate: 1.0}",
    "{name: adamw, learning_rate: 0.05, weight_decay: 0.001}",
])
def test_optimizers_train(cli, tmp_path, optimizer):
    run = _run(cli, CONFIGS / "linear_regression.yaml", tmp_path / "runs",
               f"optimizer={optimizer}", "training.epochs=3")
    rows = _history(run)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_losses_and_metrics_with_parameters_and_run_eagerly(cli, tmp_path):
    run = _run(cli, CONFIGS / "linear_regression.yaml", tmp_path / "runs",
               "loss={name: huber, delta: 2.0}", "metrics=[mae, rmse, {name: mean_squared_error, dtype: float32}]",
               "training.epochs=2", "training.run_eagerly=true", "training.loop=custom")
    assert {"loss", "mae", "rmse", "mean_squared_error"} <= set(_history(run)[0])


def test_validation_fraction_and_limit(cli, tmp_path, tiny_mnist):
    run = _run(cli, CONFIGS / "mnist_dense.yaml", tmp_path / "runs", f"data.path={tiny_mnist}",
               "data.validation=0.25", "data.limit=40", "training.epochs=1")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["train_examples"] == 30  # 40 examples, a quarter held out
    assert summary["data"]["validation"].startswith("validation (0.25")


def test_bad_data_file_is_one_line_error(cli, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"this is not a zip file")
    runs = tmp_path / "runs"
    result = cli("run", CONFIGS / "mnist_dense.yaml", "--runs-dir", runs, "--set", f"data.path={bad}")
    assert result.exit_code == 2 and "broken.npz" in result.output and "Traceback" not in result.output
    assert not runs.exists()


def test_name_flag_and_debug_flag(cli, tmp_path):
    run = _run(cli, CONFIGS / "linear_regression.yaml", tmp_path / "runs", "training.epochs=1")
    named = cli("run", CONFIGS / "linear_regression.yaml", "--runs-dir", tmp_path / "runs",
                "--name", "my.exp_1", "--set", "training.epochs=1")
    assert named.exit_code == 0 and "my.exp_1-" in named.stdout
    assert run.name != named.stdout.strip()
    refused = cli("run", CONFIGS / "linear_regression.yaml", "--runs-dir", tmp_path / "runs", "--name", "../x")
    assert refused.exit_code == 2 and "--name" in refused.output
    debug = cli("run", CONFIGS / "linear_regression.yaml", "--debug", "--set", "training.epochs=0")
    assert debug.exit_code != 0 and debug.exception is not None  # --debug re-raises with the traceback
