"""`tftrain sweep`: train the cartesian product of `--grid KEY=V1,V2` values, one run each.

Every member is an ordinary run directory inside one sweep folder, trained in this process one
after another by `run_training`. A member that fails (bad value, missing file, divergence, a
crash) is recorded and the sweep goes on; sweep.json is rewritten after every member, so an
interrupted sweep still says what finished.

    runs/<name>-sweep-<date>-<time>/
      sweep.json                    grid, metric, every member's overrides, status and value, ranking
      <name>-1-<date>-<time>/       a normal run directory
      ...
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tftrain.config import Config, load_config
from tftrain.errors import ConfigError, DivergedError, TftrainError, UserError
from tftrain.runs import SWEEP, RunDir, atomic_write
from tftrain.training.callbacks.snapshots import monitor_mode


def split_values(text: str) -> list[str]:
    """Split `0.1,0.01` or `[64],[128,64]` on the commas outside brackets, braces and quotes."""
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return values


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """`["a.b=1,2", "c=x,y"]` -> {"a.b": ["1", "2"], "c": ["x", "y"]} (values stay YAML text)."""
    if not specs:
        raise UserError("sweep: give at least one --grid KEY=V1,V2")
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        values = split_values(text) if sep else []
        if not key or not values or any(v == "" for v in values):
            raise UserError(f"--grid {spec!r}: expected KEY=V1,V2,... e.g. optimizer.learning_rate=0.1,0.01")
        if key in grid:
            raise UserError(f"--grid {key}: given twice; put all its values in one --grid")
        if len(set(values)) != len(values):
            raise UserError(f"--grid {key}: a value is repeated in {text!r}")
        grid[key] = values
    return grid


@dataclass
class Member:
    """One point of the grid and what became of it."""

    index: int
    overrides: dict[str, str]
    status: str = "pending"  # pending | invalid | completed | diverged | failed | interrupted
    run_dir: str | None = None
    value: float | None = None
    seconds: float | None = None
    error: str | None = None
    config: Config | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The member as it appears in sweep.json."""
        data = asdict(self)
        data.pop("config")
        return data


@dataclass
class Sweep:
    """A sweep's folder, grid, ranking metric and members."""

    path: Path
    config_file: str
    sets: list[str]
    grid: dict[str, list[str]]
    metric: str
    mode: str
    members: list[Member]
    started: float = field(default_factory=time.time)

    def ranking(self) -> list[Member]:
        """Completed members with a value, best first, then the rest in grid order."""
        scored = [m for m in self.members
                  if m.status == "completed" and m.value is not None and math.isfinite(m.value)]
        scored.sort(key=lambda m: m.value, reverse=self.mode == "max")
        return scored + [m for m in self.members if m not in scored]

    def write(self) -> None:
        """sweep.json (atomically)."""
        data = {
            "config": self.config_file, "set": self.sets, "grid": self.grid,
            "metric": self.metric, "mode": self.mode, "started": self.started,
            "members": [m.as_json() for m in self.members],
            "ranking": [m.index for m in self.ranking() if m.status == "completed" and m.value is not None],
        }
        atomic_write(self.path / SWEEP, json.dumps(data, indent=2) + "\n")

    @property
    def ok(self) -> bool:
        """True when every member completed."""
        return all(m.status == "completed" for m in self.members)


def plan_sweep(config_file: str | Path, sets: list[str], grid_specs: list[str],
               metric: str | None, mode: str) -> tuple[Config, dict[str, list[str]], list[Member], str, str]:
    """Parse the grid and validate every member's config; writes nothing.

    A member whose values do not validate is kept as `invalid` (the others still run); if no
    member validates, that is bad input for the whole sweep.
    """
    base = load_config(config_file, sets)
    grid = parse_grid(grid_specs)
    members = []
    for index, combination in enumerate(itertools.product(*grid.values()), start=1):
        overrides = dict(zip(grid, combination))
        member = Member(index, overrides)
        try:
            member.config = load_config(config_file, [*sets, *(f"{k}={v}" for k, v in overrides.items())])
            if member.config.training.distribute == "multi_worker":
                # Every worker of a cluster would have to run the same members in step, and a
                # process can join a cluster only once: members train one after another here.
                raise ConfigError("training.distribute: multi_worker cannot be swept (a sweep trains its "
                                  "members one after another in this process); use mirrored, or start "
                                  "each member with tftrain run on every worker")
        except ConfigError as exc:
            member.status, member.error = "invalid", str(exc)
        members.append(member)
    if all(m.status == "invalid" for m in members):
        raise ConfigError(f"every sweep member is invalid; the first: {members[0].error}")
    metric = metric or base.training.checkpoint.monitor
    mode = monitor_mode(metric, mode)
    return base, grid, members, metric, mode


