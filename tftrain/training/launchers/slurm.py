"""`tftrain run CONFIG --launcher slurm`, run by every task of `srun` (inside `sbatch` or
`salloc`): the cluster comes from SLURM's environment through TensorFlow's own
SlurmClusterResolver, one worker per task, task 0 the chief.

Ports are chosen as the resolver does: the k-th task on a node listens on port_base + k, with
port_base TensorFlow's 8888, or the first port SLURM reserved for the step (`srun --resv-ports`,
SLURM_STEP_RESV_PORTS), which no other job on the node is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tftrain.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from tftrain.runs import RunDir
    from tftrain.spec.schema import Config

# What srun sets in every task and SlurmClusterResolver reads.
SLURM_VARIABLES = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE")
PORT_BASE = 8888  # SlurmClusterResolver's default port_base


def check_slurm(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to start outside a SLURM job step, naming the variables srun would have set."""
    missing = [name for name in SLURM_VARIABLES if not environ.get(name)]
    if missing:
        raise UserError(f"--launcher slurm: not inside a SLURM job step ({', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not set); start tftrain with srun, inside "
                        "sbatch or salloc, one task per worker")


def port_base(environ: Mapping[str, str] = os.environ) -> int:
    """The first port of the step's reserved range (srun --resv-ports), else TensorFlow's 8888."""
    reserved = environ.get("SLURM_STEP_RESV_PORTS", "").split(",")[0].split("-")[0].strip()
    return int(reserved) if reserved.isdigit() else PORT_BASE


def slurm_cluster() -> tuple[str, int]:
    """This task's cluster as `--workers H:P,...` and `--worker-index I`, from SLURM's environment
    by TensorFlow's SlurmClusterResolver (call once TensorFlow is started)."""
    check_slurm()
    import tensorflow as tf
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import expand_tasks_per_node

    try:
        most_tasks = max(expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"]))
        # The resolver packs tasks onto a node's GPUs and finds none on a CPU node (or no
        # nvidia-smi at all): it is told one pretend GPU per task and not to set
        # CUDA_VISIBLE_DEVICES, which SLURM sets itself for tasks that asked for GPUs.
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port_base(), gpus_per_node=most_tasks, gpus_per_task=1, auto_set_gpu=False)
        spec = resolver.cluster_spec().as_dict()
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"--launcher slurm: SLURM's environment does not describe a job step: {exc}") from None
    task_type, task_id = resolver.get_task_info()
    if set(spec) != {"worker"} or task_type != "worker":
        raise UserError(f"--launcher slurm: expected one worker per task, got the cluster {spec}")
    return ",".join(spec["worker"]), int(task_id)


def run_slurm_task(config: Config | None, runs_dir: str | Path, name: str | None, resumed: RunDir | None,
                   console: Console, verbose: bool, callbacks: Sequence[Any] = ()) -> RunDir | None:
    """Train `config` (or resume `resumed`) as this task's worker; task 0, the chief, returns the
    run directory."""
    from tftrain.training.run import run_config, start

    check_slurm()  # before TensorFlow starts: outside SLURM the answer is instant
    start(console, "joining the SLURM job step's cluster", verbose)
    workers, index = slurm_cluster()
    if resumed is not None:
        return run_config(resume=resumed.path, workers=workers, worker_index=index, console=console,
                          verbose=verbose, callbacks=callbacks)
    return run_config(config, runs_dir=runs_dir, name=name, workers=workers, worker_index=index,
                      console=console, verbose=verbose, callbacks=callbacks)
