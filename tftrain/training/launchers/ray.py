"""`tftrain run CONFIG --launcher ray --workers N`: Ray Train's TensorflowTrainer (the V2 API)
places N workers, gives each its TF_CONFIG, and restarts the whole group when a worker dies
(FailureConfig(max_failures=K)).

This process (the driver) names the run before any worker starts: it makes the run directory,
on storage that every worker reads, as multi_worker requires. Every worker of every attempt
then looks at that directory: a run that has started training (summary.json has a status) is
resumed from its newest checkpoint, exactly as `--resume` does; otherwise a new run is trained
into it. The chief (rank 0) records in summary.json's `launcher` block the group's placement
(host:port per rank) and how many times the group was restarted.

Without `--address` a local Ray instance is started for the launch and stopped after it; with
one, the launch joins that cluster (after checking, within ADDRESS_TIMEOUT_S, that something
listens there).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tftrain.errors import DivergedError, TftrainError, TrainingInterrupted, UserError

if TYPE_CHECKING:
    from rich.console import Console

    from tftrain.runs import RunDir
    from tftrain.spec.schema import Config
    from tftrain.training.launchers import Launch

INSTALL = "pip install 'tftrain[ray]'"
ADDRESS_TIMEOUT_S = 10  # how long --address may take to accept a connection before the launch gives up


class LaunchFailed(TftrainError):
    """The launched run did not complete; `exit_code` is its outcome's (1 failed, 2 bad input,
    3 diverged, 130/143 interrupted)."""

    def __init__(self, message: str, exit_code: int = 1, run_dir: str | None = None):
        super().__init__(message)
        self.exit_code, self.run_dir = exit_code, run_dir


def import_ray() -> Any:
    """Ray, or one line saying how to install it."""
    try:
        import ray
        import ray.train
    except ImportError:
        raise UserError(f"--launcher ray: Ray is not installed; {INSTALL}") from None
    return ray


def check_address(address: str, timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """Refuse an --address where nothing accepts a connection within `timeout_s`."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or exc.__class__.__name__)
        raise UserError(f"--address {address}: no Ray cluster answers there (no connection within {timeout_s:g}s: "
                        f"{reason}); start one with: ray start --head --port {port}, or leave --address out to "
                        "start a local Ray instance") from None


def run_on_ray(request: Launch, config: Config, runs_dir: str | Path, name: str | None, resumed: RunDir | None,
               console: Console, verbose: bool, callbacks: Sequence[Any] = ()) -> RunDir:
    """Train `config` (or resume `resumed`) on `request.workers` Ray workers; returns the run.
    `callbacks`: Keras callbacks every worker runs beside tftrain's own (pickled to them)."""
    from tftrain.console import say
    from tftrain.runs import RunDir
    from tftrain.training.run import start

    ray = import_ray()
    if request.address is not None:
        check_address(request.address)
    # Ray Train's TensorFlow module imports TensorFlow here too: quietly, and with the log level
    # that the Ray processes started from here inherit.
    start(console, "starting Ray", verbose)
    run = resumed if resumed is not None else RunDir.create(Path(runs_dir).absolute(), name or config.name)
    job = {"config": None if resumed is not None else config, "run_dir": str(run.path.absolute()),
           "launch_id": uuid.uuid4().hex, "verbose": verbose, "callbacks": list(callbacks)}
    say(console, f"run directory: {run.path}")
    try:
        with ray_session(ray, request, console):
            outcome = _fit(request, job)
    except BaseException as exc:
        if _drop_if_untouched(run, resumed) or not isinstance(exc, LaunchFailed):
            raise
        raise LaunchFailed(f"{exc}; its newest checkpoint resumes the run: tftrain run --resume {run.path} "
                           f"--launcher ray --workers {request.workers}", 1, str(run.path)) from None
    if not outcome.ok:
        dropped = _drop_if_untouched(run, resumed)
        raise LaunchFailed(outcome.error or outcome.status, outcome.exit_code, None if dropped else outcome.run_dir)
    return run


def _drop_if_untouched(run: RunDir, resumed: RunDir | None) -> bool:
    """Remove the run directory this launch made if no worker started training in it; whether
    it did."""
    if resumed is None and not run.summary().get("status"):
        shutil.rmtree(run.path, ignore_errors=True)
        return True
    return False


