"""`distill:` from a keras-hub run: a fine-tuned (tiny, random) BERT teaches a small dense model
on the same .npz of raw strings. The teacher reads the strings through its own preprocessor
(tokenizer) inside the loss; the student reads them as one text column (TextVectorization fitted
on the training split, tftrain.data.text.strings). Both loops, kill -9 resume, and the teacher's
logits checked against keras-hub's own predict on the raw strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.kit import InProcess, assert_identical, killed_and_resumed, summary

keras_hub = pytest.importorskip("keras_hub")

from tests.models.test_hub import text_config, write_bert_preset, write_reviews  # noqa: E402


def student(data: Path, teacher: Path, loop: str = "fit", **distill) -> dict:
    """A small dense model on the raw strings (dropout: the RNG state matters on resume too)."""
    return {
        "name": "student", "seed": 3, "deterministic": True,
        "data": {"dataset": "npz", "path": str(data), "batch_size": 8},  # 6 steps an epoch
        "model": {"type": "dense", "hidden": [8], "dropout": 0.5, "output_activation": None},
        "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "metrics": ["accuracy"],
        "training": {"loop": loop, "epochs": 2, "checkpoint": {"every_steps": 2}},
        "distill": {"teacher": str(teacher), "temperature": 2.0, **distill},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The reviews and a hub teacher run (a 2-layer BERT fine-tuned for one epoch on them)."""
    root = tmp_path_factory.mktemp("distill_hub")
    data = write_reviews(root / "reviews.npz")
    preset = write_bert_preset(root / "bert_tiny")
    teacher = {**text_config(preset, data, sequence_length=8), "name": "teacher", "training": {"epochs": 1}}
    (root / "teacher.yaml").write_text(yaml.safe_dump(teacher))
    run = InProcess(["run", "--runs-dir", "runs", "teacher.yaml"], root)
    assert run.exit_code == 0, run
    return {"data": data, "teacher": run.run_dir(root)}


def train(tmp_path: Path, config: dict, name: str) -> Path:
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**config, "name": name}))
    run = InProcess(["run", "--runs-dir", "runs", f"{name}.yaml"], tmp_path)
    assert run.exit_code == 0, run
    return run.run_dir(tmp_path)


def history(run: Path) -> np.ndarray:
    return np.genfromtxt(run / "history.csv", delimiter=",", names=True)


def test_a_hub_teacher_teaches_a_small_text_model_in_both_loops_and_kill_9_resumes_bit_identical(tmp_path, world):
    """In each loop, a student run killed mid-epoch (6 steps an epoch, a checkpoint every 2:
    killed after step 9, it resumes at step 8, in epoch 2) ends bit-identical to the
    uninterrupted one; those two uninterrupted runs, one per loop, train alike, the teacher's
    term is what trains them (labels alone train otherwise), and predict takes the raw strings."""
    data, teacher = world["data"], world["teacher"]
    runs = {}
    for loop in ("fit", "custom"):
        resumed, runs[loop] = killed_and_resumed(tmp_path / loop, student(data, teacher, loop, alpha=0.1), kill_at=9)
        assert_identical(resumed, runs[loop])
        assert summary(resumed)["distill"] == summary(runs[loop])["distill"]
    fit, custom = runs["fit"], runs["custom"]
    labels_only = train(tmp_path, student(data, teacher, "fit", alpha=1.0), "labels_only")
    for name in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(history(fit)[name], history(custom)[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(history(fit)["loss"], history(labels_only)["loss"])  # the teacher's term trains it
    record = summary(fit)["distill"]
    assert record["teacher"] == str(teacher.resolve()) and record["teacher_outputs"] == "logits"
    data_record = summary(fit)["data"]
    assert data_record["train"]["x_shape"] == [48, 1] and data_record["preprocessing"]["columns"]["text"]["type"] \
        == "text"  # the student read the strings as one text column
    # `tftrain predict` takes the same strings (an .npy) for the student, as for its hub teacher.
    import keras
    import tensorflow as tf

    from tftrain.commands.predict import predict_run

    texts = np.load(data)["x_test"][:3]
    np.save(tmp_path / "texts.npy", texts)
    rows = predict_run(fit, [tmp_path / "texts.npy"])["predictions"]
    model = keras.saving.load_model(fit / "model.keras", compile=False)
    expected = model.predict(tf.constant(texts[:, None].astype(object)), verbose=0).argmax(axis=1)
    assert [row["class"] for row in rows] == expected.tolist()


def test_the_teacher_reads_the_raw_strings_with_its_own_preprocessor(world):
    """What the loss gives the teacher equals keras-hub's predict on the raw strings (its
    preprocessor mapped over them), for the (batch, 1) rows the student reads."""
    import tensorflow as tf

    from tftrain.spec.loading import load_config
    from tftrain.training.distill import load_distillation

    config = load_config(_write(world, student(world["data"], world["teacher"])))
    distillation = load_distillation(config, num_classes=2, outputs=2)
    texts = np.load(world["data"])["x_test"][:5]
    ours = distillation._teacher_outputs(tf.constant(texts[:, None].astype(object)))
    expected = distillation.teacher.predict(texts, verbose=0)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-5, atol=1e-6)


def _write(world, config: dict) -> Path:
    path = Path(world["teacher"]).parent.parent / "student.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_hub_student_is_refused_in_one_line(cli, tmp_path, world):
    from tests.kit import run_refused

    preset = Path(world["teacher"]).parent.parent / "bert_tiny"
    config = {**text_config(preset, world["data"]), "distill": {"teacher": str(world["teacher"])}}
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(config))
    line = run_refused(cli, tmp_path, tmp_path / "hub.yaml")
    assert "model.type hub is not supported as a student" in line and "type dense on an npz of strings" in line, line


@pytest.mark.slow  # a fresh process and a hub teacher: ~45 s; the scaling itself: tests/training/test_distill.py
def test_under_mirrored_on_two_cpus_it_matches_one_device(tmp_path, world):
    """The teacher's preprocessor inside each replica's step: the custom loop on two logical CPUs
    (a fresh process) trains as on one device (no dropout: each replica draws its own stream)."""
    from tests.kit import Child, child_env

    config = student(world["data"], world["teacher"], "custom")
    config["model"]["dropout"] = 0.0
    mirrored = {**config, "training": {**config["training"], "distribute": "mirrored", "devices": ["cpu:0", "cpu:1"]}}
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**mirrored, "name": "two"}))
    child = Child(["run", "--runs-dir", "runs", "two.yaml"], tmp_path, child_env(tmp_path))
    one = train(tmp_path, config, "one")
    assert child.wait() == 0, child
    two = child.run_dir(tmp_path)
    assert summary(two)["distribute"]["replicas"] == 2
    for name in ("loss", "val_loss", "accuracy"):
        np.testing.assert_allclose(history(two)[name], history(one)[name], rtol=1e-5, atol=1e-6)
