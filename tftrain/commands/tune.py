"""`tftrain tune`: hyperparameter search with Optuna, trials in parallel worker processes, several
processes (or machines) on one study through Optuna's storage, pruning fed by every epoch.

    runs/<name>-tune-<date>-<time>/          (or runs/<study> with --study / --storage)
      study.json      settings, every trial (state, value, values, run directory), counts, best
      base.yaml       the resolved config every trial starts from; tune.yaml: the resolved search
      study.db        the default storage (sqlite:///.../study.db)
      best.yaml       the best trial's config, ready for tftrain run
      plots/          optimization_history.png, param_importances.png, intermediate_values.png
      logs/           each trial's console output, and each worker's
      <name>-trial-007-<date>-<time>/   a normal run directory per trial

The tune process is the only one that talks to Optuna (tftrain.commands.study); trials train in
worker processes (tftrain.commands.workers) with the same code as `tftrain run` and send their
value after every epoch back here, where it is reported and the pruner asked. A trial is
`completed` (its value: the best of its epochs), `pruned` (it keeps what it trained) or
`failed` (an invalid sampled config, divergence, a crash), and the study goes on.

Ctrl-C or SIGTERM: every running trial saves a checkpoint and stops; they stay RUNNING in the
storage. `tftrain tune --resume STUDY_DIR` (also after kill -9 of this process, whose workers then
stop the same way) takes over every trial a dead process left: a trial with a checkpoint is
resumed exactly from it (`tftrain run --resume`), one that never started training is re-run
from the start, and one that had finished is recorded as it ended; the same trial number goes
on, so no trial is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from tftrain import labels
from tftrain.commands.job_limits import capped_jobs
from tftrain.commands.sweep import MAX_MEMBERS, check_member_count
from tftrain.console import print_table, say
from tftrain.errors import TftrainError, TrainingInterrupted, UserError
from tftrain.runs import RunDir, atomic_write, check_name
from tftrain.spec.loading import config_problem, load_config
from tftrain.spec.schema import Config
from tftrain.spec.tune import TuneSpec, assignment, load_spec
from tftrain.spec.tune_checks import check_against
from tftrain.training.run import Outcome

BASE = "base.yaml"  # in a study folder: the config every trial starts from
SPEC = "tune.yaml"  # the resolved search (what --resume reads)
DATABASE = "study.db"  # the default storage
LOGS = "logs"


@dataclass(frozen=True)
class StudyPlan:
    """A study, checked: the config its trials start from and the search over it."""

    base: Config
    spec: TuneSpec
    metric: str
    direction: str  # Optuna's: minimize | maximize

    @property
    def mode(self) -> str:
        """min or max, as tftrain.commands.sweep.best_value reads a history."""
        return "max" if self.direction == "maximize" else "min"

    def identity(self) -> dict[str, Any]:
        """What processes joining one study must agree on (the budget may differ)."""
        return {"base": self.base.to_yaml(), "space": self.spec.space, "metric": self.metric,
                "direction": self.direction, "sampler": self.spec.sampler.name}


def plan_study(config_file: Path, space_file: Path | None, sets: list[str], trials: int | None,
               max_members: int = MAX_MEMBERS) -> StudyPlan:
    """Load the config and the search, and check one against the other; writes nothing."""
    config = load_config(config_file, sets)
    if space_file is not None:
        spec = load_spec(space_file)
    elif config.tune is not None:
        spec = config.tune
    else:
        raise UserError(f"{config_file}: nothing to search: give --space FILE or a tune: section "
                        "(space: {optimizer.learning_rate: {loguniform: [1.0e-4, 1.0e-1]}})")
    if spec.sampler.name == "grid":  # the grid sampler holds (and stores) every point of its grid
        check_member_count({d.key: len(d.choices) for d in spec.dimensions()}, max_members, "space")
    return checked_plan(config.model_copy(update={"tune": None}), spec, trials)


def checked_plan(base: Config, spec: TuneSpec, trials: int | None) -> StudyPlan:
    """The plan of `spec` over `base` (with --trials N instead of the spec's trials)."""
    from tftrain.tracking import check_tracking

    if trials is not None:
        if trials < 1:
            raise UserError(f"--trials: expected a positive number, got {trials}")
        spec = spec.model_copy(update={"trials": trials})
    if base.training.distribute == "multi_worker":
        raise UserError("training.distribute: multi_worker cannot be tuned (trials train in worker processes "
                        "on this machine); use mirrored, or none")
    metric, direction = check_against(spec, base)
    check_tracking(base)
    return StudyPlan(base, spec, metric, direction)


# ---------------------------------------------------------------------------------------------
# Starting, joining and resuming a study


def tune(config_file: Path, space_file: Path | None, sets: list[str], trials: int | None = None, jobs: int = 1,
         storage: str | None = None, study_name: str | None = None, runs_dir: Path = Path("runs"),
         console: Console | None = None, max_members: int = MAX_MEMBERS) -> Path:
    """Run a new study, or join the one `study_name` (or `storage`'s study of this config) names;
    returns the study folder. Every check happens before anything is written."""
    from tftrain.commands.study import open_storage

    console = console or Console(stderr=True)
    _check_jobs(jobs)
    plan = plan_study(config_file, space_file, sets, trials, max_members)
    jobs, capped = capped_jobs(jobs, plan.spec.trials, "trials")
    optuna()  # installed? (one line saying what to install, before anything is written)
    if study_name is not None:
        check_name(study_name)
    name = study_name or (f"{plan.base.name}-tune" if storage else None)
    if storage is not None:  # unreachable, malformed, another study's: refused before anything is written
        study, created = _create_or_join(open_storage(storage), name, plan, storage)
        folder = Path(runs_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
    else:  # the default: sqlite in the study folder
        if name is None:
            folder = RunDir.create(Path(runs_dir), f"{plan.base.name}-tune").path
            name = folder.name
        else:
            folder = Path(runs_dir) / name
            folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / DATABASE).resolve()}"
        study, created = _create_or_join(open_storage(storage), name, plan, storage)
    url = storage
    if created or not (folder / BASE).exists():
        atomic_write(folder / BASE, plan.base.to_yaml())
        atomic_write(folder / SPEC, _spec_yaml(plan.spec))
    say(console, f"study {name}: {'new' if created else 'joined'}, storage {_shown(url)}, folder {folder}")
    if capped:
        say(console, capped)
    return StudyRun(folder, name, url, study, plan, jobs, console, joined=not created).run()


