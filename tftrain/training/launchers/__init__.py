"""Launchers: `tftrain run CONFIG --launcher ray|slurm` starts (or joins) the workers of a
multi_worker run, so nobody logs in to each machine to type `--workers H:P,... --worker-index I`.

    ray    Ray Train's TensorflowTrainer places `--workers N` workers on a Ray cluster (a local
           one, or `--address HOST:PORT`), gives each its TF_CONFIG, and restarts the whole group
           when a worker dies (`--max-failures K`); the restarted workers resume the run from
           its newest checkpoint, exactly as `--resume` does.        (launchers/ray.py)
    slurm  every task of `srun` runs tftrain; TensorFlow's SlurmClusterResolver turns SLURM's
           environment into the cluster.                                 (launchers/slurm.py)

Each worker runs `training.run_config` with `workers=`/`worker_index=`, as a hand-started worker
does. This module checks the flags and the config without TensorFlow or Ray: bad input is one
line (exit 2) before anything starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tftrain.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from tftrain.runs import RunDir
    from tftrain.spec.schema import Config

LAUNCHERS = ("ray", "slurm")


@dataclass(frozen=True)
class Launch:
    """What `--launcher` and its options ask for (checked)."""

    launcher: str
    workers: int | None = None  # ray: how many workers to place
    address: str | None = None  # ray: an existing cluster's HOST:PORT; None starts a local one
    max_failures: int = 0  # ray: group restarts allowed before the run fails
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0


def check_launch(launcher: str | None, workers: str | None, worker_index: int | None, address: str | None,
                 max_failures: int | None, cpus_per_worker: float | None,
                 gpus_per_worker: float | None) -> Launch | None:
    """The launch the flags ask for (None: no launcher), or a UserError naming the flag."""
    ray_only = {"--address": address, "--max-failures": max_failures, "--cpus-per-worker": cpus_per_worker,
                "--gpus-per-worker": gpus_per_worker}
    given = [flag for flag, value in ray_only.items() if value is not None]
    if launcher is None:
        if given:
            raise UserError(f"{given[0]}: only used with --launcher ray")
        return None
    if launcher not in LAUNCHERS:
        raise UserError(f"--launcher: expected one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if worker_index is not None:
        raise UserError(f"--worker-index: not with --launcher {launcher} (the launcher gives every worker its "
                        "index)")
    if launcher == "slurm":
        if workers is not None or given:
            flag = "--workers" if workers is not None else given[0]
            raise UserError(f"{flag}: not with --launcher slurm (SLURM places the workers: srun --ntasks N "
                            "starts N, one per task)")
        return Launch("slurm")
    count = _worker_count(workers)
    for flag, value in (("--cpus-per-worker", cpus_per_worker), ("--gpus-per-worker", gpus_per_worker)):
        if value is not None and not value >= 0:
            raise UserError(f"{flag}: expected a number of at least 0, got {value}")
    if max_failures is not None and max_failures < -1:
        raise UserError(f"--max-failures: expected 0 or more (-1: restart without limit), got {max_failures}")
    if address is not None:
        from tftrain.training.distribute import ClusterError, _check_address

        try:
            _check_address(address, "--address")
        except ClusterError as exc:
            raise UserError(str(exc)) from None
    return Launch("ray", count, address, max_failures or 0,
                  1.0 if cpus_per_worker is None else cpus_per_worker, gpus_per_worker or 0.0)


def _worker_count(workers: str | None) -> int:
    """--workers N of --launcher ray: a positive number, not a list of addresses."""
    if workers is None:
        raise UserError("--launcher ray needs --workers N (how many workers Ray places)")
    text = workers.strip()
    if ":" in text or "," in text:
        raise UserError(f"--workers: with --launcher ray it is the number of workers (Ray picks their "
                        f"addresses), got the address list {workers!r}; give --workers N, or drop --launcher "
                        "to start each listed worker yourself")
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"--workers: expected the number of workers (1 or more), got {workers!r}")
    return int(text)


def check_distribute(config: Config, launcher: str) -> None:
    """A launcher starts the workers of a multi_worker run; any other strategy trains on one
    machine, so the config must say multi_worker itself (its config.yaml then says what ran)."""
    if config.training.distribute != "multi_worker":
        raise UserError(f"--launcher {launcher}: starts the workers of a training.distribute: multi_worker run, "
                        f"and this config says {config.training.distribute}; set training.distribute: "
                        "multi_worker (or --set training.distribute=multi_worker)")


def launched_config(config: str | Path | None, overrides: list[str], resume: str | Path | None,
                    name: str | None) -> tuple[Config, RunDir | None]:
    """The config a launch trains (the file's, or the resumed run's own) and, for --resume,
    that run; TF-free, so a bad config is refused before any worker starts."""
    from tftrain.runs import RunDir, check_name
    from tftrain.spec.loading import load_config

    if resume is not None:
        if config is not None or name is not None:
            raise UserError("--resume takes the run directory alone: the run's own config.yaml is what continues")
        if overrides:
            raise UserError("--set: not with --launcher and --resume (the run continues as its config.yaml says; "
                            "to train it on to more epochs: tftrain run --resume RUN --set training.epochs=N)")
        run = RunDir.open(resume)
        if run.summary().get("status") in ("completed", "pruned"):
            raise UserError(f"{run.path}: the run has {run.summary()['status']}; there is nothing to resume")
        return run.config(), run
    if config is None:
        raise UserError("missing CONFIG: tftrain run CONFIG --launcher ... (or --resume RUN_DIR)")
    if name is not None:
        check_name(name)
    return load_config(config, overrides), None


def launch(request: Launch, config: str | Path | None, overrides: list[str], runs_dir: str | Path,
           name: str | None, resume: str | Path | None, console: Console, verbose: bool,
           callbacks: Sequence[Any] = ()) -> RunDir | None:
    """Run a config (or resume a run) under `request.launcher`; returns the run directory where
    this process is the one to print it (the ray driver; SLURM's task 0). `callbacks`: Keras
    callbacks every worker runs beside tftrain's own (run_config's)."""
    cfg, resumed = launched_config(config, list(overrides), resume, name)
    check_distribute(cfg, request.launcher)
    if request.launcher == "slurm":
        from tftrain.training.launchers.slurm import run_slurm_task

        return run_slurm_task(cfg if resumed is None else None, runs_dir, name, resumed, console, verbose, callbacks)
    from tftrain.training.launchers.ray import run_on_ray

    return run_on_ray(request, cfg, runs_dir, name, resumed, console, verbose, callbacks)