@contextlib.contextmanager
def ray_session(ray: Any, request: Launch, console: Console) -> Iterator[None]:
    """Connected to Ray for the launch: the cluster at --address, or a local instance made for
    it, sized to the workers asked for (so no request waits for resources that never come),
    and stopped afterwards with every process it started."""
    from tftrain.console import say

    if request.address is not None:
        say(console, f"ray: joining the cluster at {request.address}")
        ray.init(address=request.address, log_to_driver=True)
    else:
        cpus = math.ceil(request.workers * request.cpus_per_worker)
        gpus = math.ceil(request.workers * request.gpus_per_worker)
        say(console, f"ray: starting a local Ray instance ({cpus} CPUs" + (f", {gpus} GPUs)" if gpus else ")"))
        # address="local": a new instance even where RAY_ADDRESS names a cluster (--address is for that)
        ray.init(address="local", num_cpus=cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=True)
    try:
        yield
    finally:
        ray.shutdown()


def _fit(request: Launch, job: dict[str, Any]):
    """Ray Train's fit over the job; the chief's Outcome."""
    from ray.exceptions import RayError
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer
    from ray.train.v2.api.exceptions import TrainingFailedError

    from tftrain.training.run import Outcome

    resources = {"CPU": request.cpus_per_worker}
    if request.gpus_per_worker:
        resources["GPU"] = request.gpus_per_worker
    storage = tempfile.mkdtemp(prefix="tftrain-ray-")  # Ray Train's own run state; tftrain's is the run directory
    trainer = TensorflowTrainer(
        train_worker, train_loop_config=job,
        scaling_config=ScalingConfig(num_workers=request.workers, use_gpu=bool(request.gpus_per_worker),
                                     resources_per_worker=resources),
        run_config=RunConfig(name=f"tftrain-{job['launch_id']}", storage_path=storage,
                             failure_config=FailureConfig(max_failures=request.max_failures)))
    try:
        result = trainer.fit()
    except (TrainingFailedError, RayError) as exc:  # RayError: Ray Train's controller itself did not start
        raise LaunchFailed(f"ray: the workers failed ({request.max_failures} restarts allowed, --max-failures): "
                           f"{_first_failure(exc)}") from None
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    if result.return_value is None:
        return Outcome.died(None)
    return Outcome.from_json(result.return_value)


def _first_failure(error: Exception) -> str:
    """One line for what failed first: the lowest rank's exception (a WorkerGroupError's), or
    the controller's."""
    failures = getattr(error, "worker_failures", None) or {}
    cause = failures[min(failures)] if failures else getattr(error, "controller_failure", error)
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{cause.__class__.__name__}: {lines[-1] if lines else ''}"[:300]


# -- on every worker -----------------------------------------------------------------------------


def train_worker(job: dict[str, Any]) -> dict[str, Any] | None:
    """One Ray Train worker: train the job's run (or resume it, after a restart) with the
    cluster Ray gave it; rank 0 returns the run's Outcome. Errors that another attempt would
    only repeat (bad input, divergence, a signal) end the launch instead of restarting it."""
    # Ray's TensorFlow backend sets TF_USE_LEGACY_KERAS=1 on every worker (ray-project/ray#64276),
    # which routes tf.keras to Keras 2 (tf_keras). tftrain trains with Keras 3: undo it before
    # tftrain imports TensorFlow (Ray's own import of TensorFlow in the worker, for its version
    # report, happens before its backend sets the variable).
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    import ray.train
    from rich.console import Console

    from tftrain.runs import RunDir, RunSummary
    from tftrain.training.distribute import TF_CONFIG, read_tf_config
    from tftrain.training.run import Outcome, run_config

    rank, run = ray.train.get_context().get_world_rank(), RunDir(Path(job["run_dir"]))
    addresses = read_tf_config(os.environ.get(TF_CONFIG))["cluster"]["worker"]  # what Ray's backend wrote
    status = run.summary().get("status")  # read by every rank before any of them can start training
    if status == "completed":
        return Outcome.of(None, run).as_json() if rank == 0 else None
    if rank == 0:
        RunSummary(run).launched("ray", job["launch_id"], addresses, chief_node=ray.get_runtime_context().get_node_id())
    console = Console(stderr=True)
    cluster = {"workers": ",".join(addresses), "worker_index": rank, "console": console, "verbose": job["verbose"],
               "callbacks": job["callbacks"]}
    try:
        if status is None:
            result = run_config(job["config"], into=run.path, **cluster)
        else:
            _wait_for_release(run, job)
            result = run_config(resume=run.path, **cluster)
    except (UserError, DivergedError, TrainingInterrupted) as exc:
        return Outcome.of(exc, run).as_json() if rank == 0 else None
    return Outcome.of(None, result).as_json() if rank == 0 else None


def _wait_for_release(run: RunDir, job: dict[str, Any], timeout_s: float = 60) -> None:
    """A restarted group may start while the killed chief's process still winds down and holds
    the run's lock (the OS drops it when that process ends): wait for it, then resume."""
    deadline = time.monotonic() + timeout_s
    while run.active() and time.monotonic() < deadline:
        time.sleep(0.5)
