"""Training recipes (issue 16): learning-rate schedules with warmup, reduce_lr_on_plateau, EMA,
gradient accumulation, weight decay and clipping, class weights and label smoothing,
augmentation in the pipeline and in the model, per-channel normalization.

For every recipe, on tiny data, in both loops: a run killed for real part-way through a warmup, a
patience, an accumulation (SIGKILL of a separate process, resumed from its newest periodic
checkpoint) ends bit-identical to one that never stopped (a SIGTERM stop saves its state with
the same ResumeCallback._save, which tests/resume/test_resume.py checks); and the two loops end
with the same weights to 1e-5. Bad input is one line, exit 2, nothing written.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from tests.conftest import REPO
from tests.kit import Child, InProcess, assert_identical, child_env, summary

EPOCHS, STEPS_PER_EPOCH = 4, 6  # 32 examples, a quarter held out for validation, batch 4
# SIGKILL after step 18 (the end of epoch 3's last call, before its epoch-end checkpoint): the
# newest checkpoint is the periodic one at step 15 (every_steps 3; epoch 3, step 3: inside a
# warmup of 20, a patience of 2, an accumulation of 4), and steps 16-18 are trained again after
# the resume.
KILL_AT = 18

BASE = {
    "name": "recipe", "seed": 5, "deterministic": True,
    "data": {"dataset": "synthetic_binary", "options": {"num_examples": 32}, "batch_size": 4, "validation": 0.25},
    "model": {"type": "dense", "hidden": [8], "dropout": 0.25, "output_activation": "sigmoid"},
    "loss": "binary_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "metrics": ["accuracy"],
    # Three steps per compiled call: a schedule must still change the rate at every step.
    "training": {"epochs": EPOCHS, "steps_per_execution": 3, "checkpoint": {"every_steps": 3}},
}
AUGMENT = [{"random_flip": {"mode": "horizontal"}}, {"random_translation": {"height_factor": 0.2, "width_factor": 0.2}},
           {"random_contrast": {"factor": 0.3}}]


def _merge(base: dict, patch: dict) -> dict:
    """`patch` deep-merged over `base`; `options` (a dataset's own) and lists are replaced."""
    out = dict(base)
    for key, value in patch.items():
        merge = isinstance(value, dict) and isinstance(base.get(key), dict) and key != "options"
        out[key] = _merge(base[key], value) if merge else value
    return out


FEATURES = {
    # tftrain's LinearWarmup before a Keras schedule; stopped inside the warmup
    "schedule_warmup": {"optimizer": {"learning_rate": {
        "schedule": "exponential_decay", "initial_learning_rate": 0.02, "decay_rate": 0.1, "warmup_steps": 20,
        "warmup_learning_rate": 0.001}}},
    # epoch 1 sets the best, epoch 2 waits (min_delta cannot be met), the stop comes in epoch 3
    # (one epoch of patience used), the rate drops at its end
    "plateau": {"training": {"reduce_lr_on_plateau": {"monitor": "val_loss", "patience": 2, "min_delta": 100.0}}},
    "ema": {"optimizer": {"use_ema": True, "ema_momentum": 0.8}},
    # stopped after 15 batches: 3 weight updates and 3 gradients accumulated; Keras clips and
    # decays at each update
    "accumulation_decay_clipping": {"optimizer": {"gradient_accumulation_steps": 4, "weight_decay": 0.05,
                                                  "global_clipnorm": 0.5}},
    "class_weights": {"loss": {"name": "binary_crossentropy", "label_smoothing": 0.1},
                      "training": {"class_weight": {0: 1.0, 1: 3.0}}},
    "augmentation_pipeline": {"data": {"augmentation": AUGMENT}},
    "augmentation_model": {"data": {"augmentation": AUGMENT, "augmentation_on": "model"}},
}
IMAGE_FEATURES = {"augmentation_pipeline", "augmentation_model"}


@pytest.fixture
def images(tmp_path) -> Path:
    """An .npz of 32 random 8x8x3 uint8 images labelled 0/1 by their mean brightness."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    y = (x.reshape(40, -1).mean(axis=1) > 127).astype(np.float32)
    path = tmp_path / "images.npz"
    np.savez(path, x_train=x[:32], y_train=y[:32], x_test=x[32:], y_test=y[32:])
    return path


def feature_config(feature: str, loop: str, images: Path | None = None):
    from tftrain.spec.loading import validate

    raw = _merge(_merge(BASE, FEATURES[feature]), {"training": {"loop": loop}})
    if feature in IMAGE_FEATURES:
        raw = _merge(raw, {"data": {"dataset": "npz", "path": str(images), "options": {}}})
    return validate(raw)


def _quiet():
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _final_weights(run: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


def _history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _killed_children(tmp_path: Path, feature: str, images: Path) -> dict[str, Child]:
    """Per loop, a separate paced tftrain process running the feature's config, sent SIGKILL
    after step KILL_AT."""
    env = child_env(tmp_path)
    children = {}
    for loop in ("fit", "custom"):
        config = tmp_path / f"killed_{loop}.yaml"
        config.write_text(yaml.safe_dump(feature_config(feature, loop, images).model_dump(mode="json")))
        children[loop] = Child(["run", config.name, "--runs-dir", f"killed_{loop}"], tmp_path, env, paced=True,
                               at=KILL_AT, signal=signal.SIGKILL)
    return children


@pytest.mark.parametrize("feature", list(FEATURES))
def test_recipe_resumes_exactly_in_both_loops_and_the_loops_agree(tmp_path, images, feature):
    """Both loops: a separate process killed with SIGKILL after step KILL_AT (mid-epoch, inside the
    warmup / patience / accumulation) and resumed from step 15 ends bit-identical to an
    uninterrupted run; and the two uninterrupted runs end with the same weights (1e-5)."""
    from tftrain.training.session import run_training

    children = _killed_children(tmp_path, feature, images)  # they train while this process does
    bases = {loop: run_training(feature_config(feature, loop, images), tmp_path / f"base_{loop}",
                                console=_quiet()).path for loop in ("fit", "custom")}
    for loop, child in children.items():
        assert child.wait() == -signal.SIGKILL, child
        killed = child.run_dir(tmp_path)
        assert summary(killed)["status"] == "running"  # nothing ran at SIGKILL
        resumed = InProcess(["run", "--resume", killed], tmp_path)
        assert resumed.exit_code == 0, resumed
        assert "resuming from epoch 3, step 3" in resumed.output, resumed
        assert_identical(killed, bases[loop])
    for a, b in zip(_final_weights(bases["fit"]), _final_weights(bases["custom"]), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0, err_msg=f"{feature}: fit and custom differ")
    fit, custom = _history(bases["fit"]), _history(bases["custom"])
    for row_fit, row_custom in zip(fit, custom, strict=True):
        assert row_fit.keys() == row_custom.keys()
        for key in row_fit:
            assert row_fit[key] == pytest.approx(row_custom[key], abs=1e-5), key
    _check_feature_effect(feature, bases["fit"], fit)


def _check_feature_effect(feature: str, run: Path, rows: list[dict[str, float]]) -> None:
    """What each recipe must visibly have done (so that the test above cannot pass by ignoring it)."""
    info = summary(run)
    assert info["steps_done"] == EPOCHS * STEPS_PER_EPOCH
    lrs = [row["lr"] for row in rows]
    if feature == "schedule_warmup":  # warmup 0.001 -> 0.02*0.1**(20/24) over 20 steps, then the decay
        peak = 0.02 * 0.1 ** (20 / 24)
        expected = [0.001 + (peak - 0.001) * 5 / 20, 0.001 + (peak - 0.001) * 11 / 20,
                    0.001 + (peak - 0.001) * 17 / 20, 0.02 * 0.1 ** (23 / 24)]
        assert lrs == pytest.approx(expected, rel=1e-5)
    if feature == "plateau":  # epochs 2 and 3 did not improve by 100: reduced at the end of epoch 3
        assert lrs == pytest.approx([0.01, 0.01, 0.01, 0.001], rel=1e-6)
    if feature == "accumulation_decay_clipping":  # 24 batches, 6 weight updates
        optimizer = keras.saving.load_model(run / "model.keras").optimizer
        assert optimizer.gradient_accumulation_steps == 4 and optimizer.global_clipnorm == 0.5
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == EPOCHS * STEPS_PER_EPOCH // 4
    if feature == "ema":  # the saved model holds the averaged weights, which is what validation used
        model = keras.saving.load_model(run / "model.keras")
        assert model.optimizer.use_ema
    if feature == "augmentation_model":
        names = [layer.__class__.__name__ for layer in keras.saving.load_model(run / "model.keras").layers]
        assert names[1:4] == ["RandomFlip", "RandomTranslation", "RandomContrast"]


def test_a_warmup_schedule_is_saved_as_keras_own_and_snapshots_evaluate(tmp_path, cli):
    """tftrain's LinearWarmup never reaches a .keras file: the snapshots hold Keras's own schedule
    (what the rate is from the warmup's end on), load in safe mode with compile, and evaluate."""
    from tftrain.security import refuse_code
    from tftrain.training.session import run_training

    run = run_training(feature_config("schedule_warmup", "fit"), tmp_path / "runs", console=_quiet()).path
    for name in ("model.keras", "checkpoints/best.keras", "checkpoints/last.keras"):
        refuse_code(run / name)  # tftrain's own check: nothing but Keras's classes
        model = keras.saving.load_model(run / name, safe_mode=True)  # plain Keras, compiled, no custom objects
        rate = model.optimizer.get_config()["learning_rate"]
        assert rate["class_name"] == "ExponentialDecay" and rate["module"] == "keras.optimizers.schedules"
        assert rate["config"]["decay_steps"] == EPOCHS * STEPS_PER_EPOCH
    result = cli("evaluate", run, "--checkpoint", "best", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["examples"] == 8


def test_cosine_decay_uses_keras_warmup_and_auto_decays_to_the_end_of_the_run():
    """Keras's own warmup (linear from initial_learning_rate to warmup_target), then a cosine over
    the rest of the run: `decay_steps: auto` is the run's steps after the warmup."""
    from tftrain.spec.loading import validate
    from tftrain.training.schedules import build_learning_rate

    rate = {"schedule": "cosine_decay", "initial_learning_rate": 0.0, "warmup_target": 0.02, "warmup_steps": 20}
    config = validate(_merge(BASE, {"optimizer": {"learning_rate": rate}}))
    schedule = build_learning_rate(config.optimizer, total_steps=24, steps_per_epoch=6)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)  # Keras's own class, nothing wrapped
    values = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 5, 20, 22, 24)]
    assert values == pytest.approx([0.0, 0.005, 0.02, 0.02 * 0.5 * (1 + math.cos(math.pi / 2)), 0.0], abs=1e-7)


