"""`tftrain sweep` (grid, ranking, sweep.json, failed members, members named and labelled by their
values, TensorBoard HParams, --jobs N) and `tftrain run --smoke`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.kit import hparams_groups
from tftrain.commands.sweep import parse_grid, split_values
from tftrain.errors import UserError
from tftrain.spec.loading import load_config
from tftrain.training.smoke import SMOKE_BATCHES, smoke_config


def _npz_regression(folder: Path) -> Path:
    """A config on a user .npz of 20 points of y = 2x - 1 (validation: a fifth of them)."""
    x = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
    np.savez(folder / "points.npz", x_train=x, y_train=2 * x - 1)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({
        "name": "pts", "data": {"dataset": "npz", "path": str(folder / "points.npz"), "batch_size": 4,
                                "validation": 0.2},
        "model": {"type": "linear", "w_init": 0.0}, "loss": "mse", "training": {"epochs": 2}}))
    return path


@pytest.fixture
def npz_regression(tmp_path):
    return _npz_regression(tmp_path)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep of six members: two complete, two fail on a missing file, two are invalid."""
    from typer.testing import CliRunner

    from tftrain.cli import app

    root = tmp_path_factory.mktemp("sweep")
    config = _npz_regression(root)
    args = ["sweep", config, "--runs-dir", root / "runs", "--quiet", "--grid", "optimizer.learning_rate=0.5,0.05,-1",
            "--grid", f"data.path={root / 'points.npz'},{root / 'missing.npz'}"]
    return root, CliRunner().invoke(app, [str(a) for a in args])


def test_split_values_keeps_lists_and_quoted_commas_together():
    assert split_values("0.1,0.01") == ["0.1", "0.01"]
    assert split_values("[64],[128, 64]") == ["[64]", "[128, 64]"]
    assert split_values("'a,b',{x: 1, y: 2}") == ["'a,b'", "{x: 1, y: 2}"]


@pytest.mark.parametrize("spec, message", [
    ("optimizer.learning_rate", "expected KEY=V1,V2"),
    ("=1,2", "expected KEY=V1,V2"),
    ("training.epochs=1,,2", "expected KEY=V1,V2"),
    ("training.epochs=1,1", "repeated"),
])
def test_bad_grid_specs_are_bad_input(spec, message):
    with pytest.raises(UserError, match=message):
        parse_grid([spec])


def test_sweep_runs_every_member_ranks_them_and_survives_failed_members(cli, swept):
    tmp_path, result = swept
    assert result.exit_code == 1, result.output  # some members failed; the others ran
    folder = Path(result.stdout.strip())
    assert folder.parent == tmp_path / "runs" and folder.name.startswith("pts-sweep-")
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["metric"] == "val_loss" and sweep["mode"] == "min"
    members = {(m["overrides"]["optimizer.learning_rate"], Path(m["overrides"]["data.path"]).name): m
               for m in sweep["members"]}
    assert len(members) == 6
    for lr in (0.5, 0.05):  # typed as YAML reads them, not the --grid text
        good = members[(lr, "points.npz")]
        assert good["status"] == "completed"
        run = Path(good["run_dir"])
        assert run.parent == folder and json.loads((run / "summary.json").read_text())["status"] == "completed"
        assert (run / "model.keras").is_file() and (run / "plots" / "loss.png").is_file()
        bad_data = members[(lr, "missing.npz")]
        assert bad_data["status"] == "failed" and "missing.npz does not exist" in bad_data["error"]
        assert bad_data["run_dir"] is None  # bad input fails before a run directory exists
    for path in ("points.npz", "missing.npz"):
        invalid = members[(-1, path)]
        assert invalid["status"] == "invalid" and "optimizer.learning_rate" in invalid["error"]
    # Ranked by the best val_loss of each completed member, lowest first.
    completed = [m for m in sweep["members"] if m["status"] == "completed"]
    assert sweep["ranking"] == [m["index"] for m in sorted(completed, key=lambda m: m["value"])]
    for member in completed:
        history = (Path(member["run_dir"]) / "history.csv").read_text().splitlines()
        column = history[0].split(",").index("val_loss")
        assert member["value"] == pytest.approx(min(float(r.split(",")[column]) for r in history[1:]))
    assert "sweep ranked by val_loss (min)" in result.stderr
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(
        Path(m["run_dir"]).name for m in completed)
    listed = json.loads(cli("runs", tmp_path / "runs", "--json").stdout)  # members show up in `tftrain runs`
    assert sorted(row["run"] for row in listed) == sorted(f"{folder.name}/{Path(m['run_dir']).name}"
                                                          for m in completed)


