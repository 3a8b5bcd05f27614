"""`distill: {teacher, temperature, alpha}`: a student learns from a finished run's logits in both
loops; the term is Keras's (keras.distillation), it changes training (alpha 1.0 is the plain run,
bit for bit), the teacher is recorded and never saved with the student, kill -9 resumes
bit-identically, a changed teacher refuses the resume, and bad input is one line, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from tests.kit import InProcess, assert_identical, killed_and_resumed, run_refused, summary


def write_blobs(path: Path, seed: int = 0) -> Path:
    """An .npz of 48 train / 16 test examples of 6 features, 3 classes (the largest of the first three)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = x[:, :3].argmax(axis=1).astype(np.int64)
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    return path


def student(data: Path, teacher: Path | None, loop: str = "fit", **distill) -> dict:
    """A tiny student (dropout: the result depends on the RNG state too) with logits outputs."""
    config = {
        "name": "student", "seed": 3, "deterministic": True,
        "data": {"dataset": "npz", "path": str(data), "batch_size": 4},  # 12 steps an epoch
        "model": {"type": "dense", "hidden": [8], "dropout": 0.5, "output_activation": None},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": 2, "checkpoint": {"every_steps": 4}},
    }
    if teacher is not None:
        config["distill"] = {"teacher": str(teacher), **distill}
    return config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The data, and a teacher run (a softmax classifier) trained on it for 3 epochs."""
    root = tmp_path_factory.mktemp("distill")
    data = write_blobs(root / "blobs.npz")
    teacher = {"name": "teacher", "seed": 0, "data": {"dataset": "npz", "path": str(data), "batch_size": 8},
               "model": {"type": "dense", "hidden": [16]}, "loss": "sparse_categorical_crossentropy",
               "optimizer": {"name": "adam", "learning_rate": 0.05}, "training": {"epochs": 3}}
    (root / "teacher.yaml").write_text(yaml.safe_dump(teacher))
    run = InProcess(["run", "--runs-dir", "runs", "teacher.yaml"], root)
    assert run.exit_code == 0, run
    return {"root": root, "data": data, "teacher": run.run_dir(root)}


def train(cli, tmp_path: Path, config: dict, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "name": name}))
    result = cli("run", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def weights(run: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run / "model.keras", compile=False).get_weights()


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_the_teacher_changes_training_and_alpha_one_is_the_plain_run(cli, tmp_path, world, loop):
    data, teacher = world["data"], world["teacher"]
    plain = train(cli, tmp_path, student(data, None, loop), "plain")
    labels_only = train(cli, tmp_path, student(data, teacher, loop, alpha=1.0), "alpha1")
    distilled = train(cli, tmp_path, student(data, teacher, loop, alpha=0.1, temperature=2.0), "distilled")
    for a, b in zip(weights(labels_only), weights(plain), strict=True):
        assert np.array_equal(a, b)  # loading the teacher draws nothing the student's run uses
    assert (labels_only / "history.csv").read_text() == (plain / "history.csv").read_text()
    assert not all(np.array_equal(a, b) for a, b in zip(weights(distilled), weights(plain), strict=True))
    # The student alone is saved: the same layers and weights as the plain run's model.
    saved = keras.saving.load_model(distilled / "model.keras", compile=False)
    assert [w.path for w in saved.weights] == [w.path for w in keras.saving.load_model(
        plain / "model.keras", compile=False).weights]
    record = summary(distilled)["distill"]
    assert record["teacher"] == str(teacher.resolve()) and record["run"] == teacher.name
    assert record["config_name"] == "teacher" and (record["alpha"], record["temperature"]) == (0.1, 2.0)
    assert record["teacher_outputs"].startswith("probabilities (softmax)") and record["student_outputs"] == "logits"
    assert len(record["model_sha256"]) == 64


def test_the_loss_is_keras_distillers(world):
    """alpha * task + (1 - alpha) * T^2 KL(teacher || student), as keras.distillation.Distiller
    computes it with student_loss_weight = alpha; a softmax teacher's log(p) equals its logits."""
    from tftrain.security import load_model
    from tftrain.training.distill import Distillation

    teacher = load_model(world["teacher"] / "model.keras")
    logits_teacher = keras.models.clone_model(teacher)  # the same weights, outputs before the softmax
    logits_teacher.set_weights(teacher.get_weights())
    logits_teacher.layers[-1].activation = keras.activations.linear
    inputs = keras.Input((6,))
    student_model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    x = np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32)
    y = np.arange(8) % 3
    task = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kl = keras.distillation.LogitsDistillation(3.0, loss=keras.losses.KLDivergence())
    distiller = keras.distillation.Distiller(teacher=logits_teacher, student=student_model, distillation_losses=kl,
                                             student_loss_weight=0.25)
    distiller.compile(optimizer="sgd", loss=task)
    predictions = student_model(x)
    expected = float(distiller.compute_loss(x, y, predictions))
    ours = Distillation(teacher, 0.25, 3.0, teacher_probabilities=True, student_probabilities=False, record={})
    assert float(ours.total(x, task(y, predictions), predictions)) == pytest.approx(expected, rel=1e-5)
    p, s = teacher(x).numpy(), keras.ops.softmax(predictions / 3.0).numpy()
    t = keras.ops.softmax(np.log(p) / 3.0).numpy()
    by_hand = 0.25 * float(task(y, predictions)) + 0.75 * 9.0 * np.mean(np.sum(t * np.log(t / s), axis=1))
    assert expected == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_killed_mid_epoch_resumes_bit_identical(tmp_path, world, loop):
    """12 steps an epoch, a checkpoint every 4: killed after step 18, it resumes at step 16, in epoch 2."""
    config = student(world["data"], world["teacher"], loop, alpha=0.1)
    resumed, baseline = killed_and_resumed(tmp_path / loop, config, kill_at=18)
    assert_identical(resumed, baseline)
    assert summary(resumed)["distill"] == summary(baseline)["distill"]