def resume(folder: Path, trials: int | None = None, jobs: int = 1, storage: str | None = None,
           console: Console | None = None) -> Path:
    """Continue the study in `folder`: take over the trials a stopped or killed tune process left,
    then go on to the study's number of trials."""
    from tftrain.commands.study import open_storage, optuna
    from tftrain.commands.study_report import read_record

    console = console or Console(stderr=True)
    _check_jobs(jobs)
    folder = Path(folder)
    record = read_record(folder)
    url = storage or record["storage"]
    if "***" in url:
        raise UserError(f"{folder}: study.json does not keep the storage's password; give the URL again "
                        "with --storage URL")
    plan = checked_plan(load_config(folder / BASE), load_spec(folder / SPEC), trials)
    if trials is not None:
        atomic_write(folder / SPEC, _spec_yaml(plan.spec))
    opened = open_storage(url)
    try:
        study = optuna().load_study(study_name=record["study"], storage=opened)
    except KeyError:
        raise UserError(f"{folder}: the storage {_shown(url)} has no study {record['study']!r}") from None
    say(console, f"study {record['study']}: resumed, storage {_shown(url)}")
    return StudyRun(folder, record["study"], url, study, plan, jobs, console, joined=True).run()


def _check_jobs(jobs: int) -> None:
    capped_jobs(jobs, None, "trials")  # refused past MAX_JOBS before anything is read


def _shown(url: str) -> str:
    from tftrain.commands.study import masked

    return masked(url)


def _spec_yaml(spec: TuneSpec) -> str:
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def _create_or_join(storage, name: str, plan: StudyPlan, url: str):
    """(the study, whether this process created it); a study made from another config or search
    is refused."""
    from tftrain.commands.study import optuna, to_optuna

    opt = optuna()
    try:
        study = opt.create_study(storage=storage, study_name=name, direction=plan.direction)
    except opt.exceptions.DuplicatedStudyError:
        study = opt.load_study(study_name=name, storage=storage)
        _check_same_study(study, name, plan, url)
        return study, False
    study.set_user_attr("tftrain", plan.identity())
    dims = {d.key: d for d in plan.spec.dimensions()}
    for point in plan.spec.enqueue[:plan.spec.trials]:  # never more than the study's trials
        study.enqueue_trial({k: to_optuna(dims[k], v) for k, v in point.items()}, user_attrs={"values": point})
    return study, True


