"""What a tune study leaves besides its trials' run directories: study.json (every trial, from the
storage, so it includes the trials other processes ran), the ranked table, best.yaml (the best
trial's config, ready for `tftrain run`) and plots (optimization history, parameter importances,
intermediate values) as PNG. Read from Optuna's storage; no TensorFlow.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from tftrain import labels
from tftrain.console import Table
from tftrain.runs import CONFIG, PLOTS, STUDY, RunDir, atomic_write, to_json
from tftrain.spec.tune import yaml_text

BEST = "best.yaml"  # in a study folder: the best trial's config
# Optuna's trial states as tftrain writes them.
STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}
_ORDER = {"completed": 0, "running": 1, "waiting": 2, "pruned": 3, "failed": 4}


def trial_record(frozen, folder: Path) -> dict[str, Any]:
    """One trial as study.json lists it."""
    attrs = frozen.user_attrs
    values = attrs.get("values") or dict(frozen.params)
    started, ended = frozen.datetime_start, frozen.datetime_complete
    run_dir = attrs.get("run_dir")
    return {
        "number": frozen.number,
        "state": STATES.get(frozen.state.name, frozen.state.name.lower()),
        "value": frozen.value,
        "values": values,
        "label": f"trial {frozen.number}: {labels.label(values)}" if values else f"trial {frozen.number}",
        "run_dir": str(folder / run_dir) if run_dir else None,
        "epochs": len(frozen.intermediate_values),
        "started": started.timestamp() if started else None,
        "finished": ended.timestamp() if ended else None,
        "seconds": round((ended - started).total_seconds(), 3) if started and ended else None,
        "error": attrs.get("error"),
        "note": attrs.get("note"),
        "owner": attrs.get("owner"),
    }


def ranked(records: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Completed trials best first, then running, waiting, pruned (best first) and failed ones."""
    sign = -1 if direction == "maximize" else 1

    def key(record):
        value = record["value"]
        scored = value is not None and math.isfinite(value)
        return (_ORDER.get(record["state"], 9), sign * value if scored else math.inf, record["number"])

    return sorted(records, key=key)


def write_record(folder: Path, header: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """study.json: the study's settings, its state, every trial, the counts and the best trial."""
    counts = {state: sum(r["state"] == state for r in records) for state in _ORDER}
    best = next((r for r in ranked(records, header["objective"]["direction"]) if r["state"] == "completed"), None)
    atomic_write(folder / STUDY, to_json({**header, "updated": time.time(), "counts": counts, "best": best,
                                          "trials": sorted(records, key=lambda r: r["number"])}))


def study_table(records: list[dict[str, Any]], metric: str, direction: str, keys: list[str], title: str) -> Table:
    """The ranked table: rank, trial, state, objective, each searched key, epochs, time, run."""
    table = Table(title=title, title_justify="left")
    for column, justify in (("rank", "right"), ("trial", "right"), ("state", "left"), (metric, "right")):
        table.add_column(column, justify=justify)
    for name in labels.short_keys(keys).values():
        table.add_column(name)
    for column, justify in (("epochs", "right"), ("seconds", "right"), ("run", "left")):
        table.add_column(column, justify=justify)
    rank = 0
    for record in ranked(records, direction):
        rank += record["state"] == "completed"
        value = record["value"]
        table.add_row(str(rank) if record["state"] == "completed" else "-", str(record["number"]), record["state"],
                      f"{value:.6g}" if value is not None else "-",
                      *(_cell(record["values"].get(key)) for key in keys), str(record["epochs"] or "-"),
                      f"{record['seconds']:.1f}" if record["seconds"] is not None else "-",
                      Path(record["run_dir"]).name if record["run_dir"] else "-")
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else yaml_text(value)


def write_best(folder: Path, records: list[dict[str, Any]], metric: str, direction: str) -> Path | None:
    """best.yaml: the best completed trial's resolved config, as `tftrain run` takes it (its MLflow
    run is not nested under the study's any more)."""
    best = next((r for r in ranked(records, direction) if r["state"] == "completed" and r["run_dir"]), None)
    if best is None or not (Path(best["run_dir"]) / CONFIG).is_file():
        return None
    config = yaml.safe_load((Path(best["run_dir"]) / CONFIG).read_text(encoding="utf-8"))
    mlflow = (config.get("tracking") or {}).get("mlflow")
    if mlflow:
        mlflow["parent_run_id"] = None
    header = (f"# best trial of study {folder.name}: trial {best['number']}, {metric} = {best['value']:.6g} "
              f"({direction})\n# {best['label']}\n# run: {best['run_dir']}\n# tftrain run {folder / BEST}\n")
    path = folder / BEST
    atomic_write(path, header + yaml.safe_dump(config, sort_keys=False))
    return path


def write_plots(folder: Path, study) -> list[Path]:
    """plots/optimization_history.png, param_importances.png (from 2 finished trials on) and
    intermediate_values.png (each trial's value per epoch: what the pruner saw)."""
    import matplotlib

    matplotlib.use("Agg")  # optuna's plots draw with pyplot; never a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    drawn = [("optimization_history", plots.plot_optimization_history)]
    if len(finished) >= 2 and study.best_trial.params:
        drawn.append(("param_importances", plots.plot_param_importances))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        drawn.append(("intermediate_values", plots.plot_intermediate_values))
    written = []
    for name, plot in drawn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" notes, and importances' few-trials note
            axes = plot(study)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        path = folder / PLOTS / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written


def read_record(folder: Path) -> dict[str, Any]:
    """study.json of a study folder; UserError where the folder is not one."""
    from tftrain.errors import UserError

    try:
        record = json.loads((Path(folder) / STUDY).read_text())
    except FileNotFoundError:
        raise UserError(f"{folder}: not a tune study folder (no {STUDY})") from None
    except (OSError, ValueError) as exc:  # a folder of that name, bytes that are not UTF-8 JSON
        raise UserError(f"{folder}/{STUDY}: unreadable ({str(exc)[:200]})") from None
    problem = _record_problem(record)
    if problem:
        raise UserError(f"{folder}/{STUDY}: {problem}; the file is damaged: restore it, or rejoin the study with "
                        "tftrain tune CONFIG --storage URL --study NAME")
    return record


def _record_problem(record: Any) -> str | None:
    """What is wrong with the shape of a study.json, or None."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    for key in ("study", "storage"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"'{key}' is {type(record.get(key)).__name__}, expected a non-empty string"
    trials = record.get("trials", [])
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
        return "'trials' is not a list of objects"
    return None


def trial_run(folder: Path, record: dict[str, Any]) -> RunDir | None:
    """The run directory of a trial record, if it exists."""
    return RunDir(Path(record["run_dir"])) if record.get("run_dir") and Path(record["run_dir"]).is_dir() else None
