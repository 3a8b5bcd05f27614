"""Plugins: a package of the user's (a layer, a focal loss, a macro-F1 metric, a callback that
records something), written here in tmp_path, named in `plugins:` and used by registered name.

- it trains from YAML in both loops, and a run SIGKILLed mid-epoch resumes bit-identical to an
  uninterrupted one (the recording callback's own count too: it is Stateful);
- the run evaluates, predicts and exports to a SavedModel when the same module is given with
  `--plugin`; without it, evaluate is one line saying which to pass;
- hostile cases are refused: a module that does not exist, a registered name no plugin provides,
  a model file naming a class of a module that no one named (checked with a canary module that
  writes a file when imported: it never is).
"""

from __future__ import annotations

import json
import os
import random
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.kit import EVERY_STEPS, MID_EPOCH_KILLS, Child, InProcess, assert_identical, child_env

PLUGIN = '''
"""A user's plugin module: every object registered with Keras under the package my_pkg."""
import json

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="my_pkg")
class Scale(keras.layers.Layer):
    """Multiplies its input by a learned per-feature scale."""

    def __init__(self, init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer=keras.initializers.Constant(self.init))

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "init": self.init}


@keras.saving.register_keras_serializable(package="my_pkg")
class FocalLoss(keras.losses.Loss):
    """Binary focal loss on probabilities."""

    def __init__(self, gamma=2.0, **kwargs):
        super().__init__(**kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        pt = y_true * p + (1 - y_true) * (1 - p)
        return ops.mean(-((1 - pt) ** self.gamma) * ops.log(pt), axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="my_pkg")
class MacroF1(keras.metrics.Metric):
    """F1 of both classes of a binary task, averaged."""

    def __init__(self, threshold=0.5, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.counts = self.add_variable(shape=(2, 3), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        p = ops.reshape(ops.cast(y_pred > self.threshold, "float32"), (-1,))
        rows = []
        for t, q in ((y, p), (1 - y, 1 - p)):
            rows.append(ops.stack([ops.sum(t * q), ops.sum((1 - t) * q), ops.sum(t * (1 - q))]))
        self.counts.assign_add(ops.stack(rows))

    def result(self):
        tp, fp, fn = self.counts[:, 0], self.counts[:, 1], self.counts[:, 2]
        return ops.mean(2 * tp / ops.maximum(2 * tp + fp + fn, 1e-7))

    def reset_state(self):
        self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="my_pkg")
class Constant(keras.initializers.Initializer):
    """Every weight starts at `value`."""

    def __init__(self, value=0.5):
        self.value = value

    def __call__(self, shape, dtype=None):
        return ops.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="my_pkg")
class Recorder(keras.callbacks.Callback):
    """Counts the batches trained and appends the count to a file at each epoch's end; its
    count resumes with the run (state_key, get_state, set_state: tftrain's Stateful)."""

    state_key = "my_pkg_recorder"

    def __init__(self, path, every=1):
        super().__init__()
        self.path, self.every, self.batches = path, every, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, "batches": self.batches}) + "\\n")

    def get_config(self):
        return {"path": self.path, "every": self.every}

    def get_state(self):
        return {"batches": self.batches}

    def set_state(self, state):
        self.batches = int(state["batches"])
'''

# Writes a file when imported: if it ever exists, something imported what a model file named.
CANARY = '''
import pathlib
pathlib.Path(__file__).with_name("CANARY_IMPORTED").write_text("imported")
'''

