"""The run directory: create it (race-free), write files atomically, read it back.

    runs/<name>-<YYYYmmdd-HHMMSS>[-N]/
      config.yaml  summary.json  history.csv  model.keras  checkpoints/  tensorboard/  plots/
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent resumes of one run are not detected
    fcntl = None

from tftrain.config import NAME_PATTERN, Config, load_config
from tftrain.errors import UserError

CONFIG = "config.yaml"
SUMMARY = "summary.json"
HISTORY = "history.csv"
MODEL = "model.keras"
CHECKPOINTS = "checkpoints"
LOCK = ".lock"
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it; put it straight back


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); run files are meant to be read by others too
        # (a TensorBoard server, a colleague), so give them the usual umask-based mode.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_name(name: str) -> str:
    """Run names are one path component of letters, digits, '.', '_' and '-'."""
    if not re.fullmatch(NAME_PATTERN, name) or name in (".", ".."):
        raise UserError(f"--name: expected letters, digits, '.', '_' or '-' only, got {name!r}")
    return name


class RunDir:
    """One run's folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

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
        if fcntl is None or not (self.path / LOCK).exists():
            return False
        with open(self.path / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (it must hold config.yaml)."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise UserError(f"{path}: not a tftrain run directory (no {CONFIG})")
        return run

    def config(self) -> Config:
        """The run's resolved config."""
        return load_config(self.path / CONFIG)

    def summary(self) -> dict[str, Any]:
        """summary.json, or {} if the run has not written one yet."""
        try:
            return json.loads((self.path / SUMMARY).read_text())
        except FileNotFoundError:
            return {}

    def history(self) -> list[dict[str, str]]:
        """history.csv rows (strings, as read)."""
        try:
            with open(self.path / HISTORY, newline="") as f:
                return list(csv.DictReader(f))
        except FileNotFoundError:
            return []

    # -- writing ---------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        """Atomically write a file inside the run directory."""
        target = self.path / name
        atomic_write(target, text)
        return target

    def write_json(self, name: str, data: dict) -> Path:
        """Atomically write pretty JSON."""
        return self.write_text(name, json.dumps(data, indent=2, default=_jsonable) + "\n")

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into summary.json (atomically)."""
        summary = {**self.summary(), **fields}
        self.write_json(SUMMARY, summary)
        return summary

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite history.csv with every row so far (small; atomic, never half a row)."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text(HISTORY, buffer.getvalue())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
