"""Worker processes for `tftrain sweep --jobs N` and `tftrain tune --jobs N`: each imports
TensorFlow once, then trains one run after another with `tftrain.training.run_config` (exactly
what `tftrain run` does), so N workers train N runs at once, each in its own process, with a fair
share of the CPU (TF_NUM_INTRAOP_THREADS, which `training.cpu_threads: auto` follows, so each run's
config.yaml keeps `auto`).

The parent (a sweep or a study) hands out jobs and hears back over pipes, one JSON object a line:

    parent -> worker (its stdin)   {"id": ID, "run": {run_config's arguments}, "log": PATH,
                                    "report": METRIC or null}
                                   {"prune": true|false}        the answer to a report
    worker -> parent (a pipe)      {"event": "ready", "pid": PID}
                                   {"event": "report", "id": ID, "step": N, "value": X}
                                   {"event": "done", "id": ID, "status": S, "exit": CODE,
                                    "error": LINE or null, "run_dir": PATH or null}   (an Outcome)

A job that names a metric reports it after every epoch and stops when the answer says so
(tftrain.training.callbacks.pruning). Each run's console output goes to its own log file.

Workers leave with their parent: they run in their own session (a Ctrl-C reaches the parent
only, which passes it on once, so each run saves a checkpoint and stops cleanly), and on Linux
they get one SIGTERM when the parent dies (even by kill -9), which stops a run the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tftrain
from tftrain.errors import TftrainError
from tftrain.training.run import Outcome

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies (Linux)
PARENT_DEATH = getattr(signal, "SIGUSR1", None)  # that signal here (Linux; see _die_with_parent)


def fair_cpu_threads(jobs: int) -> int:
    """Intra-op threads for each of `jobs` processes sharing this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


@dataclass
class Job:
    """One run for a worker: `run_config(**run)` (str and list values: a config file, its
    overrides, runs_dir, name; or resume), its console output to `log`."""

    id: int
    run: dict[str, Any]
    log: Path
    report: str | None = None  # the metric to report after every epoch (a tune trial), or None