# Each schedule with a warmup of 5 steps in a run of 24 (6 steps an epoch): tftrain's keys, and
# Keras's own class and arguments (`decay_steps: auto` resolved), which is what the schedule must
# be from the warmup's end on.
WARMED_UP = {
    "exponential_decay": ({"initial_learning_rate": 0.1, "decay_rate": 0.5},
                          ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 24})),
    "piecewise_constant": ({"boundary_epochs": [1, 3], "values": [0.1, 0.05, 0.01]},
                           ("PiecewiseConstantDecay", {"boundaries": [6, 18], "values": [0.1, 0.05, 0.01]})),
    "polynomial_decay": ({"initial_learning_rate": 0.1, "power": 2.0},
                         ("PolynomialDecay", {"initial_learning_rate": 0.1, "power": 2.0, "decay_steps": 24})),
    "inverse_time_decay": ({"initial_learning_rate": 0.1, "decay_rate": 2.0, "staircase": True},
                           ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_rate": 2.0, "decay_steps": 24,
                                                 "staircase": True})),
    "cosine_decay_restarts": ({"initial_learning_rate": 0.1, "first_decay_steps": 7},
                              ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 7})),
}


@pytest.mark.parametrize("name", list(WARMED_UP))
def test_every_schedule_warms_up_linearly_then_is_keras_own(name):
    """Every schedule takes `warmup_steps`: linear from `warmup_learning_rate` to the schedule's
    value at the warmup's end, then exactly Keras's schedule (undelayed), with `decay_steps: auto`
    the run's length and `boundary_epochs` counted in steps."""
    from tftrain.spec.loading import validate
    from tftrain.spec.schedules import SCHEDULES
    from tftrain.training.schedules import build_learning_rate

    ours, (class_name, keras_args) = WARMED_UP[name]
    assert SCHEDULES[name][0] == class_name
    rate = {"schedule": name, **ours, "warmup_steps": 5, "warmup_learning_rate": 0.001}
    config = validate(_merge(BASE, {"optimizer": {"learning_rate": rate}}))
    schedule = build_learning_rate(config.optimizer, total_steps=24, steps_per_epoch=6)
    keras_own = getattr(keras.optimizers.schedules, class_name)(**keras_args)

    def value(fn, step):
        return float(keras.ops.convert_to_numpy(fn(step)))

    peak = value(keras_own, 5)
    warmup = [value(schedule, step) for step in range(5)]
    assert warmup == pytest.approx([0.001 + (peak - 0.001) * step / 5 for step in range(5)], rel=1e-6)
    after = [value(schedule, step) for step in range(5, 25)]
    assert after == pytest.approx([value(keras_own, step) for step in range(5, 25)], rel=1e-6)
    assert len(set(after)) > 1  # it does decay after the warmup