def run_sweep(config_file: str | Path, sets: list[str], grid_specs: list[str], runs_dir: str | Path = "runs",
              metric: str | None = None, mode: str = "auto", console: Console | None = None) -> Sweep:
    """Train every member one after another; returns the finished Sweep (sweep.json written)."""
    console = console or Console(stderr=True)
    if mode not in ("auto", "min", "max"):
        raise UserError(f"--mode: expected auto, min or max, got {mode!r}")
    base, grid, members, metric, mode = plan_sweep(config_file, sets, grid_specs, metric, mode)

    # TensorFlow is needed from here on, not for checking the grid.
    from tftrain.tf_setup import start_tensorflow

    start_tensorflow(doing=None if console.quiet else f"sweeping {config_file}")
    import keras

    from tftrain.training.session import run_training

    _quiet_retracing_warnings()

    folder = RunDir.create(Path(runs_dir), f"{base.name}-sweep").path
    sweep = Sweep(folder, str(config_file), list(sets), grid, metric, mode, members)
    sweep.write()
    console.print(f"sweep: {len(members)} runs in {folder}", markup=False, highlight=False)
    width = len(str(len(members)))
    for member in members:
        label = "  ".join(f"{k}={v}" for k, v in member.overrides.items())
        console.rule(f"[{member.index}/{len(members)}] {label}", style="dim")
        if member.status == "invalid":
            console.print(f"skipped: {member.error}", markup=False, highlight=False, soft_wrap=True)
            continue
        before = set(folder.iterdir())
        started = time.time()
        try:
            keras.backend.clear_session()  # a fresh graph and name scope per member
            run = run_training(member.config, runs_dir=folder, name=f"{base.name}-{member.index:0{width}d}",
                               console=console)
            member.status, member.run_dir = "completed", str(run.path)
        except KeyboardInterrupt:
            member.status = "interrupted"
            sweep.write()
            raise
        except DivergedError as exc:
            member.status, member.error = "diverged", str(exc)
        except TftrainError as exc:
            member.status, member.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 (one crashing member must not stop the sweep)
            member.status, member.error = "failed", f"{exc.__class__.__name__}: {exc}"[:500]
        member.seconds = round(time.time() - started, 3)
        if member.run_dir is None:
            created = [p for p in set(folder.iterdir()) - before if p.is_dir()]
            member.run_dir = str(created[0]) if created else None
        if member.error:
            console.print(f"error: {member.error}", markup=False, highlight=False, soft_wrap=True)
        if member.run_dir is not None:
            member.value = best_value(RunDir(Path(member.run_dir)), metric, mode)
        sweep.write()
    return sweep


class _RetracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing_warnings() -> None:
    """Every member builds a new model and so new tf.functions; TensorFlow's warning about
    repeated tracing is expected here and would only bury the members' own output."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())


def best_value(run: RunDir, metric: str, mode: str) -> float | None:
    """The best value of `metric` over the run's history; `val_x` falls back to `x` without validation."""
    rows = run.history()
    if rows and metric not in rows[0] and metric.startswith("val_") and metric[4:] in rows[0]:
        metric = metric[4:]
    values = []
    for row in rows:
        try:
            values.append(float(row[metric]))
        except (KeyError, ValueError):
            continue
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def sweep_table(sweep: Sweep) -> Table:
    """Members ranked by the metric: rank, overrides, status, value, time, run directory."""
    table = Table(title=f"sweep ranked by {sweep.metric} ({sweep.mode})", title_justify="left")
    table.add_column("rank", justify="right")
    for key in sweep.grid:
        table.add_column(key)
    table.add_column("status")
    table.add_column(sweep.metric, justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("run")
    for rank, member in enumerate(sweep.ranking(), start=1):
        ranked = member.status == "completed" and member.value is not None
        table.add_row(str(rank) if ranked else "-", *member.overrides.values(), member.status,
                      f"{member.value:.6g}" if member.value is not None else "-",
                      f"{member.seconds:.1f}" if member.seconds is not None else "-",
                      Path(member.run_dir).name if member.run_dir else "-")
    return table
