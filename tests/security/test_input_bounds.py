"""Bad input, round two (issue 13): every value checked before training, YAML shapes refused,
messages that cannot flood or drive the terminal, one-line usage errors. Each case: exit 2, one
line (or one line per problem), no traceback, nothing written."""

from __future__ import annotations

import os

import pytest

BASE = {"data": {"dataset": "synthetic_regression", "validation": "none"}, "model": {"type": "linear"}, "loss": "mse"}


def _bad(cli, tmp_path, path, *args) -> str:
    """Run `tftrain run` on `path`: exit 2, one error line, no traceback, no run directory."""
    runs = tmp_path / "runs"
    result = cli("run", path, "--runs-dir", runs, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    assert not runs.exists()
    return lines[0]


VALUES = [
    # numbers too large for what consumes them, or not finite
    ({"training": {"epochs": 10**10}}, "training.epochs: expected a value <= 1000000, got 10000000000"),
    ({"training": {"steps": 2**40}}, "training.steps: expected a value <= 2147483647"),
    ({"data": {**BASE["data"], "batch_size": 10**9}}, "data.batch_size: expected a value <= 1048576"),
    ({"seed": 2**32}, "seed: expected a value <= 4294967295, got 4294967296"),
    ({"training": {"cpu_threads": 100000}}, "training.cpu_threads: expected a value <= 1024"),
    ({"data": {**BASE["data"], "options": {"num_examples": 10**12}}},
     "data.options.num_examples: expected a value <= 10000000"),
    ({"data": {**BASE["data"], "options": {"noise": float("nan")}}}, "data.options.noise: expected a finite number"),
    ({"optimizer": {"name": "sgd", "learning_rate": float("inf")}}, "optimizer.learning_rate: expected a finite number"),
    # values outside what the component accepts, parameters of the wrong type
    ({"optimizer": {"name": "adam", "beta_1": 1.0}}, "optimizer.beta_1: expected a finite number in [0, 1), got 1.0"),
    ({"optimizer": {"name": "sgd", "momentum": -0.5}}, "optimizer.momentum: expected a finite number in [0, 1]"),
    ({"optimizer": {"name": "sgd", "clipnorm": "1"}}, 'optimizer.clipnorm: expected a finite number > 0 or null, got "1"'),
    ({"optimizer": {"name": "sgd", "clipnorm": 1.0, "clipvalue": 1.0}}, "clipnorm and clipvalue cannot be combined"),
    ({"loss": {"name": "huber", "delta": "big"}}, 'loss.delta: expected a finite number > 0, got "big"'),
    ({"metrics": [{"name": "auc", "num_thresholds": 10**9}]}, "metrics.0.num_thresholds: expected an integer in [2, 100000]"),
    # cross-key consistency, known before any data
    ({"training": {"steps": 15, "log_every": 10}}, "training.log_every: training.steps 15 is not a multiple of log_every 10"),
    ({"training": {"checkpoint": {"monitor": "val_mea"}}, "metrics": ["mae"]},
     "training.checkpoint.monitor: the run does not log \"val_mea\" (the run has no validation data) — did you mean 'mae'?"),
    ({"training": {"early_stopping": {"monitor": "val_loss"}}}, "training.early_stopping.monitor: the run does not log"),
]


@pytest.mark.parametrize("changes, message", VALUES, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(VALUES)])
def test_values_are_checked_before_training(cli, write_config, tmp_path, changes, message):
    line = _bad(cli, tmp_path, write_config({**BASE, **changes}))
    assert message in line, line