def test_the_rate_each_log_point_used_is_in_history_and_tensorboard(tmp_path):
    """history.csv and TensorBoard's epoch and batch points carry the rate that the point's last
    step trained with (Keras evaluates the schedule at the step count before each update); and
    the schedule changes the rate at every step inside a compiled call of 3: the weights are
    those of one step per call."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    rate = {"schedule": "piecewise_constant", "boundaries": [4, 8], "values": [0.1, 0.05, 0.01], "warmup_steps": 2}
    # step index i trains at: warmup 0.0, 0.05 (half-way to 0.1), then 0.1 while i <= 4, 0.05 while i <= 8, 0.01
    used = [0.0, 0.05, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.01, 0.01, 0.01]
    runs = {}
    for spe in (1, 3):
        raw = _merge(BASE, {"optimizer": {"name": "sgd", "learning_rate": rate},
                            "training": {"epochs": 2, "steps_per_execution": spe}})
        runs[spe] = run = run_training(validate(raw), tmp_path / f"spe{spe}", console=_quiet()).path
        assert [row["lr"] for row in _history(run)] == pytest.approx([used[5], used[11]])
        events = EventAccumulator(str(run / "tensorboard" / "train"), size_guidance={"tensors": 0})  # keep all
        events.Reload()
        points = {tag: {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}
                  for tag in ("epoch_learning_rate", "batch_learning_rate")}
        assert points["epoch_learning_rate"] == {1: pytest.approx(used[5]), 2: pytest.approx(used[11])}
        assert points["batch_learning_rate"] == {s: pytest.approx(used[s - 1]) for s in range(spe, 13, spe)}
    for a, b in zip(_final_weights(runs[1]), _final_weights(runs[3]), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_pipeline_augmentation_is_a_pure_function_of_seed_and_step():
    """Every augmentation layer, in a parallel tf.data map: the same (seed, step) gives the same
    batch in any order and from any starting step; other steps differ; Keras's own seed
    generators are never advanced (they are not where the draws come from)."""
    import tensorflow as tf

    from tftrain.data.pipeline.augmentation import PipelineAugmentation
    from tftrain.spec import catalog

    params = {"random_crop": {"height": 16, "width": 16}, "random_translation": {"height_factor": 0.2, "width_factor": 0.2},
              "random_rotation": {"factor": 0.2}, "random_zoom": {"height_factor": 0.2},
              "random_contrast": {"factor": 0.3, "value_range": [0, 255]},
              "random_brightness": {"factor": 0.3, "value_range": [0, 255]}, "rand_augment": {"value_range": [0, 255]},
              "random_erasing": {"value_range": [0, 255]}}
    layers = [(class_name, params.get(name, {})) for name, (class_name, _) in catalog.AUGMENTATIONS.items()]
    augment = PipelineAugmentation(layers, seed=11)
    states = [keras.ops.convert_to_numpy(v).copy() for _, layer in augment.layers for v in layer.variables]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8))
    y = tf.one_hot(tf.range(6) % 3, 3)

    def stream(start):
        return tf.data.Dataset.range(start, 6).map(lambda s: augment(x, y, s), num_parallel_calls=4,
                                                   deterministic=True)

    def batches(dataset):
        return [(a.numpy(), b.numpy()) for a, b in dataset]

    whole = stream(0)  # each map traces every layer once: build two streams only
    first, again, resumed = batches(whole), batches(whole), batches(stream(3))
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(first[3:], resumed, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not np.array_equal(first[0][0], first[1][0])
    assert not np.array_equal(first[0][1], y.numpy())  # mix_up / cut_mix mixed the labels
    after = [keras.ops.convert_to_numpy(v) for _, layer in augment.layers for v in layer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(states, after, strict=True))


def test_pipeline_flip_gives_keras_random_flips_output():
    """The pipeline's RandomFlip (a cheaper select) flips exactly the images Keras's own layer
    flips, the same way, in every mode and both data formats, given the same draws."""
    import tensorflow as tf

    from tftrain.data.pipeline.pipeline_layers import pipeline_layer_classes

    rng = np.random.default_rng(3)
    images = tf.constant(rng.integers(0, 256, (8, 5, 6, 3), dtype=np.uint8))
    for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
        for data_format in ("channels_last", "channels_first"):
            ours = pipeline_layer_classes()["RandomFlip"](mode=mode, data_format=data_format)
            keras_own = keras.layers.RandomFlip(mode=mode, data_format=data_format)
            flips = tf.constant(rng.random((8, 1, 1, 1)) < 0.5)
            assert 0 < int(tf.reduce_sum(tf.cast(flips, tf.int32))) < 8
            transformation = {"flips": flips, "input_shape": tf.shape(images)}
            expected = keras_own.transform_images(images, transformation).numpy()
            got = ours.transform_images(images, transformation).numpy()
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (mode, data_format)
            assert not np.array_equal(got, ours.transform_images(images, None, training=False).numpy())


def test_pipeline_translation_gives_keras_random_translations_output():
    """The pipeline's RandomTranslation (gathers of rows and columns) gives exactly the output of
    Keras's own layer (TensorFlow's projective-transform op) for the same shifts: both
    interpolations, every fill mode, shifts past the image's size and exact half pixels, in
    float32 and in bfloat16 (a mixed-precision policy's compute dtype)."""
    import tensorflow as tf

    from tftrain.data.pipeline.pipeline_layers import pipeline_layer_classes

    rng = np.random.default_rng(5)
    images = tf.constant(rng.integers(0, 256, (12, 7, 9, 3), dtype=np.uint8))
    shifts = [rng.uniform(-0.9, 0.9, (12, 2)), rng.uniform(-20, 20, (12, 2)),  # inside, and far past the edges
              rng.integers(-12, 13, (12, 2)) / 2]  # whole and half pixels: where rounding ties
    for interpolation, fill_mode, dtype in itertools.product(("nearest", "bilinear"),
                                                             ("reflect", "wrap", "nearest", "constant"),
                                                             ("float32", "bfloat16")):
        args = {"height_factor": 0.5, "width_factor": 0.5, "interpolation": interpolation, "fill_mode": fill_mode,
                "fill_value": 7.0, "dtype": dtype}
        ours, keras_own = pipeline_layer_classes()["RandomTranslation"](**args), keras.layers.RandomTranslation(**args)
        for shift in shifts:
            transformation = {"translations": tf.constant(shift, tf.float32), "input_shape": tf.shape(images)}
            expected = keras_own.transform_images(images, transformation).numpy()
            got = ours.transform_images(images, transformation).numpy()
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (interpolation, fill_mode, dtype)
            assert not np.array_equal(got, ours.transform_images(images, None, training=False).numpy())


def test_augmentation_never_touches_validation_evaluate_or_predict(tmp_path, images, cli):
    """Validation batches are the raw split; a model with augmentation layers is the identity on
    them at inference (predict twice: the same numbers, equal to the model without them)."""
    from tftrain.data import load_data
    from tftrain.data.pipeline.augmentation import layer_arguments
    from tftrain.data.pipeline.batches import build_pipelines
    from tftrain.data.pipeline.transforms import training_transform
    from tftrain.training.session import run_training

    config = feature_config("augmentation_pipeline", "fit", images)
    data = load_data(config, config.seed)
    transform = training_transform(config, layer_arguments(config, data), None, config.seed)
    pipes = build_pipelines(data, config, config.seed, transform)
    (x, _), = pipes.validation.take(1)
    assert x.dtype == np.uint8  # untouched; training batches are augmented floats
    assert next(iter(pipes.train(0)))[0].dtype == np.float32

    run = run_training(feature_config("augmentation_model", "custom", images), tmp_path / "runs",
                       console=_quiet()).path
    model = keras.saving.load_model(run / "model.keras")
    batch = np.load(images)["x_test"]
    after_augmentation = keras.Model(model.inputs[0], model.get_layer("rescale").input)
    assert np.array_equal(keras.ops.convert_to_numpy(after_augmentation(batch, training=False)),
                          batch.astype(np.float32))
    np.save(tmp_path / "x.npy", batch)
    outputs = [json.loads(cli("predict", run, tmp_path / "x.npy", "--json").stdout) for _ in range(2)]
    assert outputs[0] == outputs[1]
    assert [p["probability"] for p in outputs[0]["predictions"]] == pytest.approx(
        [float(p) for p in model.predict(batch, verbose=0).reshape(-1)], rel=1e-5)


def test_csv_features_are_standardized_on_the_training_split_inside_the_model(tmp_path, cli, write_config):
    """`data.normalize: per_channel` on a CSV: a Normalization layer with each column's mean and
    variance over the training split (not the validation fraction), saved in the model, so
    predict takes raw rows. Features on scales 1e-3 .. 1e4 train as well as unit-scale ones."""
    rng = np.random.default_rng(4)
    n = 80
    x = rng.normal(size=(n, 3)) * np.array([1e-3, 1.0, 1e4]) + np.array([5.0, -2.0, 3e4])
    y = ((x[:, 0] - 5.0) / 1e-3 + (x[:, 2] - 3e4) / 1e4 > 0).astype(int)
    path = tmp_path / "table.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tiny", "unit", "huge", "label"])
        writer.writerows([[*map(repr, row), label] for row, label in zip(x.tolist(), y.tolist())])
    config = write_config({
        "name": "csv", "seed": 1, "data": {"dataset": "csv", "path": str(path), "options": {"label": "label"},
                                            "validation": 0.25, "batch_size": 8, "normalize": "per_channel"},
        "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": 0.05}, "metrics": ["accuracy"], "training": {"epochs": 15}})
    result = cli("run", config, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    model = keras.saving.load_model(run / "model.keras")
    layer = model.get_layer("normalize")
    order = np.random.default_rng(1).permutation(n)  # the validation fraction's split (seeded)
    train = np.sort(order[round(n * 0.25):])
    features = x.astype(np.float32)[train]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.mean).reshape(-1), features.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.variance).reshape(-1), features.var(axis=0), rtol=1e-4)
    assert _history(run)[-1]["val_accuracy"] >= 0.9
    (tmp_path / "rows.csv").write_text("tiny,unit,huge\n" + "\n".join(",".join(map(repr, r)) for r in x[:4].tolist()))
    predicted = json.loads(cli("predict", run, tmp_path / "rows.csv", "--json").stdout)["predictions"]
    expected = model.predict(x[:4].astype(np.float32), verbose=0)
    assert [p["class"] for p in predicted] == [int(c) for c in expected.argmax(axis=1)]