@dataclass
class Worker:
    """A worker process as its parent sees it."""

    proc: subprocess.Popen
    number: int
    pid: int | None = None  # known once it says it is ready
    job: Job | None = None
    ready: bool = False
    alive: bool = True

    def send(self, data: dict[str, Any]) -> None:
        """One line to the worker (a job, or an answer)."""
        try:
            self.proc.stdin.write(json.dumps(data) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # it died: its exit event says so


@dataclass
class Event:
    """What a worker said (`ready`, `report`, `done`), or `exit` when its process ended."""

    worker: Worker
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None  # the job a `report`, `done` or `exit` is about

    @property
    def outcome(self) -> Outcome | None:
        """How the job's run ended: what the worker said (`done`), or that its process died
        (`exit` during a job); None for any other event."""
        if self.kind == "done":
            return Outcome.from_json(self.data)
        if self.kind == "exit" and self.job is not None:
            return Outcome.died(self.data.get("code"))
        return None


class WorkerPool:
    """`size` worker processes writing their own output to `log_dir`/worker-N.log; `cpu_threads`:
    each one's share of the cores, for the runs whose config says `training.cpu_threads: auto`
    (TF_NUM_INTRAOP_THREADS, unless the user set it: their config.yaml then keeps `auto`)."""

    def __init__(self, size: int, log_dir: Path, cpu_threads: int | None = None):
        self.size, self.log_dir, self.cpu_threads = size, Path(log_dir), cpu_threads
        self.workers: list[Worker] = []
        self._events: queue.Queue[Event] = queue.Queue()
        self._spawned = 0

    def start(self) -> None:
        """Start the workers (each imports TensorFlow: seconds)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        while len([w for w in self.workers if w.alive]) < self.size:
            self._spawn()

    def _spawn(self) -> Worker:
        self._spawned += 1
        read_fd, write_fd = os.pipe()
        root = str(Path(tftrain.__file__).resolve().parent.parent)  # the same tftrain as this process
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        if self.cpu_threads is not None:
            env.setdefault("TF_NUM_INTRAOP_THREADS", str(self.cpu_threads))
        with open(self.log_dir / f"worker-{self._spawned}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tftrain.commands.workers", str(write_fd), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_fd,), env=env, text=True,
                start_new_session=True)  # signals come from the parent, once (see the module's docstring)
        os.close(write_fd)  # the worker holds the only write end: its exit ends the reader
        worker = Worker(proc, self._spawned)
        self.workers.append(worker)
        threading.Thread(target=self._read, args=(worker, read_fd), daemon=True).start()
        return worker

    def _read(self, worker: Worker, read_fd: int) -> None:
        with os.fdopen(read_fd, encoding="utf-8") as messages:
            for line in messages:
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._events.put(Event(worker, data.get("event", ""), data))
        self._events.put(Event(worker, "exit", {"code": worker.proc.wait()}))

    def idle(self) -> list[Worker]:
        """Workers ready for a job."""
        return [w for w in self.workers if w.alive and w.ready and w.job is None]

    def busy(self) -> list[Worker]:
        """Workers training a job."""
        return [w for w in self.workers if w.alive and w.job is not None]

    def all_ready(self) -> bool:
        """Whether every live worker has imported TensorFlow and waits for a job."""
        live = [w for w in self.workers if w.alive]
        return bool(live) and all(w.ready for w in live)

    def submit(self, worker: Worker, job: Job) -> None:
        """Give `worker` a job."""
        worker.job = job
        worker.send({"id": job.id, "run": job.run, "log": str(job.log), "report": job.report})

    def next_event(self, timeout: float) -> Event | None:
        """The next thing a worker said, with the workers' state updated; None after `timeout` s."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        worker = event.worker
        event.job = worker.job
        if event.kind == "ready":
            worker.ready, worker.pid = True, event.data.get("pid")
        elif event.kind == "done":
            worker.job = None
        elif event.kind == "exit":
            worker.alive, worker.job = False, None
        return event

    def signal(self, signum: int) -> None:
        """Pass a signal on to every busy worker (each run saves a checkpoint and stops)."""
        for worker in self.busy():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.proc.pid, signum)

    def close(self, timeout: float = 30) -> None:
        """Let the workers leave (no more jobs); kill any that do not within `timeout` seconds."""
        for worker in self.workers:
            with contextlib.suppress(OSError, ValueError):
                worker.proc.stdin.close()
        for worker in self.workers:
            try:
                worker.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()


