"""`tftrain sweep`: train the cartesian product of `--grid KEY=V1,V2` values, one run each.

Every member is an ordinary run directory inside one sweep folder, named and labelled by its
values. Members train one after another in this process, or with `--jobs N`, N at a time in
worker processes (tftrain.commands.workers), each with a fair share of the CPU threads; either
way with `run_config`, their status being its `Outcome`. A member that fails (bad value, missing
file, divergence, a crash) is recorded and the sweep goes on; sweep.json is rewritten after every member, so an interrupted sweep still says
what finished. Each member's values and best value are also a TensorBoard HParams session.

    runs/<name>-sweep-<date>-<time>/
      sweep.json                                grid, metric, every member's values (typed), status, value, ranking
      <name>-1-learning_rate-0.1-<date>-<time>/  a normal run directory
      logs/                                     with --jobs N: each member's console output
      ...
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from tftrain import labels
from tftrain.commands.job_limits import capped_jobs
from tftrain.console import Table, say
from tftrain.errors import ConfigError, TrainingInterrupted, UserError
from tftrain.hparams import write_session
from tftrain.runs import CONFIG, SWEEP, RunDir, atomic_write
from tftrain.spec.catalog import monitor_mode
from tftrain.spec.loading import load_config
from tftrain.spec.safe_yaml import parse_yaml
from tftrain.spec.schema import Config

LOGS = "logs"  # in a sweep folder run by worker processes: each member's console output


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


# A grid is a product: a few --grid values too many are millions of members (each validated,
# listed in sweep.json and trained). Larger grids must be asked for with --max-members.
MAX_MEMBERS = 10_000


def check_member_count(sizes: dict[str, int], max_members: int, option: str) -> None:
    """Refuse a grid of more than `max_members` points (`sizes`: values per key), in one line."""
    if max_members < 1:
        raise UserError(f"--max-members: expected a positive number, got {max_members}")
    count = math.prod(sizes.values())
    if count > max_members:
        product = " x ".join(f"{n} {key}" for key, n in sizes.items())
        raise UserError(f"{option}: {count:,} members ({product}), more than --max-members {max_members:,}; "
                        f"give --max-members {count} to run them all, or fewer values")


def parse_grid(specs: list[str], max_members: int = MAX_MEMBERS) -> dict[str, list[str]]:
    """`["a.b=1,2", "c=x,y"]` -> {"a.b": ["1", "2"], "c": ["x", "y"]} (values stay YAML text);
    a grid of more than `max_members` points is refused before any is made."""
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
    check_member_count({key: len(values) for key, values in grid.items()}, max_members, "--grid")
    return grid


@dataclass
class Member:
    """One point of the grid and what became of it."""

    index: int
    overrides: dict[str, Any]  # key -> value as YAML reads the --grid text (0.001, not "0.001")
    texts: dict[str, str] = field(default_factory=dict, repr=False)  # key -> the --grid text, for --set
    status: str = "pending"  # pending | invalid | completed | diverged | failed | interrupted
    run_dir: str | None = None
    value: float | None = None
    seconds: float | None = None
    error: str | None = None
    config: Config | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """What tells this member from the others: `learning_rate=0.1 batch_size=64`."""
        return labels.label(self.overrides)

    def sets(self) -> list[str]:
        """The member's values as `--set KEY=VALUE` overrides."""
        return [f"{k}={v}" for k, v in self.texts.items()]

    def as_json(self) -> dict[str, Any]:
        """The member as it appears in sweep.json."""
        data = asdict(self)
        for private in ("config", "texts"):
            data.pop(private)
        return {**data, "label": self.label}


@dataclass
class Sweep:
    """A sweep's folder, grid, ranking metric and members."""

    path: Path
    config_file: str
    sets: list[str]
    grid: dict[str, list[Any]]
    metric: str
    mode: str
    members: list[Member]
    jobs: int = 1
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
            "metric": self.metric, "mode": self.mode, "jobs": self.jobs, "started": self.started,
            "members": [m.as_json() for m in self.members],
            "ranking": [m.index for m in self.ranking() if m.status == "completed" and m.value is not None],
        }
        atomic_write(self.path / SWEEP, json.dumps(data, indent=2) + "\n")

    @property
    def ok(self) -> bool:
        """True when every member completed."""
        return all(m.status == "completed" for m in self.members)

    def member_name(self, base: Config, member: Member) -> str:
        """`<name>-<index>-<values>`: the member's run-name prefix, e.g. `pts-2-learning_rate-0.05`."""
        width = len(str(len(self.members)))
        return f"{base.name}-{member.index:0{width}d}-{labels.name_part(member.overrides)}"