def test_balanced_class_weights_are_scikit_learns(tmp_path):
    """scikit-learn's compute_class_weight("balanced"): n / (classes present * count)."""
    from tftrain.data.base import LoadedData
    from tftrain.data.pipeline.class_weights import class_weights
    from tftrain.spec.loading import validate

    y = np.array([0] * 10 + [1] * 3 + [3] * 7, dtype=np.int32)  # class 2 is absent
    data = LoadedData(np.zeros((20, 2), np.float32), y, num_classes=4)
    config = validate(_merge(BASE, {"loss": "sparse_categorical_crossentropy", "model": {"output_activation": "softmax"},
                                    "training": {"class_weight": "balanced"}}))
    weights = class_weights(config, data, y)
    assert weights == pytest.approx([20 / (3 * 10), 20 / (3 * 3), 1.0, 20 / (3 * 7)])  # absent class 2: 1.0


BAD_AT_VALIDATE = [
    ({"optimizer": {"learning_rate": {"schedule": "cosine", "initial_learning_rate": 0.1}}},
     "optimizer.learning_rate.schedule: unknown schedule \"cosine\" — did you mean 'cosine_decay'?"),
    ({"optimizer": {"learning_rate": {"schedule": ["cosine_decay"], "initial_learning_rate": 0.1}}},
     "optimizer.learning_rate.schedule: expected a schedule name, got a list"),
    ({"data": {"augmentation": ["random_flp"]}},
     "data.augmentation.0: unknown augmentation \"random_flp\" — did you mean 'random_flip'?"),
    ({"optimizer": {"learning_rate": {"schedule": "piecewise_constant", "boundaries": [10, 5], "values": [1.0, 0.5, 0.1]}}},
     "optimizer.learning_rate.boundaries: expected strictly increasing values, got [10, 5]"),
    ({"optimizer": {"learning_rate": {"schedule": "piecewise_constant", "boundaries": [5, 10], "values": [1.0, 0.5]}}},
     "optimizer.learning_rate.values: expected 3 values (one more than the 2 boundaries), got 2"),
    ({"optimizer": {"learning_rate": {"schedule": "exponential_decay", "initial_learning_rate": 0.1, "decay_rate": 0.5,
                                      "warmup_steps": 30}}, "training": {"steps": 20}},
     "optimizer.learning_rate.warmup_steps: 30 warmup steps, but the run trains 20 steps (training.steps)"),
    # decay_steps: auto (the run's length) where sampling has no end: the run must say its length
    ({"optimizer": {"learning_rate": {"schedule": "exponential_decay", "initial_learning_rate": 0.1, "decay_rate": 0.5}},
      "training": {"sampling": "with_replacement"}},
     "sampling 'with_replacement' draws examples forever: set training.steps"),
    ({"optimizer": {"learning_rate": {"schedule": "cosine_decay", "initial_learning_rate": 0.0, "warmup_steps": 5}}},
     "optimizer.learning_rate.warmup_target: required with warmup_steps"),
    ({"optimizer": {"learning_rate": {"schedule": "exponential_decay", "initial_learning_rate": 0.1, "decay_rate": 0.5}},
      "training": {"reduce_lr_on_plateau": {}}},
     "training.reduce_lr_on_plateau: cannot be combined with a learning-rate schedule (exponential_decay)"),
    ({"loss": "mse", "model": {"output_activation": None}, "training": {"class_weight": "balanced"}},
     "training.class_weight: weights classes, but loss mean_squared_error trains a regression"),
    ({"loss": "sparse_categorical_crossentropy", "data": {"augmentation": ["mix_up"]}},
     "data.augmentation.0.mix_up: mixes labels, so it needs one-hot labels"),
    ({"data": {"augmentation": [{"random_flip": {"seed": 3}}]}},
     "data.augmentation.0.random_flip: unknown parameter 'seed' (tftrain seeds every layer from the run's seed)"),
    ({"loss": {"name": "sparse_categorical_crossentropy", "label_smoothing": 0.1}},
     "Keras's sparse loss has no label smoothing: use categorical_crossentropy"),
    ({"training": {"class_weight": {0: -1.0}}}, "training.class_weight.0: expected a weight >= 0, got -1.0"),
]


