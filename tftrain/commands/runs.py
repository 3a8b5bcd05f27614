"""`tftrain runs` and `tftrain compare`: read run directories back, list and compare them.

Only summary.json, config.yaml, eval.json and history.csv are read: no TensorFlow import.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tftrain.console import Table
from tftrain.errors import UserError
from tftrain.labels import flatten
from tftrain.runs import CONFIG, EVAL, GROUPS, RunDir, resume_command


def is_group(folder: Path) -> bool:
    """Whether `folder` is a sweep or a tune study (a folder of runs with sweep.json or study.json)."""
    return any((Path(folder) / name).is_file() for name in GROUPS)


def group_members(folder: Path) -> list[RunDir]:
    """The run directories of a sweep or study folder."""
    return [RunDir(member) for member in sorted(Path(folder).iterdir()) if (member / CONFIG).is_file()]


def expand_groups(paths: list[str | Path]) -> list[Path]:
    """Run directories as given, with a sweep or study folder standing for its members' runs."""
    expanded: list[Path] = []
    for path in map(Path, paths):
        expanded += [run.path for run in group_members(path)] if path.is_dir() and is_group(path) else [path]
    return expanded


def find_runs(runs_dir: str | Path) -> list[RunDir]:
    """Run directories directly under `runs_dir`, and inside its sweep and study folders."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir}: no such folder of runs")
    found = []
    for child in sorted(runs_dir.iterdir()):
        if (child / CONFIG).is_file():
            found.append(RunDir(child))
        elif is_group(child):
            found += group_members(child)
    return found


def describe_run(run: RunDir, root: Path | None = None) -> dict[str, Any]:
    """One row of `tftrain runs`: name, status, progress, best monitored metric, timing. A run
    whose files cannot be read is `broken`, with the reason in `problem`; values of the wrong
    type (an edited summary.json) are shown as unknown."""
    name = str(run.path.relative_to(root)) if root else run.path.name
    try:
        summary = run.summary()
    except UserError as exc:
        return {**_EMPTY_ROW, "run": name, "path": str(run.path), "status": "broken", "problem": str(exc),
                "started": run.path.stat().st_mtime}
    config = _read_config(run)
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    steps_mode = training.get("steps") is not None
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    started = _number_or_none(summary.get("started"))
    if started is None:  # no summary yet: the folder's creation is the best guess
        started = run.path.stat().st_mtime
    status = run.status()
    return {
        "run": name,
        "path": str(run.path),
        "label": run.label(),  # a sweep member's or tune trial's values
        "status": status,
        # What continues a run that stopped before its end (killed, interrupted, failed).
        "resume": resume_command(run.path) if status in ("killed", "interrupted", "failed") else None,
        "epochs_done": _number_or_none(summary.get("epochs_done")),
        "epochs": None if steps_mode else _number_or_none(training.get("epochs")),
        "steps_done": _number_or_none(summary.get("steps_done")),
        "steps": _number_or_none(training.get("steps")),
        "best_monitor": best.get("monitor") if isinstance(best.get("monitor"), str) else None,
        "best_value": _number_or_none(best.get("value")),
        "best_epoch": _number_or_none(best.get("epoch")),
        "started": started,
        "seconds": _number_or_none(summary.get("seconds")),
        "problem": None,
    }


_EMPTY_ROW = {key: None for key in ("resume", "epochs_done", "epochs", "steps_done", "steps", "best_monitor",
                                    "best_value", "best_epoch", "seconds")}


def _number_or_none(value: Any) -> float | int | None:
    """A finite number from a run file, or None where an edit left something else there."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _read_config(run: RunDir) -> dict:
    """config.yaml as plain data (not validated: listing old or foreign runs must not fail)."""
    import yaml

    try:
        data = yaml.safe_load((run.path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under `runs_dir`, newest first."""
    root = Path(runs_dir)
    rows = [describe_run(run, root) for run in find_runs(root)]
    return sorted(rows, key=lambda row: row["started"], reverse=True)


def resume_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`<run> was killed; resume with: tftrain run --resume <path>` for every run that was killed,
    and what is wrong with every broken one."""
    return ([f"{row['run']} was killed; resume with: {row['resume']}" for row in rows if row["status"] == "killed"]
            + [f"{row['run']} is broken: {row['problem']}" for row in rows if row["status"] == "broken"])


def runs_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The `tftrain runs` table."""
    table = Table(title=title, title_justify="left")
    table.add_column("run", no_wrap=True)  # what users copy into the next command: kept whole
    labelled = any(row.get("label") for row in rows)
    if labelled:
        table.add_column("values")
    for column, justify in (("status", "left"), ("progress", "right"), ("best", "left"), ("took", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        if row["steps"] is not None:
            progress = f"{row['steps_done'] or 0}/{row['steps']} steps"
        else:
            progress = f"{row['epochs_done'] or 0}/{row['epochs'] or '?'} epochs"
        best = ""
        if row["best_value"] is not None:
            where = f"@{row['best_epoch']}"
            if row["steps"] is not None and row["epochs_done"] and row["steps_done"]:
                # In steps mode an "epoch" is a log interval: say at which step instead.
                where = f"@step {row['best_epoch'] * (row['steps_done'] // row['epochs_done'])}"
            best = f"{row['best_monitor']}={_number(row['best_value'])} {where}"
        # The run name carries the start time; `--json` has it as a number too.
        values = [row.get("label") or ""] if labelled else []
        table.add_row(row["run"], *values, row["status"], progress, best, duration(row["seconds"]))
    return table


def duration(seconds: float | None) -> str:
    """`8.4s`, `2m03s`, `1h02m`; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# compare


def run_metrics(run: RunDir) -> dict[str, Any]:
    """Final and best metrics, evaluation results and speed of one run, flat."""
    summary = run.summary()
    final = summary.get("final") if isinstance(summary.get("final"), dict) else {}
    metrics: dict[str, Any] = {f"final {k}": v for k, v in final.items()}
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    if isinstance(best.get("monitor"), str):
        metrics[f"best {best['monitor']}"] = best.get("value")
        metrics["best epoch"] = best.get("epoch")
    evaluation = run.read_json(EVAL).get("metrics")
    if isinstance(evaluation, dict):
        metrics.update({f"eval {k}": v for k, v in evaluation.items()})
    metrics["status"] = run.status()
    for key in ("epochs_done", "steps_done", "seconds", "examples_per_second", "params"):
        if key in summary:
            metrics[key.replace("_", " ")] = summary[key]
    return metrics


def compare_runs(paths: list[str | Path]) -> dict[str, Any]:
    """Config keys whose values differ, and every metric, one column per run."""
    paths = expand_groups(paths)
    if len(paths) < 2:
        raise UserError("compare: give at least two run directories (or a sweep or study folder)")
    runs = [RunDir.open(path) for path in paths]
    configs = [flatten(_read_config(run)) for run in runs]
    keys = list(dict.fromkeys(k for config in configs for k in config))
    config_diff = {k: [c.get(k) for c in configs] for k in keys
                   if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1}
    all_metrics = [run_metrics(run) for run in runs]
    names = list(dict.fromkeys(k for m in all_metrics for k in m))
    return {
        "runs": [run.path.name for run in runs],
        "labels": [run.label() for run in runs],  # sweep members' and tune trials' values, else null
        "paths": [str(run.path) for run in runs],
        "config": config_diff,
        "metrics": {name: [m.get(name) for m in all_metrics] for name in names},
    }


def comparison_tables(result: dict[str, Any]) -> list[Table]:
    """Two tables (config differences, metrics); with two runs a `change` column (b - a)."""
    pair = len(result["runs"]) == 2
    tables = []
    for title, rows in (("config differences", result["config"]), ("metrics", result["metrics"])):
        table = Table(title=title, title_justify="left")
        table.add_column("key" if title.startswith("config") else "metric")
        for name, label in zip(result["runs"], result.get("labels") or [None] * len(result["runs"])):
            table.add_column(f"{name}\n{label}" if label else name, justify="right", overflow="fold")
        if pair and title == "metrics":
            table.add_column("change", justify="right")
        for key, values in rows.items():
            cells = [cell_text(v) for v in values]
            if pair and title == "metrics":
                cells.append(_change(*values))
            table.add_row(key, *cells)
        if not rows:
            table.add_row("(none: the configs are identical)" if title.startswith("config") else "(none)",
                          *[""] * (len(result["runs"]) + (1 if pair and title == "metrics" else 0)))
        tables.append(table)
    return tables


def cell_text(value: Any) -> str:
    """A value as a table cell shows it: `-` for none, floats to 6 digits, lists and mappings as JSON."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _change(a: Any, b: Any) -> str:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if not numbers or not all(math.isfinite(float(v)) for v in (a, b)):
        return ""
    delta = float(b) - float(a)
    percent = f" ({delta / abs(a):+.1%})" if a and isinstance(a, float) and isinstance(b, float) else ""
    return f"{delta:+.4g}{percent}"