def _check_same_study(study, name: str, plan: StudyPlan, url: str) -> None:
    recorded = None
    for _ in range(20):  # the process that created it records what it is right after
        recorded = study.user_attrs.get("tftrain")
        if recorded is not None:
            break
        time.sleep(0.25)
    if recorded is None:
        raise UserError(f"study {name!r} in {_shown(url)} was not made by tftrain tune; use --study NAME "
                        "for a new study")
    differs = [key for key, value in plan.identity().items() if recorded.get(key) != value]
    if differs:
        raise UserError(f"study {name!r} in {_shown(url)} was made from another {' and '.join(differs)}; "
                        "use --study NAME for a new study (or tftrain tune --resume STUDY_DIR to continue it)")


# ---------------------------------------------------------------------------------------------
# Running it


@dataclass
class Active:
    """A trial this process runs."""

    number: int
    trial: Any  # optuna.Trial: reports and pruning
    values: dict[str, Any]
    name: str  # its run-name prefix
    started: float
    how: str  # new | resumed | re-run


class StudyRun:
    """One tune process working on a study: hands trials to workers, reports, tells, writes."""

    def __init__(self, folder: Path, name: str, url: str, study, plan: StudyPlan, jobs: int, console: Console,
                 joined: bool = False):
        from tftrain.commands.study import Owners, make_pruner, make_sampler, optuna

        self.folder, self.name, self.url, self.study, self.plan = folder, name, url, study, plan
        self.jobs, self.console = jobs, console
        self.optuna = optuna()
        self.dims = plan.spec.dimensions()
        seed = plan.spec.seed if plan.spec.seed is not None else plan.base.seed
        if seed is not None and joined:
            seed += _pid_offset()  # a joining process samples on its own, not the creator's draws again
        study.sampler, study.pruner = make_sampler(plan.spec, seed), make_pruner(plan.spec)
        self.owners = Owners(folder)
        self.active: dict[int, Active] = {}
        timeout = plan.spec.timeout_seconds()
        self.deadline = time.time() + timeout if timeout else None
        self.base_raw = plan.base.model_dump(mode="json")
        self.stop = None  # the StopRequests of run()
        self.live = None  # the live table, on a terminal
        self.mlflow = None
        self.started = time.time()

    @property
    def stopping(self) -> bool:
        """Whether a signal asked this process to stop (running trials then stay RUNNING)."""
        return self.stop is not None and self.stop.signum is not None

    def run(self) -> Path:
        """Run the study here until its budget is spent (or a signal stops it); returns the folder."""
        from tftrain.commands.workers import StopRequests, WorkerPool, drive, fair_cpu_threads

        share = fair_cpu_threads(self.jobs) if self.jobs > 1 else None  # configs saying `auto` follow it
        pool = WorkerPool(self.jobs, self.folder / LOGS, cpu_threads=share)
        with self.owners.hold(), StopRequests(pool, "stopping: every running trial saves a checkpoint") as stop:
            self.stop = stop
            self._start_tracking()
            self._write("running")
            if self._has_work():
                pool.start()
                try:
                    with self._live():
                        drive(pool, self._refreshed(self.next_job), self._refreshed(self.on_event), stop)
                finally:
                    pool.close()
            else:
                say(self.console, f"study {self.name}: every trial has run; nothing left to do here")
            self._finish("interrupted" if stop.signum is not None else "completed")
        if stop.signum is not None:
            raise TrainingInterrupted(f"study stopped by {signal.Signals(stop.signum).name}; its running trials "
                                      f"saved a checkpoint; resume with: tftrain tune --resume {self.folder}",
                                      stop.signum)
        if not any(t.state.name == "COMPLETE" for t in self.study.get_trials(deepcopy=False)):
            raise TftrainError(f"no trial of study {self.name} completed (see {self.folder / LOGS}); "
                               f"{self.folder / 'study.json'} says why each ended")
        return self.folder

    # -- the live table (on a terminal; elsewhere one line per trial started and ended) ------
    @contextlib.contextmanager
    def _live(self):
        from rich.live import Live

        if not self.console.is_terminal:
            yield
            return
        with Live(self._table(), console=self.console, refresh_per_second=2, transient=True) as self.live:
            try:
                yield
            finally:
                self.live = None

    def _refreshed(self, function):
        def call(*args):
            result = function(*args)
            if self.live is not None:
                self.live.update(self._table())
            return result

        return call

    def _table(self):
        from tftrain.commands.study_report import study_table

        records = self.records()
        done = sum(r["state"] in ("completed", "pruned", "failed") for r in records)
        target = self.plan.spec.trials or "?"
        return study_table(records, self.plan.metric, self.plan.direction, [d.key for d in self.dims],
                           f"study {self.name}: {done}/{target} trials done, ranked by {self.plan.metric} "
                           f"({self.plan.direction})")

    # -- handing out trials --------------------------------------------------------------------
    def next_job(self):
        """The next trial for an idle worker: one a dead process left, else a new one; None when
        the study's budget (or time) is spent."""
        from tftrain.commands.study import one_at_a_time

        while True:
            if self.deadline is not None and time.time() > self.deadline:
                return None
            with one_at_a_time(self.folder):
                taken = self._take_over()
                trial = None if taken is not None else self._ask()
            if taken is None and trial is None:
                return None
            job = self._resume_job(*taken) if taken is not None else self._new_job(trial)
            if job is not None:
                return job

    def _has_work(self) -> bool:
        """Whether there is a trial to start or to take over (no workers are started otherwise)."""
        running = self.study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,))
        return self._room() or any(not self.owners.alive(t.user_attrs.get("owner")) for t in running)

    def _room(self) -> bool:
        """Whether the study has room for another trial (enqueued points are asked for first)."""
        trials = self.study.get_trials(deepcopy=False)
        started = sum(t.state.name != "WAITING" for t in trials)
        # The grid sampler's own is_exhausted counts finished trials only: with trials still
        # running it would hand out a point twice.
        budget = [n for n in (self.plan.spec.trials, self.plan.spec.grid_size()) if n is not None]
        return not budget or started < min(budget)

    def _ask(self):
        from tftrain.commands.study import owner_id

        if not self._room():
            return None
        trial = self.study.ask()
        trial.set_user_attr("owner", owner_id())
        return trial

    def _take_over(self):
        """A RUNNING trial whose tune process is gone, claimed for this one: (its record, a handle)."""
        from tftrain.commands.study import handle, owner_id

        for frozen in self.study.get_trials(deepcopy=False, states=(self.optuna.trial.TrialState.RUNNING,)):
            if frozen.number in self.active or self.owners.alive(frozen.user_attrs.get("owner")):
                continue
            trial = handle(self.study, frozen)
            trial.set_user_attr("owner", owner_id())
            return frozen, trial
        return None

    def run_name(self, number: int) -> str:
        """A trial's run-name prefix: `<name>-trial-007`."""
        return f"{self.plan.base.name}-trial-{number:03d}"

    def _new_job(self, trial):
        from tftrain.commands.study import suggest_values

        values = suggest_values(trial, self.dims)  # an enqueued point's values come back as they were given
        trial.set_user_attr("values", values)
        problem = config_problem(self.base_raw, values)
        if problem is not None:  # this combination of values is not a valid config
            self._tell(trial, state="FAIL", error=f"invalid config: {problem}")
            say(self.console, f"trial {trial.number} failed: {labels.label(values)}: invalid config: {problem}")
            self._write("running")
            return None
        return self._launch(trial, values, "new")

    def _resume_job(self, frozen, trial):
        from tftrain.commands.study import from_optuna

        values = frozen.user_attrs.get("values") or from_optuna(self.dims, frozen.params)
        run = RunDir.find(self.folder, self.run_name(frozen.number))
        status = run.status() if run is not None else None
        if run is None:
            say(self.console, f"trial {frozen.number}: re-run from the start (it had not started training)")
            return self._launch(trial, values, "re-run")
        if status in ("completed", "pruned", "diverged", "failed"):  # it ended; the tell did not happen
            say(self.console, f"trial {frozen.number}: had {status} before its tune process stopped: recorded")
            self._record_end(Active(frozen.number, trial, values, self.run_name(frozen.number),
                                    time.time(), "resumed"), Outcome.recorded(run))
            return None
        say(self.console, f"trial {frozen.number}: resumed exactly from its last checkpoint ({run.path.name})")
        for row in run.history():  # epochs it finished that its dead tune process did not report
            step, value = int(row["epoch"]), _number(row.get(self.plan.metric))
            if step not in frozen.intermediate_values and value is not None:
                trial.report(value, step)
        return self._launch(trial, values, "resumed", resume=run)

    def _launch(self, trial, values: dict[str, Any], how: str, resume: RunDir | None = None):
        from tftrain.commands.workers import Job

        name = self.run_name(trial.number)
        run = {"resume": str(resume.path)} if resume is not None else \
            {"config": str(self.folder / BASE), "overrides": self._sets(values), "runs_dir": str(self.folder),
             "name": name}
        self.active[trial.number] = Active(trial.number, trial, values, name, time.time(), how)
        if how != "resumed":
            say(self.console, f"trial {trial.number} started: {labels.label(values)}")
        self._write("running")
        return Job(trial.number, run, self.folder / LOGS / f"{name}.log", report=self.plan.metric)

    def _sets(self, values: dict[str, Any]) -> list[str]:
        sets = [assignment(key, value) for key, value in values.items()]
        if self.mlflow is not None:
            sets.append(f"tracking.mlflow.parent_run_id={self.mlflow.run_id}")
        return sets

    # -- what workers say --------------------------------------------------------------------
    def on_event(self, event) -> None:
        """A report (answered: prune or go on), or a trial's end."""
        if event.job is None or event.job.id not in self.active:
            return
        active = self.active[event.job.id]
        if event.kind == "report":
            step, value = int(event.data["step"]), float(event.data["value"])
            active.trial.report(value, step)
            prune = not self.stopping and active.trial.should_prune()
            event.worker.send({"prune": bool(prune)})
        elif event.outcome is not None:
            self._record_end(active, event.outcome, died=event.kind == "exit")

    def _record_end(self, active: Active, outcome: Outcome, died: bool = False) -> None:
        """Tell the storage how the trial ended (or leave it RUNNING when stopped by a signal:
        --resume continues it), with its HParams session and a line."""
        from tftrain.commands.sweep import best_value
        from tftrain.hparams import write_session

        self.active.pop(active.number, None)
        run = RunDir.find(self.folder, active.name)
        status = run.status() if run is not None else None
        value, error = None, None
        if run is not None:
            active.trial.set_user_attr("run_dir", run.path.name)
        if self.stopping and (died or outcome.status == "interrupted"):
            say(self.console, f"trial {active.number} interrupted: it resumes with tftrain tune --resume {self.folder}")
            self._write("running")
            return
        if outcome.ok and status == "completed":
            value = best_value(run, self.plan.metric, self.plan.mode)
            state = "COMPLETE" if value is not None else "FAIL"
            error = None if value is not None else f"no finite {self.plan.metric} in its history"
        elif outcome.ok and status == "pruned":
            state = "PRUNED"
        else:
            state, error = "FAIL", outcome.error or f"exit code {outcome.exit_code}"
            if status == "diverged":
                error = f"diverged: {error}"
        self._tell(active.trial, state=state, value=value, error=error)
        if run is not None:
            write_session(run.path, {**active.values, "state": state.lower()}, group=run.path.name,
                          status=status or "failed", started=active.started,
                          best={f"best_{self.plan.metric}": value} if value is not None else None)
        self._say_end(active, state, value, error)
        self._write("running")

    def _tell(self, trial, state: str, value: float | None = None, error: str | None = None) -> None:
        if error:
            trial.set_user_attr("error", error[:500])
        trial_state = getattr(self.optuna.trial.TrialState, state)
        try:
            if state == "COMPLETE":
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=trial_state)
        except RuntimeError as exc:  # the grid sampler's tell on its last point; the trial is stored
            if "Study.stop" not in str(exc):
                raise

    def _say_end(self, active: Active, state: str, value: float | None, error: str | None) -> None:
        seconds = time.time() - active.started
        what = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}[state]
        detail = f"{self.plan.metric}={value:.6g}" if value is not None else (error or "")
        if state == "PRUNED":
            reports = self.study.get_trials(deepcopy=False)
            mine = next((t for t in reports if t.number == active.number), None)
            if mine is not None and mine.intermediate_values:
                step = max(mine.intermediate_values)
                detail = f"after epoch {step}: {self.plan.metric}={mine.intermediate_values[step]:.6g}"
        say(self.console, f"trial {active.number} {what}: {detail} ({seconds:.1f}s)")

    # -- outputs -----------------------------------------------------------------------------
    def _header(self, status: str) -> dict[str, Any]:
        from tftrain.commands.study import masked

        previous = {}
        try:
            previous = json.loads((self.folder / "study.json").read_text())
        except (OSError, ValueError):
            pass
        previous = previous if isinstance(previous, dict) else {}
        return {"study": self.name, "storage": masked(self.url), "status": status,
                "objective": {"metric": self.plan.metric, "direction": self.plan.direction},
                "sampler": self.plan.spec.sampler.model_dump(), "pruner": self.plan.spec.pruner.model_dump(),
                "space": self.plan.spec.space, "trials_target": self.plan.spec.trials, "jobs": self.jobs,
                "started": previous.get("started", self.started),
                "mlflow_run_id": self.mlflow.run_id if self.mlflow is not None else previous.get("mlflow_run_id")}

    def records(self) -> list[dict[str, Any]]:
        """Every trial of the study, as study.json lists it."""
        from tftrain.commands.study_report import trial_record

        return [trial_record(t, self.folder) for t in self.study.get_trials(deepcopy=False)]

    def _write(self, status: str) -> None:
        from tftrain.commands.study_report import write_record

        write_record(self.folder, self._header(status), self.records())

    def _finish(self, status: str) -> None:
        """study.json, best.yaml, plots, the ranked table, the study's MLflow run."""
        from tftrain.commands.study_report import write_best, write_plots

        records = self.records()
        self._write(status)
        best = write_best(self.folder, records, self.plan.metric, self.plan.direction)
        plots = []
        try:
            plots = write_plots(self.folder, self.study)
        except Exception as exc:  # noqa: BLE001 (the study's results are written already)
            say(self.console, f"warning: study plots not written: {exc.__class__.__name__}: {exc}")
        print_table(self.console, self._table())
        if best is not None:
            say(self.console, f"best config: {best}  (tftrain run {best})")
        self._end_tracking(status, [self.folder / "study.json", *([best] if best else []), *plots])

    # -- MLflow: the study is a run, its trials are child runs -------------------------------
    def _start_tracking(self) -> None:
        from tftrain.tracking import MlflowRun, mlflow_settings

        settings = mlflow_settings(self.plan.base)
        if settings is None:
            return
        experiment = settings.experiment or self.plan.base.name or "tftrain"
        recorded = self.study.user_attrs.get("tftrain_mlflow_run_id")
        try:
            if recorded:
                self.mlflow = MlflowRun.reopen(settings, recorded, experiment)
            else:
                self.mlflow = MlflowRun.start(settings.model_copy(update={"parent_run_id": None}), experiment,
                                              self.name, tags={"tftrain.study": self.name})
                self.study.set_user_attr("tftrain_mlflow_run_id", self.mlflow.run_id)
                self.mlflow.log_params({f"space.{k}": json.dumps(v) for k, v in self.plan.spec.space.items()}
                                       | {"objective": f"{self.plan.direction} {self.plan.metric}",
                                          "sampler": self.plan.spec.sampler.name,
                                          "pruner": self.plan.spec.pruner.name})
        except Exception as exc:  # noqa: BLE001 (tracking never costs the study)
            say(self.console, f"warning: mlflow: the study's run could not be started ({exc.__class__.__name__}: "
                              f"{exc}); trials are tracked without a parent")
            self.mlflow = None

    def _end_tracking(self, status: str, files: list[Path]) -> None:
        if self.mlflow is None:
            return
        try:
            try:
                best = self.study.best_trial
            except ValueError:  # no trial completed
                best = None
            if best is not None and best.value is not None and math.isfinite(best.value):
                self.mlflow.log_metrics({f"best_{self.plan.metric}": best.value}, step=best.number)
            self.mlflow.log_files(files)
            self.mlflow.end(status)
        except Exception as exc:  # noqa: BLE001
            say(self.console, f"warning: mlflow: the study's run was not ended ({exc.__class__.__name__}: {exc})")


def _number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _pid_offset() -> int:
    import os

    return os.getpid() % 100_000 + 1


def optuna():
    """The optuna module (one line saying what to install where it is missing)."""
    from tftrain.commands.study import optuna as module

    return module()