def test_a_changed_teacher_refuses_the_resume_and_a_gone_one_still_evaluates(cli, tmp_path, world):
    teacher = tmp_path / "teacher"
    shutil.copytree(world["teacher"], teacher)
    run = train(cli, tmp_path, {**student(world["data"], teacher), "training": {"epochs": 1}}, "s")
    model = keras.saving.load_model(teacher / "model.keras", compile=False)
    model.layers[-1].bias.assign(model.layers[-1].bias + 1.0)
    model.save(teacher / "model.keras")
    before = (run / "summary.json").read_text()
    result = cli("run", "--resume", run, "--set", "training.epochs=2")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "distill.teacher:" in lines[0] and "changed since this run started" in lines[0]
    assert (run / "summary.json").read_text() == before
    shutil.rmtree(teacher)
    evaluated = cli("evaluate", run, "--json")  # the run's recorded config does not need its teacher
    assert evaluated.exit_code == 0, evaluated.output


# -- bad input ---------------------------------------------------------------------------------
def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _unfinished(teacher: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "unfinished"
    shutil.copytree(teacher, copy)
    record = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**record, "status": "running"}))
    return copy


def _other_classes(teacher: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "four"
    shutil.copytree(teacher, copy)
    record = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**record, "data": {**record["data"], "num_classes": 4}}))
    return copy


