"""The run directory: every path in it, creating it (race-free), its lock, atomic writes, and
RunSummary, the only writer of summary.json.

    runs/<name>-<YYYYmmdd-HHMMSS>[-N]/
      config.yaml  summary.json  history.csv  model.keras  eval.json  smoke.json  report.html
      checkpoints/ best.keras last.keras (snapshots)  state/ (resume state)
      tensorboard/  plots/ (curves; evaluation plots)  export/  .lock

A sweep folder holds sweep.json beside its members' run directories; a tune study folder holds
study.json beside its trials' (tftrain.commands.sweep, tftrain.commands.tune).

Beside this module, what the commands and training share about a run:
    model.py       which model file --checkpoint names, loading it, how its outputs read
    plots.py       plots/<metric>.png from history.csv (written when a run ends), the curves
    evaluation.py  its model evaluated on a split of its own data (evaluate, the smoke test)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent resumes of one run are not detected
    fcntl = None

from tftrain.errors import UserError
from tftrain.spec.loading import read_recorded
from tftrain.spec.schema import MAX_NAME_LENGTH, NAME_PATTERN, Config

# Files and folders of a run directory (relative to it); no other module spells these names.
CONFIG = "config.yaml"
SUMMARY = "summary.json"
HISTORY = "history.csv"
MODEL = "model.keras"
EVAL = "eval.json"
SMOKE = "smoke.json"
CHECKPOINTS = "checkpoints"
SNAPSHOTS = ("best", "last")  # checkpoints/<name>.keras: the best and the latest model
STATE = f"{CHECKPOINTS}/state"  # the resume state (tf.train.Checkpoint files)
TENSORBOARD = "tensorboard"
PLOTS = "plots"
EXPORT = "export"
REPORT = "report.html"  # tftrain report RUN, by default
LOCK = ".lock"
TRACKING = "tracking.json"  # which experiment-tracker run (MLflow) the run logs to, kept across resumes
SWEEP = "sweep.json"  # in a sweep folder: marks it, and lists its members
STUDY = "study.json"  # in a tune study folder: marks it, and lists its trials
GROUPS = (SWEEP, STUDY)  # the files that make a folder a group of runs

# Plots written by `tftrain evaluate` (curves of history.csv are plots/<metric>.png).
CONFUSION_MATRIX_PLOT = f"{PLOTS}/confusion_matrix.png"
ROC_PLOT = f"{PLOTS}/roc.png"
PRECISION_RECALL_PLOT = f"{PLOTS}/precision_recall.png"
PREDICTED_VS_TRUE_PLOT = f"{PLOTS}/predicted_vs_true.png"
RESIDUALS_PLOT = f"{PLOTS}/residuals.png"
MISTAKES_PLOT = f"{PLOTS}/mistakes.png"
EVALUATION_PLOTS = (CONFUSION_MATRIX_PLOT, ROC_PLOT, PRECISION_RECALL_PLOT, PREDICTED_VS_TRUE_PLOT,
                    RESIDUALS_PLOT, MISTAKES_PLOT)

# summary.json statuses; `killed` is never written: it is read off a `running` run whose lock
# no process holds (kill -9, power loss). `pruned`: stopped early by a tune study's pruner.
STATUSES = ("running", "completed", "pruned", "interrupted", "diverged", "failed", "killed")


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere, reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); run files are meant to be read by others too
        # (a TensorBoard server, a colleague), so give them the usual umask-based mode.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


NAME_MAX = 255  # bytes in one file name, on every filesystem tftrain runs on


def check_output(path: str | Path, force: bool = False, option: str = "--output") -> Path:
    """Where a command may write a file the user named: never over a file inside a run
    directory (its history, summary, model...), nor over any existing file without `force`; a
    parent that is a file, or a name too long for the filesystem, is a one-line UserError."""
    path = Path(path).expanduser()
    if len(path.name.encode()) > NAME_MAX:
        raise UserError(f"{option}: the file name is {len(path.name.encode())} bytes; a name is at most {NAME_MAX}")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder")
    if not path.exists():
        return path
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name")
    run = next((p for p in path.absolute().parents if (p / CONFIG).is_file() and (p / SUMMARY).is_file()), None)
    if run is not None:
        raise UserError(f"{option} {path}: a file of the run directory {run}; tftrain never overwrites a run's "
                        "files: write elsewhere")
    if not force:
        raise UserError(f"{option} {path}: already exists; pass --force to overwrite it")
    return path


def check_name(name: str) -> str:
    """Run names are one path component of letters, digits, '.', '_' and '-'."""
    if not re.fullmatch(NAME_PATTERN, name) or name in (".", ".."):
        raise UserError(f"--name: expected letters, digits, '.', '_' or '-' only, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:  # the run folder adds a date; a file name has at most 255 bytes
        raise UserError(f"--name: expected at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    return name


def resume_command(run_path: Path | str) -> str:
    """`tftrain run --resume RUN`, ready to paste into a shell."""
    return f"tftrain run --resume {shlex.quote(str(run_path))}"


def lock_held(path: Path) -> bool:
    """Whether a live process holds the POSIX lock on the file at `path` (a run's .lock, a tune
    process's): a shared lock that cannot be taken means someone holds it."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class RunDir:
    """One run's folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # -- paths -----------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """A file or folder of the run by its name above (CONFIG, HISTORY, TENSORBOARD, ...)."""
        return self.path / name

    def snapshot(self, which: str) -> Path:
        """checkpoints/best.keras or checkpoints/last.keras."""
        if which not in SNAPSHOTS:
            raise ValueError(f"no snapshot {which!r}; expected one of {SNAPSHOTS}")
        return self.path / CHECKPOINTS / f"{which}.keras"

    @property
    def state_folder(self) -> Path:
        """Where the resume state (tf.train.Checkpoint files) lives."""
        return self.path / STATE

    # -- creating --------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, name: str) -> RunDir:
        """Make `<runs_dir>/<name>-<timestamp>[-N]`; os.mkdir is atomic, so concurrent runs never share one."""
        check_name(name)
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for n in range(1, 10_000):
            path = runs_dir / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise UserError(f"{runs_dir}: too many runs named {stem}")

    @contextlib.contextmanager
    def lock(self):
        """Hold the run while training it: a second process (say, two `--resume`s of one run) is
        refused. The OS drops the lock when the process dies, even by SIGKILL: no stale locks."""
        with open(self.path / LOCK, "a+") as handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UserError(f"{self.path}: another tftrain process is training this run") from None
            yield

    def active(self) -> bool:
        """True while a live process holds the run; a `running` summary without one was killed."""
        return fcntl is not None and (self.path / LOCK).exists() and lock_held(self.path / LOCK)

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def find(cls, runs_dir: str | Path, name: str) -> RunDir | None:
        """The newest run directory that `create(runs_dir, name)` made, or None."""
        pattern = re.compile(re.escape(name) + r"-\d{8}-\d{6}(-\d+)?")
        try:
            found = [p for p in Path(runs_dir).iterdir() if pattern.fullmatch(p.name) and (p / CONFIG).is_file()]
        except FileNotFoundError:
            return None
        return cls(max(found, key=lambda p: p.stat().st_mtime)) if found else None

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (it must hold config.yaml)."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise UserError(f"{path}: not a tftrain run directory (no {CONFIG})")
        return run

    def config(self) -> Config:
        """The run's resolved config. Its plugins are not imported (a run directory never makes
        tftrain run code): their registered names are looked up only if the user imported the
        same modules (`--plugin`; tftrain.plugins.require). Files it names outside the run (a
        distill teacher) are not checked again: they held when the run started."""
        return read_recorded(self.path / CONFIG)

    def summary(self) -> dict[str, Any]:
        """summary.json, or {} if the run has not written one yet; a damaged one is a UserError
        naming it."""
        return self.read_json(SUMMARY)

    def read_json(self, name: str) -> dict[str, Any]:
        """A JSON file of the run (summary.json, eval.json) as a mapping; {} if it does not exist."""
        path = self.path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); the file is damaged") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: holds {type(data).__name__}; expected a JSON object")
        return data

    def status(self) -> str:
        """The summary's status, except that a `running` run no live process holds is `killed`,
        and a run whose summary cannot be read is `broken`."""
        try:
            status = self.summary().get("status", "unknown")
        except UserError:
            return "broken"
        if not isinstance(status, str):
            return "broken"
        if status == "running" and fcntl is not None and not self.active():
            return "killed"
        return status

    def label(self) -> str | None:
        """What tells this run from the others of its sweep or study (`lr=0.1 batch_size=64`),
        read from the group file beside it; None for a run of its own."""
        for name in GROUPS:
            try:
                group = json.loads((self.path.parent / name).read_text())
            except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(group, dict):
                continue  # a damaged or edited group file: the run simply has no label
            entries = group.get("members") or group.get("trials")
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("run_dir"), str) \
                        and Path(entry["run_dir"]).name == self.path.name:
                    return entry.get("label") if isinstance(entry.get("label"), str) else None
        return None

    def history(self) -> list[dict[str, str]]:
        """history.csv rows (strings, as read); a damaged file is a UserError naming it."""
        path = self.path / HISTORY
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            return []
        except (csv.Error, UnicodeDecodeError, OSError) as exc:
            raise UserError(f"{path}: cannot be read as CSV ({exc.__class__.__name__}: {str(exc)[:100]})") from None
        if rows and None in rows[0]:  # a row with more fields than the header
            raise UserError(f"{path}: a row has more fields than the header; the file is damaged")
        return rows

    # -- writing ---------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        """Atomically write a file inside the run directory."""
        target = self.path / name
        atomic_write(target, text)
        return target

    def write_json(self, name: str, data: dict) -> Path:
        """Atomically write pretty JSON (summary.json is RunSummary's alone)."""
        if name == SUMMARY:
            raise ValueError("summary.json is written by RunSummary only")
        return self.write_text(name, to_json(data))

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite history.csv with every row so far (small; atomic, never half a row); no rows:
        no file."""
        if not rows:
            (self.path / HISTORY).unlink(missing_ok=True)
            return
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text(HISTORY, buffer.getvalue())


class RunSummary:
    """summary.json of one run; its methods are the status transitions, each one atomic write.

    A session starts (or resumes) a run, then ends it in exactly one of the other states. What a
    session reported about its end (signal, error, ...) is dropped when the run resumes.
    """

    _SESSION_END = ("signal", "interrupted_at", "error", "diverged_at_step", "pruned_at", "finished")

    def __init__(self, run: RunDir):
        self.run = run

    def _write(self, summary: dict[str, Any]) -> dict[str, Any]:
        atomic_write(self.run.path / SUMMARY, to_json(summary))
        return summary

    def _update(self, **fields: Any) -> dict[str, Any]:
        return self._write({**self.run.summary(), **fields})

    def started(self, **facts: Any) -> dict[str, Any]:
        """A new run: what it is (name, seed, data, model size, settings, versions). What its
        launcher recorded before training started (`launched`) is kept."""
        launch = {k: v for k, v in self.run.summary().items() if k == "launcher"}
        return self._write({"status": "running", "name": self.run.path.name, "started": time.time(),
                            **facts, **launch, "pid": os.getpid()})

    def launched(self, launcher: str, launch_id: str, workers: list[str], **facts: Any) -> dict[str, Any]:
        """The launcher (ray, slurm) started a group of `workers` (host:port each, rank order) on
        this run: the first group of launch `launch_id`, or a restart of it (counted in
        `restarts`); a new launch (say, `--resume` under another launcher) counts from 0."""
        summary = self.run.summary()
        before = summary.get("launcher") if isinstance(summary.get("launcher"), dict) else {}
        restarts = before.get("restarts", -1) + 1 if before.get("launch_id") == launch_id else 0
        return self._write({**summary, "launcher": {"name": launcher, "launch_id": launch_id, "restarts": restarts,
                                                    "workers": workers, **facts, "time": time.time()}})

    def resumed(self, at: dict[str, int], **facts: Any) -> dict[str, Any]:
        """Another session of the run, from position `at` (epoch, step_in_epoch, step)."""
        summary = {k: v for k, v in self.run.summary().items() if k not in self._SESSION_END}
        return self._write({**summary, **facts, "status": "running", "pid": os.getpid(),
                            "resumed": [*summary.get("resumed", []), {"time": time.time(), **at}]})

    def interrupted(self, signal: str, seconds: float | None = None, at: dict[str, int] | None = None) -> None:
        """Stopped by a signal (after a checkpoint at `at`, or at once without one)."""
        fields: dict[str, Any] = {"status": "interrupted", "signal": signal}
        if seconds is not None:
            fields["seconds"] = seconds
        if at is not None:
            fields["interrupted_at"] = at
        self._update(**fields)

    def failed(self, error: BaseException, seconds: float) -> None:
        """Stopped by an error; the last checkpoint still resumes it."""
        self._update(status="failed", error=f"{error.__class__.__name__}: {error}"[:500], seconds=seconds)

    def diverged(self, step: int, results: dict[str, Any]) -> None:
        """The loss became NaN or infinite at `step`."""
        self._update(**results, status="diverged", diverged_at_step=step)

    def completed(self, results: dict[str, Any]) -> None:
        """Trained to the end (or stopped early by a callback); `results`: metrics, timing."""
        self._update(**results, status="completed", finished=time.time())

    def ended_early(self, status: str, results: dict[str, Any], **facts: Any) -> None:
        """Stopped early by a callback that says how the run ended (tftrain.training.callbacks.EndsRun):
        `pruned` by a tune study's pruner, with `pruned_at` (step, value); what it trained is kept
        (model.keras, snapshots, history), as for a completed run."""
        if status not in ("completed", "pruned"):  # the ends where a run keeps what it trained
            raise ValueError(f"a run cannot end early as {status!r}")
        self._update(**results, **facts, status=status, finished=time.time())


def to_json(data: dict) -> str:
    """Pretty JSON as run files hold it (NumPy scalars and paths converted)."""
    return json.dumps(data, indent=2, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