EPOCHS = 4
CONFIG = {
    "name": "plug",
    "seed": 7,
    "deterministic": True,
    "plugins": ["my_pkg.layers"],
    "data": {"dataset": "synthetic_binary", "options": {"num_examples": 48}, "batch_size": 4, "validation": 0.25},
    "model": {"type": "sequential", "layers": [
        {"dense": {"units": 8, "activation": "relu"}},
        {"my_pkg>Scale": {"init": 0.5}},
        {"dense": {"units": 4, "bias_initializer": {"my_pkg>Constant": {"value": 0.1}}}},
        {"dropout": 0.5},  # the result depends on the RNG state too
        {"dense": {"units": 1, "activation": "sigmoid"}}]},
    "loss": {"name": "my_pkg>FocalLoss", "task": "binary", "gamma": 2.0},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "metrics": ["accuracy", "my_pkg>MacroF1"],
    # One step per call: the paced child is killed at a chosen step, and steps end only between calls.
    "training": {"epochs": EPOCHS, "steps_per_execution": 1, "checkpoint": {"every_steps": EVERY_STEPS}},
}


def write_plugin_package(src: Path) -> Path:
    """my_pkg (the plugin) and canary_pkg (never to be imported) under `src`."""
    (src / "my_pkg").mkdir(parents=True)
    (src / "my_pkg" / "__init__.py").write_text("")
    (src / "my_pkg" / "layers.py").write_text(PLUGIN)
    (src / "canary_pkg").mkdir()
    (src / "canary_pkg" / "__init__.py").write_text(CANARY)
    (src / "broken_pkg.py").write_text("raise RuntimeError('this plugin is broken')\n")
    return src