@pytest.mark.parametrize("patch, message", BAD_AT_VALIDATE, ids=[m.split(":")[0] + str(i) for i, (_, m) in
                                                                  enumerate(BAD_AT_VALIDATE)])
def test_bad_recipes_are_refused_at_validate(cli, write_config, patch, message):
    result = cli("validate", write_config(_merge(BASE, patch)))
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def _tabular_csv(tmp_path: Path) -> str:
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(16)))
    return str(path)


BAD_AT_RUN = [
    ("warmup", {"optimizer": {"learning_rate": {"schedule": "polynomial_decay", "initial_learning_rate": 0.1,
                                                "warmup_steps": 24}}},
     "optimizer.learning_rate.warmup_steps: 24 warmup steps, but the run trains 24 steps"),
    ("class", {"training": {"class_weight": {0: 1.0, 2: 5.0}}},
     "training.class_weight: class 2 is not a class of synthetic_binary, whose classes are 0..1"),
    ("class_name", {"training": {"class_weight": {"cat": 2.0}}},
     "training.class_weight: class 'cat' is a name, but the classes of synthetic_binary are numbered 0..1"),
    ("tabular", {"data": {"dataset": "csv", "path": "CSV", "options": {"label": "label"},
                          "augmentation": ["random_flip"]}, "loss": "sparse_categorical_crossentropy",
                 "model": {"output_activation": "softmax"}},
     "data.augmentation: image augmentation needs images (height, width[, channels]); the examples of csv have shape (2,)"),
    ("no_channel", {"data": {"dataset": "npz", "path": "GREY", "options": {}, "normalize": "per_channel"}},
     "data.normalize: per_channel needs a channel axis; the examples of npz have shape (6, 6)"),
    ("plateau", {"training": {"reduce_lr_on_plateau": {"monitor": "val_acuracy"}}},
     "training.reduce_lr_on_plateau.monitor: the run does not log \"val_acuracy\" — did you mean 'val_accuracy'?"),
    ("plateau_no_validation", {"data": {"validation": "none"}, "training": {"reduce_lr_on_plateau": {}}},
     "the run does not log \"val_loss\" (the run has no validation data) — did you mean 'loss'?"),
    ("crop", {"data": {"dataset": "npz", "path": "GREY", "options": {},
                       "augmentation": [{"random_crop": {"height": 4, "width": 4}}]}},
     "data.augmentation.0.random_crop: a 4x4 crop of the 6x6 images of npz in the pipeline"),
    ("keras_argument", {"data": {"dataset": "npz", "path": "GREY", "options": {},
                                 "augmentation": [{"random_rotation": {"factor": 7.0}}]}},
     "data.augmentation.0.random_rotation:"),
]


