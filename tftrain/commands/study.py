"""Optuna, as `tftrain tune` uses it: storages (checked before any trial), the sampler and pruner
a spec names, trials' values, and the locks that let several tune processes share one study.

The tune process is the only one that talks to Optuna: trials train in worker processes and
send their per-epoch values back to it (tftrain.commands.workers), which reports them and asks
the pruner. Storages: an RDB URL (`sqlite:///PATH`, `postgresql://...`, `mysql://...`: Optuna's
RDBStorage, shared by processes and machines), or `journal:PATH` (Optuna's journal file storage,
for shared filesystems where sqlite's locking is unreliable).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (one tune process per study there)
    fcntl = None

from tftrain.errors import UserError
from tftrain.runs import lock_held
from tftrain.safe_files import describe, is_data_file
from tftrain.spec.base import suggest
from tftrain.spec.tune import Dimension, TuneSpec, yaml_text

INSTALL = "pip install 'tftrain[tune]'"
DATABASES = ("sqlite", "postgresql", "mysql")
DRIVERS = {"postgresql": "psycopg2-binary", "mysql": "pymysql"}
SQLITE_TIMEOUT_S = 30  # sqlite's default 5 s lock wait fails under several writers (Optuna's trials table)
CONNECT_TIMEOUT_S = 10  # an unreachable database server is an error in seconds, not minutes
STORAGE_HELP = "sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, mysql://USER:PASSWORD@HOST/DB or journal:PATH"


def optuna():
    """The optuna module, quiet; one line saying what to install where it is missing."""
    try:
        import optuna as module
    except ImportError:
        raise UserError(f"tftrain tune needs Optuna: {INSTALL}") from None
    module.logging.set_verbosity(module.logging.WARNING)  # "A new study created in RDB ..." and the like
    warnings.filterwarnings("ignore", category=module.exceptions.ExperimentalWarning)
    return module


# ---------------------------------------------------------------------------------------------
# Storages


def masked(url: str) -> str:
    """The URL with its password hidden (what study.json and messages show)."""
    if url.startswith("journal:"):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (a malformed URL is shown as given; it has no parsed password)
        return url


def open_storage(url: str):
    """Optuna's storage for `url`, connected; UserError (one line) when it is malformed, names an
    unknown database or a missing driver, or cannot be reached."""
    opt = optuna()
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:").removeprefix("//"))
        if not path.parent.is_dir():
            raise UserError(f"--storage {url}: folder {path.parent} does not exist")
        _check_existing(url, path)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UserError(f"--storage {url!r}: not a storage URL; expected {STORAGE_HELP}") from None
    backend = parsed.get_backend_name()
    if backend not in DATABASES:
        raise UserError(f"--storage {masked(url)}: unknown database {backend!r}" + suggest(backend, DATABASES)
                        + f"; expected {STORAGE_HELP}")
    kwargs: dict[str, Any] = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    lock = contextlib.nullcontext()
    if backend == "sqlite":
        _check_sqlite_path(url, parsed.database)
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        lock = _locked(Path(parsed.database).parent)  # the folder: a refusal leaves no lock file behind
    try:
        with lock:
            return _rdb_storage(opt, url, kwargs)
    except ImportError as exc:
        raise UserError(f"--storage {masked(url)}: the {backend} driver is not installed ({exc}); "
                        f"pip install {DRIVERS.get(backend, 'its driver')}") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise UserError(f"--storage {masked(url)}: cannot open the database: {reason}") from None


def _rdb_storage(opt, url: str, kwargs: dict[str, Any], tries: int = 3):
    """RDBStorage, which makes Optuna's tables in a new database; processes starting together
    on one new database race to make them (optuna/optuna#1092): the loser retries, and finds them."""
    import sqlalchemy

    for attempt in range(1, tries):
        try:
            return opt.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError,
                sqlalchemy.exc.ProgrammingError) as exc:
            if not any(words in str(exc).lower() for words in ("already exists", "unique", "duplicate")):
                raise
            time.sleep(0.5 * attempt)  # the other process is making the tables: they exist in a moment
    return opt.storages.RDBStorage(url, engine_kwargs=kwargs)