def plan_sweep(config_file: str | Path, sets: list[str], grid_specs: list[str],
               metric: str | None, mode: str, max_members: int = MAX_MEMBERS) -> tuple[Config, dict[str, list[str]], list[Member], str, str]:
    """Parse the grid and validate every member's config; writes nothing.

    A member whose values do not validate is kept as `invalid` (the others still run); if no
    member validates, that is bad input for the whole sweep.
    """
    base = load_config(config_file, sets)
    grid = parse_grid(grid_specs, max_members)
    members = []
    for index, combination in enumerate(itertools.product(*grid.values()), start=1):
        texts = dict(zip(grid, combination))
        overrides = {key: parse_yaml(text, source=f"--grid {key}") for key, text in texts.items()}
        member = Member(index, overrides, texts)
        try:
            member.config = load_config(config_file, [*sets, *member.sets()])
            if member.config.training.distribute == "multi_worker":
                # Every worker of a cluster would have to run the same members in step, and a
                # process can join a cluster only once: members train one after another here.
                raise ConfigError("training.distribute: multi_worker cannot be swept (a sweep trains its "
                                  "members one after another, or in worker processes on this machine); "
                                  "use mirrored, or start each member with tftrain run on every worker")
        except ConfigError as exc:
            member.status, member.error = "invalid", str(exc)
        members.append(member)
    if all(m.status == "invalid" for m in members):
        raise ConfigError(f"every sweep member is invalid; the first: {members[0].error}")
    metric = metric or base.training.checkpoint.monitor
    mode = monitor_mode(metric, mode)
    return base, grid, members, metric, mode


def run_sweep(config_file: str | Path, sets: list[str], grid_specs: list[str], runs_dir: str | Path = "runs",
              metric: str | None = None, mode: str = "auto", console: Console | None = None,
              jobs: int = 1, max_members: int = MAX_MEMBERS) -> Sweep:
    """Train every member, one after another in this process, or `jobs` at a time in worker
    processes; returns the finished Sweep (sweep.json written)."""
    console = console or Console(stderr=True)
    if mode not in ("auto", "min", "max"):
        raise UserError(f"--mode: expected auto, min or max, got {mode!r}")
    capped_jobs(jobs, None, "runs")
    base, grid, members, metric, mode = plan_sweep(config_file, sets, grid_specs, metric, mode, max_members)
    jobs, _ = capped_jobs(jobs, len(members), "runs")
    typed_grid = {key: [parse_yaml(v, source=f"--grid {key}") for v in values] for key, values in grid.items()}
    folder = RunDir.create(Path(runs_dir), f"{base.name}-sweep").path
    sweep = Sweep(folder, str(config_file), list(sets), typed_grid, metric, mode, members, jobs)
    sweep.write()
    say(console, f"sweep: {len(members)} runs in {folder}" + (f", {jobs} at a time" if jobs > 1 else ""))
    for member in members:
        if member.status == "invalid":
            say(console, f"[{member.index}/{len(members)}] {member.label}: skipped: {member.error}")
    if jobs == 1:
        _train_here(sweep, base, console)
    else:
        _train_in_workers(sweep, base, jobs, console)
    return sweep