@pytest.mark.parametrize("patch, message", [(p, m) for _, p, m in BAD_AT_RUN], ids=[i for i, _, _ in BAD_AT_RUN])
def test_bad_recipes_for_the_data_are_refused_before_anything_is_written(cli, write_config, tmp_path, patch, message):
    grey = tmp_path / "grey.npz"
    np.savez(grey, x_train=np.zeros((16, 6, 6), np.uint8), y_train=np.arange(16) % 2)
    raw = json.loads(json.dumps(_merge(BASE, patch)).replace('"CSV"', json.dumps(_tabular_csv(tmp_path)))
                     .replace('"GREY"', json.dumps(str(grey))))
    result = cli("run", write_config(raw), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("choice", ["auto", "none", "per_channel"])
def test_normalize_decides_what_the_model_does_to_raw_images(tiny_images, choice):
    """auto: uint8 images x 1/255 in the model; none: raw values; per_channel: a Normalization
    layer with each channel's mean and variance over the training images."""
    from tftrain.spec.loading import validate
    from tftrain.training.distribute import create_distribution
    from tftrain.training.prepare import prepare

    config = validate({"name": "n", "data": {"dataset": "npz", "path": str(tiny_images), "normalize": choice},
                       "model": {"type": "cnn", "conv": [4], "dense": [4]},
                       "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}})  # cnn: logits
    model = prepare(config, create_distribution(config.training)).model
    names = [layer.name for layer in model.layers]
    assert ("rescale" in names) == (choice == "auto") and ("normalize" in names) == (choice == "per_channel")
    if choice == "per_channel":
        x = np.load(tiny_images)["x_train"].astype(np.float64)
        layer = model.get_layer("normalize")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.mean).reshape(-1), x.mean(axis=(0, 1, 2)), rtol=1e-6)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.variance).reshape(-1), x.var(axis=(0, 1, 2)),
                                   rtol=1e-6)


def test_smoke_runs_a_config_with_a_warmup_longer_than_the_smoke_run(cli, tiny_mnist, tmp_path):
    """--smoke trains two batches: the warmup of configs/fashion_mnist_cnn.yaml is dropped there."""
    result = cli("run", REPO / "configs" / "fashion_mnist_cnn.yaml", "--smoke", "--runs-dir", tmp_path / "runs",
                 "--set", "data.dataset=mnist", "--set", f"data.path={tiny_mnist}", "--set", "data.batch_size=8")
    assert result.exit_code == 0, result.output