def test_yaml_shapes_are_refused_by_name(cli, tmp_path):
    (tmp_path / "dup.yaml").write_text("data: {dataset: synthetic_regression}\nloss: mse\nloss: mae\n")
    assert 'dup.yaml: line 3: key "loss" is given twice (first on line 2)' in _bad(cli, tmp_path, tmp_path / "dup.yaml")
    (tmp_path / "deep.yaml").write_text("data: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested more than 50 levels deep" in _bad(cli, tmp_path, tmp_path / "deep.yaml")
    (tmp_path / "big.yaml").write_text("# padding\n" * 200_000)
    assert "a config is at most 1000000" in _bad(cli, tmp_path, tmp_path / "big.yaml")
    os.symlink(tmp_path / "loop-b.yaml", tmp_path / "loop-a.yaml")
    os.symlink(tmp_path / "loop-a.yaml", tmp_path / "loop-b.yaml")
    assert "a loop of symbolic links" in _bad(cli, tmp_path, tmp_path / "loop-a.yaml")
    os.mkfifo(tmp_path / "fifo.yaml")  # reading it would wait forever
    assert "not a regular file" in _bad(cli, tmp_path, tmp_path / "fifo.yaml")


def test_echoed_values_are_short_and_cannot_send_escape_sequences(cli, write_config, tmp_path):
    line = _bad(cli, tmp_path, write_config({**BASE, "name": "\x1b[2Jx\nhidden"}))
    assert "\x1b" not in line and "\\x1b[2Jx\\nhidden" in line
    line = _bad(cli, tmp_path, write_config({**BASE, "optimizer": {"name": "sgd" + "x" * 500}}))
    assert len(line) < 400 and '"sgdxxx' in line and 'xxx..."' in line
    line = _bad(cli, tmp_path, tmp_path / "no\x1b[31mred.yaml")
    assert "\x1b" not in line and "no\\x1b[31mred.yaml: no such config file" in line


def test_unknown_flags_are_one_line_with_a_did_you_mean(cli, write_config, tmp_path):
    path = write_config(BASE)
    line = _bad(cli, tmp_path, path, "--epochs", "3")
    assert line == ("error: tftrain run: no such option --epochs; did you mean --set training.epochs=...? "
                    "(config keys are set with --set KEY=VALUE)")
    assert _bad(cli, tmp_path, path, "--runsdir", "x") == "error: tftrain run: no such option --runsdir — did you mean '--runs-dir'?"
    missing = cli("evaluate")
    assert missing.exit_code == 2 and missing.output.strip() == \
        "error: tftrain evaluate: Missing argument 'run_dir'; see tftrain evaluate --help"


def test_sizes_the_data_declare_are_checked_before_anything_is_built(cli, write_config, tmp_path):
    import numpy as np
    from PIL import Image

    np.savez(tmp_path / "huge_labels.npz", x_train=np.zeros((4, 3), np.float32),
             y_train=np.array([0, 1, 2, 2_000_000_000]))
    line = _bad(cli, tmp_path, write_config({"data": {"dataset": "npz", "path": str(tmp_path / "huge_labels.npz"),
                                                      "validation": "none"}, "loss": "sparse_categorical_crossentropy"}))
    assert "go up to 2,000,000,000, so a model would need 2,000,000,001 outputs (at most 100,000)" in line
    (tmp_path / "one" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "one" / "cat" / "a.png")
    line = _bad(cli, tmp_path, write_config({"data": {"dataset": "image_folder", "path": str(tmp_path / "one"),
                                                      "validation": "none", "options": {"image_size": [4, 4]}},
                                             "loss": "sparse_categorical_crossentropy"}, "folder.yaml"))
    assert "holds one class folder (cat); a classifier needs a sub-folder per class, at least two" in line
    line = _bad(cli, tmp_path, write_config({**BASE, "data": {"dataset": "synthetic_regression", "validation": 0.5,
                                                              "limit": 1}}, "fraction.yaml"))
    assert "data.validation: 0.5 of the 1 training examples of synthetic_regression leaves none to train on" in line


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny finished run, to copy and damage."""
    import yaml
    from typer.testing import CliRunner

    from tftrain.cli import app

    root = tmp_path_factory.mktemp("finished")
    (root / "c.yaml").write_text(yaml.safe_dump({**BASE, "data": {**BASE["data"], "options": {"num_examples": 16}},
                                                "training": {"epochs": 2}}))
    result = CliRunner().invoke(app, ["run", str(root / "c.yaml"), "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output
    return next((root / "runs").iterdir())


DAMAGE = {
    "summary-garbage": ("summary.json", "{not json"),
    "summary-a-list": ("summary.json", "[1, 2]"),
    "summary-wrong-types": ("summary.json", '{"status": 7, "epochs_done": "many", "best": [], "seconds": "x"}'),
    "history-binary": ("history.csv", "\udcff"),
    "history-no-epochs": ("history.csv", "loss,lr\n0.5,0.1\n"),
    "eval-garbage": ("eval.json", "{oops"),
    "config-edited": ("config.yaml", "data: {dataset: nope}\nloss: mse\n"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_reader_of_a_run_directory_tolerates_a_damaged_file(cli, finished_run, tmp_path, damage):
    import shutil

    name, text = DAMAGE[damage]
    runs = tmp_path / "runs"
    run = runs / finished_run.name
    shutil.copytree(finished_run, run)
    good = shutil.copytree(finished_run, runs / "good-run")
    (run / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    listed = cli("runs", runs)
    assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    assert good.name in listed.stdout  # the readable runs are still listed
    rows = {row["run"]: row for row in __import__("json").loads(cli("runs", runs, "--json").stdout)}
    if name == "summary.json" and damage != "summary-wrong-types":
        assert rows[run.name]["status"] == "broken" and "summary.json" in rows[run.name]["problem"]
        assert f"{run.name} is broken: {run / 'summary.json'}" in listed.output
    for args in (("compare", run, good), ("plot", run, "--output", tmp_path / "p.png"), ("evaluate", run),
                 ("run", "--resume", run)):
        result = cli(*args)
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit), \
            (args, result.output)
        if result.exit_code:
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)


def _files(run) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_no_output_path_can_destroy_a_run_or_an_existing_file(cli, finished_run, tmp_path):
    import numpy as np

    before = _files(finished_run)
    np.save(tmp_path / "x.npy", np.zeros((2, 1), np.float32))
    cases = [
        (("predict", finished_run, tmp_path / "x.npy", "--output", finished_run / "history.csv", "--force"),
         "a file of the run directory"),
        (("plot", finished_run, "--output", finished_run / "plots" / "loss.png", "--force"), "a file of the run directory"),
        (("init", finished_run / "config.yaml", "--force"), "a file of the run directory"),
        (("predict", finished_run, tmp_path / "x.npy", "--output", tmp_path / "x.npy" / "out.csv"), "is a file, not a folder"),
        (("predict", finished_run, tmp_path / "x.npy", "--output", tmp_path / ("n" * 300 + ".csv")), "a name is at most 255"),
    ]
    for args, message in cases:
        result = cli(*args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (args, result.output)
    assert _files(finished_run) == before  # every file of the run, byte for byte
    (tmp_path / "mine.csv").write_text("keep me\n")
    refused = cli("predict", finished_run, tmp_path / "x.npy", "--output", tmp_path / "mine.csv")
    assert refused.exit_code == 2 and "already exists; pass --force" in refused.output
    assert (tmp_path / "mine.csv").read_text() == "keep me\n"
    forced = cli("predict", finished_run, tmp_path / "x.npy", "--output", tmp_path / "mine.csv", "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "mine.csv").read_text().startswith("source,index,value")


def test_export_and_report_never_write_over_a_run_and_keras_copies_are_checked_like_loads(cli, finished_run, tmp_path):
    import shutil
    import zipfile

    run = shutil.copytree(finished_run, tmp_path / "run")
    before = _files(run)
    for args, message in ((("export", run, "--format", "keras", "--output", run / "model.keras"), "already exists"),
                          (("report", run, "--output", run / "history.csv"), "expected an .html file name"),
                          (("report", run, "--output", run / "plots" / "x.html"), None)):
        result = cli(*args)
        if message is None:  # a new file inside the run: allowed, and nothing else changed
            assert result.exit_code == 0, result.output
            (run / "plots" / "x.html").unlink()
        else:
            assert result.exit_code == 2 and message in result.output, result.output
    assert _files(run) == before
    # A model with a Lambda layer (code that would run) is refused by export as by loading.
    with zipfile.ZipFile(run / "checkpoints" / "last.keras") as src, \
            zipfile.ZipFile(tmp_path / "lambda.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"class_name": "Dense"', b'"class_name": "Lambda"', 1)
            dst.writestr(item, data)
    shutil.copyfile(tmp_path / "lambda.keras", run / "checkpoints" / "last.keras")  # as a tampered run would hold
    result = cli("export", run, "--format", "keras", "--output", tmp_path / "out.keras")
    assert result.exit_code == 2 and "is a Lambda layer" in result.output and not (tmp_path / "out.keras").exists()