def test_sweep_members_are_named_and_labelled_by_their_values(cli, swept):
    """In run names, `tftrain runs`, `compare` and `plot` legends; `plot SWEEP_DIR` plots its members."""
    from tftrain.commands.plot import overlay_curves, overlay_figure

    tmp_path, result = swept
    folder = Path(result.stdout.strip())
    sweep = json.loads((folder / "sweep.json").read_text())
    completed = [m for m in sweep["members"] if m["status"] == "completed"]
    labels = {"learning_rate=0.5 path=points.npz", "learning_rate=0.05 path=points.npz"}
    assert {m["label"] for m in completed} == labels
    assert sorted(Path(m["run_dir"]).name.rsplit("-", 2)[0] for m in completed) == [
        "pts-1-learning_rate-0.5_path-points.npz", "pts-3-learning_rate-0.05_path-points.npz"]
    listed = json.loads(cli("runs", tmp_path / "runs", "--json").stdout)
    assert {row["label"] for row in listed} == labels
    table = cli("runs", tmp_path / "runs")
    assert "learning_rate=0.05 path=points.npz" in table.stdout
    compared = cli("compare", folder, "--json")  # a sweep folder stands for its members
    assert compared.exit_code == 0, compared.output
    assert set(json.loads(compared.stdout)["labels"]) == labels
    plotted = cli("plot", folder, "--output", tmp_path / "sweep.png")
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = overlay_figure(overlay_curves([folder]))  # the members with a history, by their values
    legend = {t.get_text() for ax in figure.axes for t in ax.get_legend().get_texts()}
    assert {f"{label} train" for label in labels} <= legend and {f"{label} validation" for label in labels} <= legend


def test_sweep_members_are_tensorboard_hparams_sessions(swept):
    """TensorBoard's own HParams handler, over the runs folder, lists each member with its values,
    its status and the metrics it logged."""
    tmp_path, result = swept
    groups = hparams_groups(tmp_path / "runs")
    sweep = json.loads((Path(result.stdout.strip()) / "sweep.json").read_text())
    ran = [m for m in sweep["members"] if m["run_dir"]]
    assert sorted(groups) == sorted(Path(m["run_dir"]).name for m in ran)
    for member in ran:
        group = groups[Path(member["run_dir"]).name]
        assert group["hparams"] == {"optimizer.learning_rate": member["overrides"]["optimizer.learning_rate"],
                                    "data.path": member["overrides"]["data.path"], "status": "completed"}
        assert group["status"] == "STATUS_SUCCESS"
        history = (Path(member["run_dir"]) / "history.csv").read_text().splitlines()
        last = dict(zip(history[0].split(","), history[-1].split(",")))
        assert group["metrics"][("validation", "epoch_loss")] == pytest.approx(float(last["val_loss"]), rel=1e-6)
        assert group["metrics"][("train", "epoch_loss")] == pytest.approx(float(last["loss"]), rel=1e-6)
        assert group["metrics"][("", "best_val_loss")] == pytest.approx(member["value"], rel=1e-6)



def test_sweep_jobs_trains_members_in_worker_processes(cli, npz_regression, tmp_path):
    """--jobs 2: each member in its own worker process (not this one), with a fair share of the
    CPU threads, its output in logs/; the same sweep.json and ranking."""
    from tftrain.commands.workers import fair_cpu_threads

    result = cli("sweep", npz_regression, "--runs-dir", tmp_path / "runs", "--jobs", "2",
                 "--grid", "optimizer.learning_rate=0.5,0.05")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["jobs"] == 2 and [m["status"] for m in sweep["members"]] == ["completed", "completed"]
    pids = set()
    for member in sweep["members"]:
        run = Path(member["run_dir"])
        summary = json.loads((run / "summary.json").read_text())
        pids.add(summary["pid"])
        # the share is the worker's (TF_NUM_INTRAOP_THREADS), recorded in the summary; config.yaml keeps auto
        assert yaml.safe_load((run / "config.yaml").read_text())["training"]["cpu_threads"] == "auto"
        assert summary["cpu_threads"] == summary["resolved"]["training.cpu_threads"] == fair_cpu_threads(2)
        assert (folder / "logs" / f"{run.name.rsplit('-', 2)[0]}.log").read_text().startswith("run directory: ")
    assert len(pids) == 2 and os.getpid() not in pids
    assert sweep["ranking"] == [1, 2] and "sweep ranked by val_loss" in result.stderr


