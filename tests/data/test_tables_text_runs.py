"""Typed tables (categories, numbers with blanks, hashed, text, a cross) and text folders under
the ways a run is started besides `tftrain run` (issue 28, item 5), each tiny:

- `distribute: mirrored` on two logical CPUs (a fresh process: logical devices exist only
  before TensorFlow starts), the string rows split over the replicas, the history that of one
  device; the table streams;
- `tftrain sweep` with the data in memory and streamed as its two members: both complete, and a
  text folder's two (the same split, the same batches) train alike;
- `tftrain tune`: two trials on an Optuna sqlite storage in tmp_path, both complete;
- `training.cpu_threads` holds though fitting the table runs TensorFlow's first ops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.data.test_tables import mixed_config, write_mixed_table
from tests.data.test_text import write_text_folder
from tests.kit import mirrored_beside_one_device

LR = "optimizer.learning_rate"


def table(root: Path) -> dict:
    write_mixed_table(root / "table.csv")
    raw = mixed_config(root / "table.csv", "custom")
    raw["model"] = {"type": "dense", "hidden": [8]}  # no dropout: its draws differ per replica
    raw["training"] = {"loop": "custom", "epochs": 2}
    return raw


def text(root: Path) -> dict:
    folder = write_text_folder(root / "texts", per_class=16)
    return {"name": "text", "seed": 2, "deterministic": True,
            "data": {"dataset": "text_folder", "path": str(folder), "batch_size": 8, "validation": 0.25,
                     "options": {"max_tokens": 40, "output_mode": "multi_hot"}},
            "model": {"type": "dense", "hidden": [4]}, "loss": "sparse_categorical_crossentropy",
            "optimizer": {"name": "adam", "learning_rate": 0.02}, "metrics": ["accuracy"],
            "training": {"loop": "custom", "epochs": 2}}


DATA = {"table": table, "text": text}


def _history(run: Path) -> list[dict[str, float]]:
    lines = (run / "history.csv").read_text().splitlines()
    names = lines[0].split(",")
    return [{k: float(v) for k, v in zip(names, line.split(",")) if v} for line in lines[1:]]


@pytest.mark.parametrize("kind", DATA)
def test_mirrored_on_two_cpus_trains_as_one_device(tmp_path, kind):


    raw = DATA[kind](tmp_path)
    raw["data"]["in_memory_max_mb"] = 0  # the table streams; the text folder reads its files a batch at a time
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    run, single = mirrored_beside_one_device(config, tmp_path)
    assert json.loads((run / "summary.json").read_text())["data"]["streamed"]
    got, want = _history(run), _history(single)
    assert len(got) == len(want) == 2
    for a, b in zip(got, want):
        assert a == pytest.approx(b, rel=1e-4)


def _invoke(*args):
    from typer.testing import CliRunner

    from tftrain.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("kind", DATA)
def test_a_sweep_trains_the_data_in_memory_and_streamed(tmp_path, kind):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(DATA[kind](tmp_path)))
    result = _invoke("sweep", config, "--runs-dir", tmp_path / "runs", "--quiet",
                     "--grid", "data.in_memory_max_mb=auto,0")
    assert result.exit_code == 0, result.output
    sweep = json.loads((Path(result.stdout.strip()) / "sweep.json").read_text())
    members = {m["overrides"]["data.in_memory_max_mb"]: m for m in sweep["members"]}
    assert {m["status"] for m in members.values()} == {"completed"}
    runs = {limit: Path(m["run_dir"]) for limit, m in members.items()}
    assert "streamed" in json.loads((runs[0] / "summary.json").read_text())["data"]
    assert "streamed" not in json.loads((runs["auto"] / "summary.json").read_text())["data"]
    if kind == "text":  # a text folder streamed is split and batched as in memory: it trains alike
        for a, b in zip(_history(runs[0]), _history(runs["auto"])):
            assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.parametrize("kind", DATA)
def test_tune_runs_two_trials_on_sqlite(tmp_path, kind):
    import optuna

    raw = DATA[kind](tmp_path)
    raw["training"]["epochs"] = 1
    raw["tune"] = {"objective": {"metric": "val_loss"}, "space": {LR: {"choice": [0.01, 0.05]}},
                   "sampler": "grid", "pruner": "none"}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = _invoke("tune", config, "--runs-dir", tmp_path / "runs", "--storage", storage)
    assert result.exit_code == 0, result.output
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).get_trials()
    assert sorted(t.params[LR] for t in trials) == [0.01, 0.05]
    assert {t.state.name for t in trials} == {"COMPLETE"}
    best = yaml.safe_load((Path(result.stdout.strip()) / "best.yaml").read_text())
    assert best["data"]["dataset"] == raw["data"]["dataset"]


def test_cpu_threads_hold_for_a_typed_table(tmp_path):
    """TensorFlow takes the thread count only before its first op: the plan sets it before it
    fits the table (a fresh process: this one's TensorFlow is long started)."""
    config = tmp_path / "c.yaml"
    raw = table(tmp_path)
    raw["training"] = {"epochs": 1, "cpu_threads": 1}
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_HOME": str(tmp_path / "keras_home"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "tftrain", "run", str(config), "--runs-dir", str(tmp_path / "runs"),
                           "-q"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((Path(done.stdout.strip()) / "summary.json").read_text())["cpu_threads"] == 1
