"""The Python API: `tftrain.train` with NumPy arrays, a tf.data.Dataset and a keras.Model each
make a normal run directory that `tftrain evaluate` and `tftrain report` read; a resume with
other arrays is refused; errors are tftrain's exceptions; `import tftrain` imports no
TensorFlow; the example notebook runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

CONFIG = {
    "name": "api",
    "seed": 0,
    "data": {"dataset": "npz", "batch_size": 8},
    "model": {"type": "dense", "hidden": [8]},
    "loss": "sparse_categorical_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "metrics": ["accuracy"],
    "training": {"epochs": 2},
}


def _arrays(n: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs made through the API: arrays, a tf.data.Dataset, a keras.Model."""
    import keras
    import tensorflow as tf

    import tftrain

    root = tmp_path_factory.mktemp("api")
    x, y = _arrays()
    test = _arrays(16, seed=1)
    made = {"root": root, "x": x, "y": y}
    made["arrays"] = tftrain.train(CONFIG, data={"train": (x, y), "test": test}, runs_dir=root, quiet=True)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)
    made["dataset"] = tftrain.train({**CONFIG, "name": "ds"}, data={"train": dataset, "test": test},
                                    runs_dir=root, quiet=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    no_model = {key: value for key, value in CONFIG.items() if key != "model"}
    made["model"] = tftrain.train({**no_model, "name": "mine"}, overrides={"training.epochs": 1},
                                  data=(x, y), model=model, runs_dir=root, quiet=True)
    return made


@pytest.mark.parametrize("which", ["arrays", "dataset", "model"])
def test_api_runs_are_normal_run_directories(runs, cli, which):
    run = runs[which]
    assert run.status == "completed"
    assert run.path.parent == runs["root"] and (run.path / "model.keras").is_file()
    epochs = 1 if which == "model" else 2
    assert [row["epoch"] for row in run.history] == list(range(1, epochs + 1))
    assert run.predict(runs["x"][:3]).shape == (3, 2)
    result = cli("evaluate", run.path, "--json")
    assert result.exit_code == 0, result.output
    report = run.path / "report.html"
    result = cli("report", run.path, "--output", report)
    assert result.exit_code == 0, result.output
    assert report.is_file()


def test_arrays_and_datasets_of_the_same_data_train_the_same(runs):
    """A batched dataset is read into the same arrays: same file, same history."""
    arrays, dataset = runs["arrays"], runs["dataset"]
    assert arrays.config.data.path == dataset.config.data.path
    assert [r["loss"] for r in arrays.history] == [r["loss"] for r in dataset.history]


def test_a_python_model_is_recorded_as_a_keras_file(runs):
    model = runs["model"].config.model
    assert model.type == "keras_file" and Path(model.path).parent.name == ".models"
    assert model.output_activation == "softmax"
    assert runs["model"].config.data.validation == "none"  # no test split was given


def test_resume_with_other_arrays_is_refused(runs):
    import tftrain

    x, y = runs["x"], runs["y"]
    with pytest.raises(tftrain.UserError, match="these arrays are not the ones the run trained on"):
        tftrain.resume(runs["arrays"].path, data={"train": (x[:10], y[:10])})


def test_errors_are_tftrain_exceptions(runs):
    import tftrain

    with pytest.raises(tftrain.ConfigError, match="unknown key 'epocs' in 'training'"):
        tftrain.train({**CONFIG, "training": {"epocs": 1}}, data=(runs["x"], runs["y"]), runs_dir=runs["root"])
    with pytest.raises(tftrain.ConfigError, match="the config describes a model and model= gives one"):
        import keras

        tftrain.train(CONFIG, data=(runs["x"], runs["y"]), runs_dir=runs["root"],
                      model=keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    with pytest.raises(tftrain.ConfigError, match=r"data: expected \{'train': \(x, y\)\}"):
        tftrain.train(CONFIG, data={"training": (runs["x"], runs["y"])}, runs_dir=runs["root"])


def test_import_tftrain_imports_no_tensorflow():
    code = "import sys, tftrain; tftrain.__version__; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_the_example_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(REPO / "examples" / "from_python.ipynb", as_version=4)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                      for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "completed" in outputs and "keras_file" in outputs
    # the progress is rich's live notebook display (an ipywidgets output), not plain lines
    widgets = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
               if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert widgets
    assert "unknown key 'epocs' in 'training'" in outputs
    assert (tmp_path / "runs").is_dir()


def test_an_interrupted_api_run_resumes_exactly_with_the_same_arrays(tmp_path):
    """SIGTERM (real, sent to this process after step 5) stops an arrays run with a checkpoint;
    tftrain.resume with the same arrays ends bit-identical to an uninterrupted run."""
    import signal

    import tftrain
    from tests.kit import AtStep, assert_identical

    x, y = _arrays(40)
    config = {**CONFIG, "deterministic": True, "training": {"epochs": 2, "checkpoint": {"every_steps": 2}}}
    base = tftrain.train(config, data=(x, y), runs_dir=tmp_path / "base", quiet=True)
    with pytest.raises(tftrain.TrainingInterrupted) as stopped:
        tftrain.train(config, data=(x, y), runs_dir=tmp_path / "run", quiet=True,
                      callbacks=[AtStep(5, lambda: os.kill(os.getpid(), signal.SIGTERM))])
    run = tftrain.load_run(stopped.value.run_dir)
    assert run.status == "interrupted"
    resumed = tftrain.resume(run.path, data=(x, y), quiet=True)
    assert resumed.status == "completed"
    assert_identical(resumed.path, base.path)