def config_for(loop: str, record: Path, **changes) -> dict:
    training = {**CONFIG["training"], "loop": loop,
                "callbacks": [{"my_pkg>Recorder": {"path": str(record)}}]}
    return {**CONFIG, "training": training, **changes}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two paced processes (fit, custom), each SIGKILLed at a random mid-epoch step, while the
    uninterrupted baselines train here; then both are resumed with --plugin."""
    import signal

    root = tmp_path_factory.mktemp("plugins")
    src = write_plugin_package(root / "src")
    env = {**child_env(root), "PYTHONPATH": f"{child_env(root)['PYTHONPATH']}{os.pathsep}{src}"}
    rng = random.Random(os.environ.get("TFTRAIN_TEST_SEED"))
    children, w = {}, {"root": root, "src": src, "dirs": {}}
    for loop in ("fit", "custom"):
        for which in ("kill", "base"):
            (root / f"{which}_{loop}.yaml").write_text(
                yaml.safe_dump(config_for(loop, root / f"{which}_{loop}.jsonl")))
        children[loop] = Child(["run", "--runs-dir", "runs", f"kill_{loop}.yaml"], root, env, True,
                               rng.choice(MID_EPOCH_KILLS), signal.SIGKILL)
    sys.path.insert(0, str(src))
    try:
        w["base"] = {loop: InProcess(["run", "--runs-dir", "runs", f"base_{loop}.yaml"], root)
                     for loop in ("fit", "custom")}
        w["rc"] = {loop: child.wait() for loop, child in children.items()}
        w["children"] = children
        for loop in ("fit", "custom"):
            w["dirs"][f"kill_{loop}"] = children[loop].run_dir(root)
            w["dirs"][f"base_{loop}"] = w["base"][loop].run_dir(root)
        w["resumes"] = {loop: InProcess(["run", "--resume", w["dirs"][f"kill_{loop}"], "--plugin", "my_pkg.layers"],
                                        root) for loop in ("fit", "custom")}
        yield w
    finally:
        sys.path.remove(str(src))


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_a_plugin_run_killed_mid_epoch_resumes_bit_identical(world, loop):
    assert world["base"][loop].exit_code == 0, world["base"][loop]
    assert "macro_f1" in (world["dirs"][f"base_{loop}"] / "history.csv").read_text().splitlines()[0]
    assert world["rc"][loop] == -9, world["children"][loop]
    assert world["resumes"][loop].exit_code == 0, world["resumes"][loop]
    assert_identical(world["dirs"][f"kill_{loop}"], world["dirs"][f"base_{loop}"])
    # The recording callback resumed its own count: the last record matches the uninterrupted run's.
    last = [json.loads(line) for line in (world["root"] / f"kill_{loop}.jsonl").read_text().splitlines()][-1]
    base = [json.loads(line) for line in (world["root"] / f"base_{loop}.jsonl").read_text().splitlines()]
    assert last == base[-1] == {"epoch": EPOCHS - 1, "batches": 36}


def test_resume_without_the_plugin_is_one_line(world, cli):
    result = cli("run", "--resume", world["dirs"]["base_fit"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {world['dirs']['base_fit']}: its config names plugins (my_pkg.layers), which tftrain imports "
        "only when you name them: pass --plugin my_pkg.layers (only if you trust that code)"]


def test_evaluate_predict_and_export_with_the_plugin(world, cli, tmp_path):
    run = world["dirs"]["base_custom"]
    result = cli("evaluate", run)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "pass --plugin my_pkg.layers" in result.output
    result = cli("evaluate", run, "--plugin", "my_pkg.layers", "--json")
    assert result.exit_code == 0, result.output
    assert json.JSONDecoder().raw_decode(result.output[result.output.index("{"):])[0]["examples"] > 0
    import numpy as np

    np.save(tmp_path / "x.npy", np.array([[-3.0], [3.0]], dtype=np.float32))
    result = cli("predict", run, tmp_path / "x.npy", "--plugin", "my_pkg.layers", "--json")
    assert result.exit_code == 0, result.output
    result = cli("export", run, "--format", "saved_model", "--plugin", "my_pkg.layers", "--output",
                 tmp_path / "served")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "served" / "saved_model.pb").is_file()


def test_a_model_file_naming_a_class_no_plugin_gives_is_refused_without_importing(world, cli, tmp_path):
    """The canary module could be imported (its folder is on the path), but naming it in a model
    file is not naming it as a plugin: refused, and it never runs."""
    source = world["dirs"]["base_fit"] / "model.keras"
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(hostile, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                text = data.decode().replace('"module": "my_pkg.layers"', '"module": "canary_pkg"')
                data = text.replace("my_pkg>Scale", "canary_pkg>Scale").encode()
            dst.writestr(item, data)
    for args in ([], ["--plugin", "my_pkg.layers"]):
        result = cli("evaluate", world["dirs"]["base_fit"], "--checkpoint", hostile, *args)
        assert result.exit_code == 2, result.output
    assert "it uses 'canary_pkg>Scale', a class that is not part of Keras" in result.output
    assert "canary_pkg" not in sys.modules
    assert not (world["src"] / "canary_pkg" / "CANARY_IMPORTED").exists()


@pytest.mark.parametrize("change, expected", [
    ({"plugins": ["no_such_pkg.layers"]},
     'plugins[0]: plugin module "no_such_pkg.layers" not found: it must be importable'),
    ({"plugins": ["broken_pkg"]},
     'plugins[0]: plugin module "broken_pkg" failed to import: RuntimeError: this plugin is broken'),
    ({"plugins": ["../my_pkg/layers.py"]}, "plugins.0: expected a Python module name such as my_pkg.layers"),
    ({"loss": {"name": "my_pkg>Focal", "task": "binary"}},
     "loss: unknown loss \"my_pkg>Focal\": no plugin module registers it — did you mean 'my_pkg>FocalLoss'?"),
    ({"loss": {"name": "my_pkg>FocalLoss", "task": "binary", "gama": 2}},
     "loss: loss 'my_pkg>FocalLoss': unknown parameter \"gama\" — did you mean 'gamma'?"),
    ({"loss": {"name": "my_pkg>FocalLoss"}}, "loss.task: loss \"my_pkg>FocalLoss\" is a plugin's: say what it trains"),
    ({"metrics": ["my_pkg>Scale"]}, "\"my_pkg>Scale\" is registered, but it is not a metric"),
    ({"plugins": []}, "is a plugin's registered name, but the config names no plugins"),
    ({"model": {"type": "sequential", "layers": [{"my_pkg>Scale": {"int": 1.0}}, {"dense": 1}]}},
     "model.layers[0]: layer 'my_pkg>Scale': unknown parameter \"int\" — did you mean 'init'?"),
    ({"model": {"type": "sequential", "layers": [{"dense": {"units": 1, "bias_initializer": {"my_pkg>Constant": {"valu": 1}}}}]}},
     "model.layers[0] (dense).bias_initializer: initializer 'my_pkg>Constant': unknown parameter \"valu\" — did you mean 'value'?"),
    ({"model": {"type": "sequential", "layers": [{"dense": {"units": 1, "kernel_regularizer": "my_pkg>Constant"}}]}},
     "\"my_pkg>Constant\" is registered, but it is not a regularizer"),
    ({"model": {"type": "sequential", "layers": [{"lambda": {}}, {"dense": 1}]}}, "is refused"),
    ({"training": {"callbacks": ["my_pkg>Recorder"]}}, "callback 'my_pkg>Recorder': required parameter 'path'"),
])
def test_bad_plugin_configs_are_one_line(world, cli, write_config, change, expected):
    path = write_config({**config_for("fit", world["root"] / "unused.jsonl"), **change})
    result = cli("validate", path)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    lines = result.output.strip().splitlines()  # one line per problem: each registered name, with no plugins
    assert len(lines) == (4 if change == {"plugins": []} else 1), result.output


def test_plugin_flag_adds_to_the_config_and_show_lists_it(world, cli, write_config):
    config = {**config_for("fit", world["root"] / "unused.jsonl"), "plugins": []}
    path = write_config(config)
    result = cli("show", path, "--plugin", "my_pkg.layers")
    assert result.exit_code == 0, result.output
    assert "\nplugins:\n- my_pkg.layers\n" in result.output


def test_the_python_api_asks_for_plugins_too(world):
    import tftrain

    run = tftrain.load_run(world["dirs"]["base_fit"])
    assert run.status == "completed" and run.history[-1]["epoch"] == EPOCHS  # reading needs no plugin
    with pytest.raises(tftrain.UserError, match=r"pass plugins=\['my_pkg.layers'\]"):
        run.model()
    model = tftrain.load_run(world["dirs"]["base_fit"], plugins=["my_pkg.layers"]).model()
    assert any(type(layer).__name__ == "Scale" for layer in model.layers)


def test_sweep_and_tune_take_plugin_flags_to_every_member_and_trial(world, cli, write_config, tmp_path, monkeypatch):
    """`--plugin` on sweep (members in worker processes) and tune (trials in worker processes):
    the config names no plugins, the flag brings them to every run, each of which records them."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(world["src"])]))
    config = {**config_for("fit", tmp_path / "record.jsonl"), "plugins": []}
    config["training"] = {**config["training"], "epochs": 1}
    path = write_config(config)
    swept = cli("sweep", path, "--grid", "optimizer.learning_rate=0.01,0.02", "--jobs", "2",
                "--runs-dir", tmp_path / "sweeps", "--plugin", "my_pkg.layers")
    assert swept.exit_code == 0, swept.output
    members = [p for p in Path(swept.stdout.strip().splitlines()[-1]).iterdir() if (p / "config.yaml").is_file()]
    assert len(members) == 2
    for member in members:
        assert yaml.safe_load((member / "config.yaml").read_text())["plugins"] == ["my_pkg.layers"]
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"space": {"optimizer.learning_rate": {"loguniform": [0.001, 0.1]}},
                                     "trials": 1, "objective": {"metric": "loss"}}))
    tuned = cli("tune", path, "--space", space, "--runs-dir", tmp_path / "studies", "--plugin", "my_pkg.layers")
    assert tuned.exit_code == 0, tuned.output
    trials = [p for p in Path(tuned.stdout.strip().splitlines()[-1]).rglob("config.yaml") if p.parent.name != "."]
    assert trials and all(yaml.safe_load(p.read_text()).get("plugins") == ["my_pkg.layers"] for p in trials)