def _train_here(sweep: Sweep, base: Config, console: Console) -> None:
    """Members one after another, in this process (TensorFlow is imported once, here)."""
    # TensorFlow is needed from here on, not for checking the grid.
    from tftrain.tf_setup import start_tensorflow

    start_tensorflow(doing=None if console.quiet else f"sweeping {sweep.config_file}")
    import keras

    from tftrain.training.run import Outcome, run_config

    _quiet_retracing_warnings()
    for member in sweep.members:
        if member.status == "invalid":
            continue
        console.rule(f"[{member.index}/{len(sweep.members)}] {member.label}", style="dim")
        before = set(sweep.path.iterdir())
        started = time.time()
        run, error = None, None
        try:
            keras.backend.clear_session()  # a fresh graph and name scope per member
            run = run_config(member.config, runs_dir=sweep.path, name=sweep.member_name(base, member),
                             console=console)
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 (one crashing member must not stop the sweep)
            error = exc
        outcome = Outcome.of(error, run)
        member.status, member.error = outcome.status, outcome.error
        if outcome.status == "interrupted":  # the member saved a checkpoint; the sweep stops here
            member.error = None
            _member_done(sweep, member, started, run_dir=_created(sweep, before))
            raise error
        if member.error:
            say(console, f"error: {member.error}")
        _member_done(sweep, member, started, run_dir=outcome.run_dir or _created(sweep, before))


def _created(sweep: Sweep, before: set[Path]) -> str | None:
    """The run directory a member made, if it got that far."""
    created = [p for p in set(sweep.path.iterdir()) - before if (p / CONFIG).is_file()]
    return str(created[0]) if created else None


def _train_in_workers(sweep: Sweep, base: Config, jobs: int, console: Console) -> None:
    """Members `jobs` at a time, each in a worker process, with a fair share of the CPU threads."""
    from tftrain.commands.workers import Job, StopRequests, WorkerPool, drive, fair_cpu_threads

    pending = [m for m in sweep.members if m.status == "pending"]
    by_id = {m.index: m for m in pending}
    threads = fair_cpu_threads(jobs)
    started: dict[int, float] = {}
    pool = WorkerPool(min(jobs, len(pending)), sweep.path / LOGS, cpu_threads=threads)
    pool.start()

    def next_job() -> Job | None:
        if not pending:
            return None
        member = pending.pop(0)
        run = {"config": sweep.config_file, "overrides": [*sweep.sets, *member.sets()],
               "runs_dir": str(sweep.path), "name": sweep.member_name(base, member)}
        started[member.index] = time.time()
        say(console, f"[{member.index}/{len(sweep.members)}] {member.label}: started")
        return Job(member.index, run, sweep.path / LOGS / f"{sweep.member_name(base, member)}.log")

    def on_event(event) -> None:
        outcome = event.outcome
        if outcome is None or event.job is None:
            return
        member = by_id[event.job.id]
        member.status = outcome.status
        found = RunDir.find(sweep.path, sweep.member_name(base, member))
        if not outcome.ok:
            member.error = outcome.error or f"exit code {outcome.exit_code}"
        say(console, f"[{member.index}/{len(sweep.members)}] {member.label}: {member.status}"
                     + (f": {member.error}" if member.error else ""))
        _member_done(sweep, member, started[member.index], run_dir=str(found.path) if found else None)

    try:
        with StopRequests(pool, "stopping: every running member saves a checkpoint") as stop:
            drive(pool, next_job, on_event, stop)
    finally:
        pool.close()
        sweep.write()
    if stop.signum is not None:
        raise TrainingInterrupted(f"sweep stopped by {signal.Signals(stop.signum).name}; interrupted members "
                                  f"resume with tftrain run --resume RUN_DIR (see {sweep.path / SWEEP})",
                                  stop.signum)


def _member_done(sweep: Sweep, member: Member, started: float, run_dir: str | None = None) -> None:
    """Record the member's time and value, its TensorBoard HParams session, and sweep.json."""
    member.run_dir = run_dir or member.run_dir
    member.seconds = round(time.time() - started, 3)
    if member.run_dir is not None:
        run = RunDir(Path(member.run_dir))
        member.value = best_value(run, sweep.metric, sweep.mode)
        write_session(run.path, {**member.overrides, "status": member.status}, group=run.path.name,
                      status=member.status, started=started,
                      best={f"best_{sweep.metric}": member.value} if member.value is not None else None)
    sweep.write()


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
        table.add_row(str(rank) if ranked else "-", *member.texts.values(), member.status,
                      f"{member.value:.6g}" if member.value is not None else "-",
                      f"{member.seconds:.1f}" if member.seconds is not None else "-",
                      Path(member.run_dir).name if member.run_dir else "-")
    return table