class StopRequests:
    """While active (in the main thread), a first SIGINT or SIGTERM is recorded and passed on to
    the busy workers once: each run saves a checkpoint and stops, as `tftrain run` does. A second
    one is passed on too (the runs stop at once) and raises KeyboardInterrupt here."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, pool: WorkerPool, message: str):
        self.pool, self.message = pool, message
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        self.pool.signal(signum)
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        # os.write, not print: a signal handler may interrupt a half-written console line.
        os.write(2, f"\n{signal.Signals(signum).name}: {self.message} (send it again to stop at once)\n".encode())


def drive(pool: WorkerPool, next_job, on_event, stop: StopRequests) -> None:
    """Hand out `next_job()` to idle workers (the first round once all are ready, so the first
    runs start together) until it returns None or `stop` has a signal, passing every event to
    `on_event` (which answers reports); returns when no worker is busy any more."""
    exhausted, started = False, False
    while True:
        if not exhausted and stop.signum is None and (started or pool.all_ready()):
            started = True
            for worker in pool.idle():
                job = next_job()
                if job is None:
                    exhausted = True
                    break
                pool.submit(worker, job)
        if not pool.busy() and (exhausted or stop.signum is not None or not any(w.alive for w in pool.workers)):
            return
        event = pool.next_event(timeout=0.5)
        if event is None:
            continue
        if event.kind == "exit" and event.worker.pid is None:  # it never got as far as importing TensorFlow
            raise TftrainError(f"a worker process could not start (exit code {event.data.get('code')}); "
                               f"see {pool.log_dir / f'worker-{event.worker.number}.log'}")
        if event.kind == "exit" and not exhausted and stop.signum is None:
            pool.start()  # a worker died (its job is told as failed): another takes its place
        on_event(event)


# ---------------------------------------------------------------------------------------------
# The worker process: `python -m tftrain.commands.workers MESSAGES_FD PARENT_PID`


def _die_with_parent(parent_pid: int) -> None:
    """One SIGTERM when the parent dies (Linux: prctl PR_SET_PDEATHSIG); leave now if it already has.

    The kernel sends the parent-death signal each time this process is handed from a thread of
    the dying parent to the next (a parent of several threads dies one thread at a time), so
    under load a worker could get SIGTERM twice, and a second SIGTERM stops a run at once,
    without its checkpoint. So the parent-death signal is PARENT_DEATH, turned into one SIGTERM."""
    if sys.platform.startswith("linux"):
        signal.signal(PARENT_DEATH, _parent_died)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_DEATH)
    if os.getppid() != parent_pid:  # it died before prctl took effect
        sys.exit(1)


_parent_gone = False  # set by the first parent-death signal


def _parent_died(signum, frame) -> None:
    # The repeats (one per thread of the parent) are ignored. Setting SIG_IGN alone is not enough:
    # a repeat that comes after Python took the first signal but before this handler set SIG_IGN
    # runs the handler again (seen under load: two SIGTERMs). The flag is read and set with no
    # call in between, and Python runs signal handlers only at calls and loop jumps.
    global _parent_gone
    if _parent_gone:
        return
    _parent_gone = True
    signal.signal(PARENT_DEATH, signal.SIG_IGN)
    os.kill(os.getpid(), signal.SIGTERM)  # as `tftrain run` is stopped: a checkpoint, then exit


def _send(messages, data: dict[str, Any]) -> bool:
    try:
        messages.write(json.dumps(data) + "\n")
        messages.flush()
        return True
    except (BrokenPipeError, OSError, ValueError):
        return False  # the parent is gone


def _reporter(job: dict[str, Any], messages, commands):
    """`report(step, value) -> prune?` over the pipes; with the parent gone: never prune."""

    def report(step: int, value: float) -> bool:
        if not _send(messages, {"event": "report", "id": job["id"], "step": step, "value": value}):
            return False
        answer = commands.readline()
        try:
            return bool(answer) and bool(json.loads(answer).get("prune"))
        except json.JSONDecodeError:
            return False

    return report


def _run_job(job: dict[str, Any], messages, commands) -> Outcome:
    """`run_config(**job["run"])` in this process, its output to the job's log (as `tftrain run`
    prints it); returns how the run ended."""
    from rich.console import Console

    from tftrain.console import print_error
    from tftrain.training.callbacks.pruning import PruningCallback
    from tftrain.training.run import run_config

    callbacks = [PruningCallback(job["report"], _reporter(job, messages, commands))] if job.get("report") else []
    with open(job["log"], "a", encoding="utf-8", buffering=1) as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        console = Console(stderr=True)  # made here: it writes to the log
        try:
            run = run_config(**job["run"], console=console, callbacks=callbacks)
        except BaseException as exc:  # noqa: BLE001 (a crash is this run's failure, told to the parent)
            if isinstance(exc, (TftrainError, KeyboardInterrupt)):
                print_error(console, exc)  # as `tftrain run` prints it
            else:
                traceback.print_exc()
            return Outcome.of(exc)
        if run is not None:
            print(run.path)
        return Outcome.of(run=run)


def serve(messages_fd: int, parent_pid: int) -> None:
    """Train the jobs read from stdin, one after another, until stdin closes."""
    _die_with_parent(parent_pid)
    messages = os.fdopen(messages_fd, "w", encoding="utf-8", buffering=1)
    commands = sys.stdin
    from tftrain.tf_setup import setup_tensorflow

    setup_tensorflow()
    import keras

    import tftrain.training.session  # noqa: F401 (TensorFlow is imported once, before the first job)

    _send(messages, {"event": "ready", "pid": os.getpid()})
    for line in commands:
        if not line.strip():
            continue
        job = json.loads(line)
        outcome = _run_job(job, messages, commands)
        keras.backend.clear_session()  # a fresh graph and name scope per run
        if not _send(messages, {"event": "done", "id": job["id"], **outcome.as_json()}):
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