def _check_sqlite_path(url: str, database: str | None) -> None:
    if not database or database == ":memory:":
        raise UserError(f"--storage {url}: an in-memory database cannot be shared by processes; "
                        "give a file: sqlite:///PATH")
    folder = Path(database).parent
    if not folder.is_dir():
        raise UserError(f"--storage {url}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"--storage {url}: folder {folder} is not writable")
    _check_existing(url, Path(database))


def _check_existing(url: str, path: Path) -> None:
    """A storage file that exists must be a regular file: a FIFO would block forever, /dev/zero
    would be read without end."""
    if os.path.lexists(path) and not is_data_file(path):
        raise UserError(f"--storage {masked(url)}: {path} {describe(path)}; expected a database or journal "
                        "file, or a path where one can be made")


# ---------------------------------------------------------------------------------------------
# Samplers, pruners, values


def make_sampler(spec: TuneSpec, seed: int | None):
    """The sampler the spec names, seeded."""
    opt = optuna()
    options, name = spec.sampler.options, spec.sampler.name
    if name == "tpe":
        return opt.samplers.TPESampler(seed=seed, **options)
    if name == "random":
        return opt.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return opt.samplers.QMCSampler(seed=seed, **options)
    return opt.samplers.GridSampler({d.key: optuna_choices(d) for d in spec.dimensions()}, seed=seed)


def make_pruner(spec: TuneSpec):
    """The pruner the spec names (Hyperband's max_resource: the first finished trial's last step)."""
    opt = optuna()
    options, name = spec.pruner.options, spec.pruner.name
    if name == "median":
        return opt.pruners.MedianPruner(**options)
    if name == "hyperband":
        return opt.pruners.HyperbandPruner(**{**options, "max_resource": options["max_resource"] or "auto"})
    return opt.pruners.NopPruner()


def optuna_choices(dim: Dimension) -> list[Any]:
    """A choice list as Optuna stores it: scalars as they are, lists and mappings as their YAML."""
    if all(value is None or isinstance(value, (bool, int, float, str)) for value in dim.choices):
        return list(dim.choices)
    return [yaml_text(value) for value in dim.choices]


def to_optuna(dim: Dimension, value: Any) -> Any:
    """`value` of `dim` as Optuna stores it (for enqueued points)."""
    if dim.kind != "choice":
        return value
    index = next(i for i, choice in enumerate(dim.choices) if type(choice) is type(value) and choice == value)
    return optuna_choices(dim)[index]


def suggest_values(trial, dims: list[Dimension]) -> dict[str, Any]:
    """Ask the trial for a value of every dimension; the values as the config takes them."""
    values = {}
    for dim in dims:
        if dim.kind in ("uniform", "loguniform"):
            values[dim.key] = trial.suggest_float(dim.key, float(dim.low), float(dim.high),
                                                  log=dim.kind == "loguniform")
        elif dim.kind == "int":
            values[dim.key] = trial.suggest_int(dim.key, dim.low, dim.high)
        else:
            stored = optuna_choices(dim)
            chosen = trial.suggest_categorical(dim.key, stored)
            index = next(i for i, s in enumerate(stored) if type(s) is type(chosen) and s == chosen)
            values[dim.key] = dim.choices[index]
    return values


def from_optuna(dims: list[Dimension], params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as Optuna stored them, as the config takes them (choices by their YAML)."""
    values = {}
    for dim in dims:
        if dim.key not in params:
            continue
        stored = params[dim.key]
        if dim.kind == "choice":
            index = next(i for i, s in enumerate(optuna_choices(dim)) if type(s) is type(stored) and s == stored)
            values[dim.key] = dim.choices[index]
        else:
            values[dim.key] = stored
    return values


def handle(study, frozen):
    """A Trial to report to and prune a RUNNING trial that another tune process started (one that
    was killed); Optuna's public constructor, given the trial's id, as Study.ask itself does."""
    return optuna().trial.Trial(study, frozen._trial_id)  # no public accessor for the id


# ---------------------------------------------------------------------------------------------
# Several tune processes on one study: who owns a running trial, and one ask at a time


def owner_id() -> str:
    """This tune process: `<host>-<pid>`."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Owners:
    """Each tune process holds a lock file in the study folder while it runs (`.owners/<host>-<pid>`),
    and names it in the trials it starts: a RUNNING trial whose owner's lock nobody holds was
    left by a process that died (kill -9, power loss) and may be taken over."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / ".owners"
        self._handle = None

    @contextlib.contextmanager
    def hold(self):
        """Hold this process's lock while the study runs here."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{owner_id()}.lock"
        with open(path, "a+") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                path.unlink(missing_ok=True)

    def alive(self, owner: str | None) -> bool:
        """Whether the tune process `owner` still runs (its lock is held); a process on another
        machine, whose lock is not in this folder, counts as alive."""
        if owner is None:
            return False
        path = self.folder / f"{owner}.lock"
        if not path.exists():
            return not owner.startswith(f"{socket.gethostname()}-")
        return fcntl is None or lock_held(path)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (a file, made if needed, or an existing folder) while the block runs."""
    handle = os.open(path, os.O_RDONLY) if path.is_dir() else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def one_at_a_time(folder: Path):
    """Tune processes sharing the study folder count trials and ask for a new one in turn, so
    together they start exactly the study's number of trials."""
    return _locked(Path(folder) / ".ask.lock")