def test_a_sweep_where_no_member_validates_writes_nothing(cli, npz_regression, tmp_path):
    result = cli("sweep", npz_regression, "--runs-dir", tmp_path / "runs", "--grid", "optimiser.lr=0.1,0.2")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: every sweep member is invalid; the first: unknown key 'optimiser'")
    assert not (tmp_path / "runs").exists()
    result = cli("sweep", npz_regression, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "at least one --grid" in result.stderr


def test_a_grid_of_more_than_max_members_is_refused_in_one_line(cli, npz_regression, tmp_path):
    """101 x 100 points: more than the 10,000 a sweep (or a tune grid) takes unless --max-members
    raises the limit; refused before any member is validated, nothing written."""
    grid = ["--grid", "training.seed=" + ",".join(map(str, range(101))),
            "--grid", "data.batch_size=" + ",".join(map(str, range(1, 101)))]
    result = cli("sweep", npz_regression, "--runs-dir", tmp_path / "runs", *grid)
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()
    assert result.stderr.strip() == ("error: --grid: 10,100 members (101 training.seed x 100 data.batch_size), "
                                     "more than --max-members 10,000; give --max-members 10100 to run them all, "
                                     "or fewer values")
    result = cli("sweep", npz_regression, "--runs-dir", tmp_path / "runs", "--max-members", "3",
                 "--grid", "training.seed=1,2,3,4")
    assert result.exit_code == 2 and "4 members (4 training.seed), more than --max-members 3" in result.stderr
    assert len(parse_grid([g for g in grid if g != "--grid"], max_members=10_100)["training.seed"]) == 101


def test_smoke_config_cuts_only_the_size(tiny_mnist, write_config):
    config = load_config(write_config({"name": "m", "data": {"dataset": "mnist", "path": str(tiny_mnist),
                                                             "batch_size": 4},
                                       "loss": "sparse_categorical_crossentropy",
                                       "training": {"epochs": 9, "loop": "custom"}}))
    smoke = smoke_config(config)
    assert smoke.data.limit == 2 * SMOKE_BATCHES * 4 and smoke.data.validation == 0.5
    assert smoke.training.epochs == 1 and smoke.name == "m-smoke"
    assert smoke.model == config.model and smoke.loss == config.loss and smoke.training.loop == "custom"
    steps = smoke_config(config.model_copy(update={"training": config.training.model_copy(
        update={"steps": 500, "log_every": 50})}))
    assert steps.training.steps == SMOKE_BATCHES and steps.training.log_every == SMOKE_BATCHES


def test_smoke_run_checks_every_stage_on_a_few_batches(cli, tiny_mnist, write_config, tmp_path):
    path = write_config({"name": "digits", "data": {"dataset": "mnist", "path": str(tiny_mnist), "batch_size": 4},
                         "model": {"type": "dense", "hidden": [8]}, "loss": "sparse_categorical_crossentropy",
                         "metrics": ["accuracy"], "training": {"epochs": 5}})
    plain = cli("run", path, "--smoke", "--runs-dir", tmp_path / "gone")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == "" and "smoke test" in plain.stderr and not (tmp_path / "gone").exists()
    result = cli("run", path, "--smoke", "--keep", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip())
    assert run.name.startswith("digits-smoke-")
    smoke = json.loads((run / "smoke.json").read_text())
    assert smoke["ok"] and [s["stage"] for s in smoke["stages"]] == [
        "data + model", "train + validate + save", "reload", "evaluate"]
    assert all(s["ok"] for s in smoke["stages"])
    assert "test split, 2 batches" in smoke["stages"][3]["detail"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps_done"] == SMOKE_BATCHES and summary["epochs_done"] == 1
    assert "smoke test" in result.stderr and "FAILED" not in result.stderr


def test_smoke_run_fails_with_the_stage_that_broke(cli, write_config, tmp_path):
    # A learning rate this large makes the second step's loss infinite: training diverges.
    path = write_config({"name": "boom", "data": {"dataset": "synthetic_regression", "batch_size": 4,
                                                  "validation": "none"},
                         "model": {"type": "linear"}, "loss": "mse",
                         "optimizer": {"name": "sgd", "learning_rate": 1.0e30}})
    result = cli("run", path, "--smoke", "--keep", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 3, result.output
    assert "FAILED" in result.stderr and "loss became NaN or infinite" in result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    smoke = json.loads((run / "smoke.json").read_text())
    assert not smoke["ok"]
    assert [(s["stage"], s["ok"]) for s in smoke["stages"]] == [("data + model", True),
                                                               ("train + validate + save", False)]
    missing = cli("run", write_config({"data": {"dataset": "npz", "path": "nope.npz"}, "loss": "mse"}, "m.yaml"),
                  "--smoke", "--runs-dir", tmp_path / "runs2")
    assert missing.exit_code == 2 and "nope.npz does not exist" in missing.stderr
    assert not (tmp_path / "runs2").exists()