BAD = {
    "missing": (lambda w, t: {"distill": {"teacher": str(t / "nowhere")}}, "no such run directory"),
    "not_a_run": (lambda w, t: {"distill": {"teacher": str(_folder(t / "empty"))}},
                  "not a tftrain run directory (no config.yaml)"),
    "unfinished": (lambda w, t: {"distill": {"teacher": str(_unfinished(w["teacher"], t))}},
                   'the run has not finished (status "running")'),
    "other_data": (lambda w, t: {"data": {"dataset": "npz", "path": str(write_blobs(t / "b.npz", 1)), "batch_size": 4}},
                   "trained on other data: data.path is"),
    "other_classes": (lambda w, t: {"distill": {"teacher": str(_other_classes(w["teacher"], t))}},
                      "was trained on 4 classes; this data has 3"),
    "temperature": (lambda w, t: {"distill": {"teacher": str(w["teacher"]), "temperature": 0}},
                    "distill.temperature: expected a value > 0.0, got 0"),
    "alpha": (lambda w, t: {"distill": {"teacher": str(w["teacher"]), "alpha": 1.5}},
              "distill.alpha: expected a value <= 1.0, got 1.5"),
    "regression": (lambda w, t: {"loss": "mse", "metrics": []}, "trains a regression"),
    "multi_worker": (lambda w, t: {"training": {"distribute": "multi_worker"}},
                     "distill: training.distribute multi_worker is not supported (none or mirrored)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_distill_input_is_one_line_and_writes_nothing(cli, write_config, tmp_path, world, case):
    change, expected = BAD[case]
    config = {**student(world["data"], world["teacher"]), **change(world, tmp_path)}
    line = run_refused(cli, tmp_path, write_config(config))
    assert expected in line, line


def test_the_teacher_is_checked_without_tensorflow(tmp_path, world):
    """`tftrain validate` reads the teacher's run files, never TensorFlow."""
    import subprocess
    import sys

    from tests.conftest import REPO

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(student(world["data"], world["teacher"])))
    code = ("import sys; from tftrain.spec.loading import load_config; c = load_config(sys.argv[1]); "
            "assert c.distill.alpha == 0.1 and 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


# -- training.distribute: mirrored ---------------------------------------------------------------
# On two logical CPUs (a fresh process: TensorFlow fixes its devices when it starts) against the
# same run on one device in this process. No dropout: each replica draws its own stream. custom:
# 47 examples in batches of 4, so the last one (3) splits unevenly, and the loop must average the
# teacher's term over the global batch as it does the labels' loss; fit: all 48, batches that split
# evenly (Keras's fit weighs each replica's own mean alike, tests/distribute/test_distribute.py).
@pytest.mark.parametrize("loop, limit", [("custom", 47), ("fit", None)])
def test_mirrored_on_two_cpus_matches_one_device(tmp_path, world, loop, limit):
    from tests.kit import Child, child_env

    config = student(world["data"], world["teacher"], loop, alpha=0.1)
    config["model"]["dropout"] = 0.0
    config["data"]["limit"] = limit
    mirrored = {**config, "training": {**config["training"], "distribute": "mirrored", "devices": ["cpu:0", "cpu:1"]}}
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(mirrored))
    child = Child(["run", "--runs-dir", "two", "two.yaml"], tmp_path, child_env(tmp_path))
    one = InProcess(["run", "--runs-dir", "one", "one.yaml"], tmp_path)
    assert one.exit_code == 0, one
    assert child.wait() == 0, child
    two = child.run_dir(tmp_path)
    assert summary(two)["distribute"]["replicas"] == 2 and summary(two)["distill"] == summary(one.run_dir(tmp_path))[
        "distill"]
    got, want = (np.genfromtxt(run / "history.csv", delimiter=",", names=True) for run in (two, one.run_dir(tmp_path)))
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    for a, b in zip(weights(two), weights(one.run_dir(tmp_path)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_mirrored_killed_mid_epoch_resumes_bit_identical(tmp_path, world, loop):
    """Under mirrored on two logical CPUs (every run a fresh process), killed after step 18 of
    24 (a checkpoint every 4) and resumed: bit for bit the uninterrupted mirrored run."""
    import signal

    from tests.kit import Child, child_env

    config = student(world["data"], world["teacher"], loop, alpha=0.1)
    # One step per call: the kill lands after step 18, and steps end only between calls.
    config["training"].update(distribute="mirrored", devices=["cpu:0", "cpu:1"], steps_per_execution=1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["run", "--runs-dir", "runs", "c.yaml"]
    killed = Child(args, tmp_path, child_env(tmp_path), True, 18, signal.SIGKILL)
    baseline = Child(args, tmp_path, child_env(tmp_path))
    assert killed.wait() == -9, killed
    assert baseline.wait() == 0, baseline
    resumed = Child(["run", "--resume", killed.run_dir(tmp_path)], tmp_path, child_env(tmp_path))
    assert resumed.wait() == 0, resumed
    record = summary(killed.run_dir(tmp_path))
    assert record["distribute"]["replicas"] == 2 and record["resumed"][0]["step"] == 16, record.get("resumed")
    assert_identical(killed.run_dir(tmp_path), baseline.run_dir(tmp_path))
