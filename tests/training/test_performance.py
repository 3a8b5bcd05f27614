"""Speed options and their bookkeeping: steps_per_execution, jit_compile, precision, throughput,
and the TensorFlow-free CLI paths. (The speed itself is measured by bench/compare.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO  # noqa: E402
from tftrain.training.callbacks.throughput import ThroughputMeter
from tftrain.training.performance import precision_note, resolve_steps_per_execution


def test_help_validate_and_show_import_no_tensorflow():
    code = f"""
import json, sys
from tftrain.cli import app
for args in (["--help"], ["validate", "{REPO}/configs/mnist_dense.yaml"], ["show", "{REPO}/configs/linear_regression.yaml"]):
    try:
        app(args, prog_name="tftrain")
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
print(json.dumps(sorted(m for m in ("tensorflow", "keras", "numpy") if m in sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


MNIST_STEP, CIFAR_STEP = 101_632 * 32, 4_548_608 * 64  # forward multiply-adds of the seed configs' steps


@pytest.mark.parametrize("value, steps_per_epoch, whole_calls, macs, expected", [
    ("auto", 1875, False, MNIST_STEP, 512),  # MNIST: the last call of an epoch just runs short
    ("auto", 782, False, CIFAR_STEP, 6),  # CIFAR-10: a call of ~2G multiply-adds
    ("auto", 1875, False, None, 32),  # a model tftrain cannot cost
    ("auto", 200, False, MNIST_STEP, 200),  # sized by cost, not as a share of the epoch
    ("auto", 5000, False, 350_000, 512),  # a tiny model: at most AUTO_MAX_STEPS_PER_EXECUTION
    ("auto", 12, False, MNIST_STEP, 12),  # a short epoch: one call
    ("auto", 250, True, None, 25),  # whole calls: a divisor of the epoch (or log interval)
    ("auto", 1875, True, MNIST_STEP, 375),
    ("auto", 746, True, MNIST_STEP, 373),  # 746 = 2 * 373
    ("auto", 1000, True, MNIST_STEP, 500),
    (8, 1875, False, MNIST_STEP, 8),
    (64, 20, True, None, 20),  # capped at the interval
    (8, 25, True, None, 5),  # lowered to a divisor
])
def test_resolve_steps_per_execution(value, steps_per_epoch, whole_calls, macs, expected):
    assert resolve_steps_per_execution(value, steps_per_epoch, whole_calls, macs) == expected


@pytest.mark.parametrize("value, steps_per_epoch, whole_calls, every, expected", [
    ("auto", 1875, False, 1000, 500),  # a divisor of checkpoint.every_steps: a checkpoint every 1000 steps
    ("auto", 400, False, 30, 30),
    ("auto", 1875, False, 7, 7),
    ("auto", 1000, True, 64, 8),  # and of the epoch, for fit
    (6, 12, False, 4, 6),  # the user's number stands
])
def test_auto_calls_end_where_a_periodic_checkpoint_is_due(value, steps_per_epoch, whole_calls, every, expected):
    assert resolve_steps_per_execution(value, steps_per_epoch, whole_calls, MNIST_STEP, every) == expected


def test_precision_note_only_where_it_will_be_slow():
    assert precision_note("float32", has_gpu=False, flags=set()) is None
    assert precision_note("mixed_bfloat16", has_gpu=True, flags=set()) is None
    assert precision_note("mixed_float16", has_gpu=True, flags=set()) is None
    assert precision_note("mixed_bfloat16", has_gpu=False, flags={"avx2", "amx_bf16"}) is None
    assert "no bfloat16 units" in precision_note("mixed_bfloat16", has_gpu=False, flags={"avx2"})
    assert "meant for GPUs" in precision_note("mixed_float16", has_gpu=False, flags={"avx512_bf16"})


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def process_time(self):
        return self.now / 2


def test_throughput_leaves_out_the_first_call_and_the_time_between_epochs(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("tftrain.training.callbacks.throughput.time", clock)
    meter = ThroughputMeter(batch_size=10, examples_per_epoch=45)  # 5 steps, the last one short
    for epoch in range(2):
        clock.now += 100  # validation, checkpoints: not training
        meter.epoch_begin()
        for last_step, seconds in ((1, 3.0 if epoch == 0 else 1.0), (3, 1.0), (7, 0.5)):  # calls of 2, 2, 1+ steps
            clock.now += seconds
            meter.steps_done(last_step)
    result = meter.result()
    assert result["first_call_seconds"] == 3.0
    # After the first call: 20 + 5 (the short last batch; the call "past" the end counts nothing more) + 45.
    assert meter.examples == 70 and meter.seconds == 1.0 + 0.5 + 1.0 + 1.0 + 0.5
    assert result["examples_per_second"] == 70 / 4.0
    assert result["examples_per_second_with_first_call"] == pytest.approx(90 / 7.0, abs=0.05)
    assert result["cpu_us_per_example"] == pytest.approx(1e6 * 2.0 / 70, abs=0.05)
    assert result["examples"] == 90


def test_throughput_of_a_single_call_includes_it():
    meter = ThroughputMeter(batch_size=4)
    assert meter.result()["examples_per_second"] is None
    meter.epoch_begin()
    meter.steps_done(0)
    result = meter.result()
    assert result["examples"] == 4 and result["examples_per_second"] == result["examples_per_second_with_first_call"]


def _mnist_config(write_config, tiny_mnist, loop, **training):
    return write_config({
        "name": "perf", "data": {"dataset": "mnist", "path": str(tiny_mnist), "batch_size": 4},
        "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"], "training": {"loop": loop, "epochs": 2, **training},
    }, name=f"{loop}-{len(training)}.yaml")


def _summary(cli, config, runs: Path, *options) -> dict:
    result = cli("run", config, "--runs-dir", runs, *options)
    assert result.exit_code == 0, result.output
    return json.loads((Path(result.stdout.strip().splitlines()[-1]) / "summary.json").read_text())


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_steps_per_execution_changes_speed_not_results(cli, write_config, tiny_mnist, tmp_path, loop):
    many = _summary(cli, _mnist_config(write_config, tiny_mnist, loop, steps_per_execution=6), tmp_path / "runs")
    one = _summary(cli, _mnist_config(write_config, tiny_mnist, loop, steps_per_execution=1), tmp_path / "runs")
    assert many["steps_per_execution"] == 6 and one["steps_per_execution"] == 1
    assert one["jit_compile"] is False  # auto: Keras never uses XLA on a CPU-only machine
    assert many["final"] == pytest.approx(one["final"], rel=1e-6)
    assert many["steps_done"] == one["steps_done"] == 24
    # examples/second is training only, first call apart, and recorded with its details.
    rate = many["throughput"]
    assert many["examples_per_second"] == rate["examples_per_second"] > 0
    assert rate["examples"] == 96 and rate["first_call_seconds"] > 0
    assert rate["train_seconds"] < many["seconds"]


def test_custom_loop_with_xla(cli, write_config, tiny_mnist, tmp_path):
    # XLA compiles the step; the iterator loop around it stays a plain tf.function.
    summary = _summary(cli, _mnist_config(write_config, tiny_mnist, "custom", jit_compile=True, epochs=1),
                       tmp_path / "runs")
    assert summary["status"] == "completed" and summary["jit_compile"] is True
    assert summary["steps_done"] == 12


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_steps_mode_calls_never_cross_a_log_interval(cli, write_config, tiny_mnist, tmp_path, loop):
    config = write_config({
        "data": {"dataset": "mnist", "path": str(tiny_mnist), "batch_size": 4, "validation": "none"},
        "loss": "sparse_categorical_crossentropy",
        "training": {"loop": loop, "steps": 10, "log_every": 5, "steps_per_execution": 3},
    })
    summary = _summary(cli, config, tmp_path / "runs")
    if loop == "fit":  # fit runs whole calls: 3 would cross the end of each 5-step interval
        assert summary["steps_per_execution"] == 1
    assert summary["steps_done"] == 10 and summary["epochs_done"] == 2


def test_step_cost_is_counted_on_a_symbolic_build_of_any_model(tiny_mnist, tiny_images):
    """The cost behind `auto` comes from the model's own layers, counted without starting
    TensorFlow's runtime; it equals the multiply-adds of the real model's kernels."""
    import keras

    from tftrain.data import load_data
    from tftrain.models import model_spec
    from tftrain.spec.loading import load_config
    from tftrain.training.performance import symbolic_macs

    for config_file, sets, known in ((REPO / "configs/mnist_dense.yaml", [f"data.path={tiny_mnist}"], MNIST_STEP // 32),
                                     (REPO / "configs/cifar10_cnn.yaml", ["data.dataset=npz", f"data.path={tiny_images}"],
                                      CIFAR_STEP // 64)):
        config = load_config(config_file, sets)
        spec = model_spec(config, load_data(config, 0))
        counted = symbolic_macs(config.model, spec)
        model = config.model.build(spec)
        expected = 0
        for layer in model.layers:  # multiply-adds from Keras's own output shapes and kernels
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                out_positions = layer.output.shape[1] * layer.output.shape[2] if isinstance(layer, keras.layers.Conv2D) else 1
                expected += out_positions * int(layer.kernel.numpy().size)
        assert counted == expected == known
        assert [layer.name for layer in model.layers][:2] == ["inputs", "rescale"]  # names as without the count


def test_cost_of_layer_list_models_counts_residual_graphs_backbones_and_recurrent_steps():
    """Any model type is costed from its built layers: ResNet-20's convolutions, a backbone
    nested in the model, an LSTM once per time step (inside bidirectional)."""
    from tftrain.models import ModelSpec
    from tftrain.spec.loading import validate
    from tftrain.training.performance import symbolic_macs

    resnet = load_config_file("cifar10_resnet20.yaml")
    assert symbolic_macs(resnet.model, ModelSpec((32, 32, 3), 1 / 255, 10, "float32", "x", "classes")) == 40_813_184
    rnn = validate({"data": {"dataset": "npz", "path": "x.npz"}, "loss": "mse", "model": {
        "type": "sequential", "layers": [{"bidirectional": {"layer": {"lstm": 4}}}, {"dense": 2}]}})
    assert symbolic_macs(rnn.model, ModelSpec((10, 8), None, 2, "float32", "x", "regression")) == 10 * 2 * (8 + 4) * 16 + 8 * 2
    backbone = validate({"data": {"dataset": "npz", "path": "x.npz"}, "loss": {"name": "sparse_categorical_crossentropy",
                                                                              "from_logits": True},
                         "model": {"type": "application", "name": "mobilenet_v3_small", "weights": "imagenet"}})
    macs = symbolic_macs(backbone.model, ModelSpec((32, 32, 3), None, 10, "float32", "x", "classes"))
    assert macs is not None and macs > 1_000_000  # built without reading any weights file (none exists here)


def test_counting_a_model_that_makes_tensors_as_it_builds_leaves_the_thread_count_settable():
    """Normalization (a table's columns, data.normalize: per_channel) makes tensors as it builds:
    counting its cost must not start TensorFlow's runtime, or cpu_threads: auto could no longer
    set the thread count (a fresh process: the test process's runtime is already up)."""
    code = """
from tftrain.models import ModelSpec
from tftrain.spec.loading import validate
from tftrain.training.performance import apply_cpu_threads, symbolic_macs
config = validate({"data": {"dataset": "npz", "path": "x.npz"}, "loss": "mse", "model": {"type": "dense", "hidden": [8]}})
spec = ModelSpec((3,), None, 1, "float32", "x", "regression", normalization=((0.0, 1.0, 2.0), (1.0, 1.0, 4.0)))
print(symbolic_macs(config.model, spec), apply_cpu_threads(1))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(3 * 8 + 8), "1"]  # the cost, and the one thread asked for


def load_config_file(name: str):
    from tftrain.spec.loading import load_config

    return load_config(REPO / "configs" / name)


def test_cpu_threads_auto_uses_one_thread_for_tiny_steps_only(monkeypatch):
    from tftrain.training.performance import SMALL_STEP_MACS, resolve_cpu_threads

    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    assert resolve_cpu_threads("auto", 101_632 * 32, has_gpu=False) == 1  # the MNIST dense model
    assert resolve_cpu_threads("auto", 4_548_608 * 64, has_gpu=False) is None  # the CIFAR CNN: one per core
    assert resolve_cpu_threads("auto", SMALL_STEP_MACS // 2, has_gpu=True) is None
    assert resolve_cpu_threads("auto", None, has_gpu=False) is None
    assert resolve_cpu_threads(3, 10, has_gpu=True) == 3
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")  # the user's own setting wins (set explicitly, recorded)
    assert resolve_cpu_threads("auto", 10, has_gpu=False) == 2


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_in_the_custom_loop(cli, write_config, tiny_mnist, tmp_path, precision):
    # mixed_float16 goes through Keras's LossScaleOptimizer (scale_loss, then unscaled gradients).
    config = _mnist_config(write_config, tiny_mnist, "custom", precision=precision, epochs=1)
    result = cli("run", config, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    summary = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "summary.json").read_text())
    assert summary["precision"] == precision and summary["status"] == "completed"
    assert all(v == v and abs(v) < 1e6 for v in summary["final"].values())  # finite
    import tensorflow as tf

    # Warned exactly where it will be slow (here: a CPU without bfloat16 units).
    expected = precision_note(precision, bool(tf.config.list_physical_devices("GPU")))
    assert (f"warning: training.precision {precision}" in result.output) == (expected is not None)


def test_a_deterministic_run_leaves_no_determinism_behind(cli, write_config, tiny_mnist, tmp_path):
    # Op determinism is process-wide and turns XLA off; a later run in the same process must not inherit it.
    config = _mnist_config(write_config, tiny_mnist, "custom", epochs=1)
    assert _summary(cli, config, tmp_path / "a", "--set", "deterministic=true")["status"] == "completed"
    summary = _summary(cli, _mnist_config(write_config, tiny_mnist, "custom", jit_compile=True, epochs=1),
                       tmp_path / "b")
    assert summary["jit_compile"] is True
