"""`training.distribute`: TensorFlow's own strategies, created from the config.

    none          the default strategy: one device, exactly the single-device code path
    mirrored      tf.distribute.MirroredStrategy over `training.devices` (null: every visible GPU)
    multi_worker  tf.distribute.MultiWorkerMirroredStrategy over the cluster in TF_CONFIG, which
                  `tftrain run --workers H:P,H:P --worker-index I` writes for the user

`data.batch_size` is the global batch: every step consumes that many examples in total, split
evenly over the replicas, so a config trains the same model on one device or on many.

Strategies must exist before TensorFlow runs its first op (collective ops and logical devices
are configured at start-up), so `create_distribution` is the first thing a run does. TensorFlow
is imported inside the functions that need it: the CLI checks the cluster flags without it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import signal
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tftrain.errors import ConfigError, TftrainError, UserError
from tftrain.spec.schema import Config
from tftrain.spec.training import TrainingConfig, canonical_device

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from tftrain.data.pipeline.interface import Pipelines

TF_CONFIG = "TF_CONFIG"
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")


class ClusterError(UserError):
    """--workers/--worker-index or TF_CONFIG do not describe a cluster (exit 2)."""


class ClusterStartError(TftrainError):
    """The cluster did not form: a server could not start, or peers stayed unreachable (exit 1)."""


class PeerLostError(TftrainError):
    """A worker of a running multi_worker run stopped answering (exit 1)."""


@dataclass(frozen=True)
class Distribution:
    """The strategy of one run and this process's place in it."""

    kind: str  # none | mirrored | multi_worker
    strategy: tf.distribute.Strategy
    is_chief: bool  # only the chief writes the run directory
    worker_index: int
    num_workers: int

    @property
    def replicas(self) -> int:
        """Model copies that train in sync (devices over all workers)."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self, batch_size: int) -> dict[str, Any]:
        """The `distribute` block of summary.json."""
        info: dict[str, Any] = {"strategy": self.kind, "replicas": self.replicas,
                                "global_batch": batch_size, "per_replica_batch": batch_size // self.replicas}
        if self.kind != "none":  # the default strategy has no device list
            info["local_devices"] = list(self.strategy.extended.worker_devices)
        if self.kind == "multi_worker":
            info.update(workers=self.num_workers, worker_index=self.worker_index)
        return info


def create_distribution(training: TrainingConfig) -> Distribution:
    """The strategy `training.distribute` asks for; call before TensorFlow runs any op."""
    import tensorflow as tf

    if training.distribute == "mirrored":
        devices = _local_devices(training.devices) if training.devices is not None else None
        strategy = _keras_compatible("mirrored")(devices=devices)
        return Distribution("mirrored", strategy, is_chief=True, worker_index=0, num_workers=1)
    if training.distribute == "multi_worker":
        return _multi_worker(training.distribute_timeout)
    return Distribution("none", tf.distribute.get_strategy(), is_chief=True, worker_index=0, num_workers=1)


def check_distribution(config: Config, distribution: Distribution) -> None:
    """What a config must satisfy to train the same model on several replicas."""
    replicas, batch_size = distribution.replicas, config.data.batch_size
    if batch_size % replicas:
        raise ConfigError(
            f"data.batch_size: {batch_size} does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas} (data.batch_size is the global batch)")
    if distribution.kind == "multi_worker" and config.seed is None:
        raise ConfigError("seed: multi_worker needs a fixed seed (every worker must shuffle the data "
                          "in the same order); set seed: 0 or any number")


def shard_by_example(pipelines: Pipelines) -> Pipelines:
    """Each worker takes its own share of every global batch (AutoShardPolicy.DATA), except for
    training batches drawn from each worker's own files (AutoShardPolicy.OFF: already sharded).

    In-memory datasets are tensors, not files, so tf.data's file-based sharding (the AUTO
    default) would only fall back to this after a warning; streamed record files are sharded by
    file in tftrain.data.pipeline.streaming where there are enough of them. Every worker builds the same
    seeded order.
    """
    import tensorflow as tf

    def policy(kind):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = kind
        return options

    by_data = policy(tf.data.experimental.AutoShardPolicy.DATA)
    train = policy(tf.data.experimental.AutoShardPolicy.OFF) if pipelines.file_sharded else by_data
    validation = pipelines.validation.with_options(by_data) if pipelines.validation is not None else None
    train_from = pipelines._train_from
    return replace(pipelines, _train_from=lambda start: train_from(start).with_options(train),
                   validation=validation)


class SignalAgreement:
    """Turns this worker's pending stop signal (or None) into the one every worker acts on:
    SIGTERM if any worker got one, else SIGINT if any did, else None.

    Every worker calls it after every training call and at every epoch end
    (tftrain.training.checkpointing.StateCallback), so all of them stop after the same step
    whichever of them was signalled. Asking the others is an all-reduce (about 2 ms on two
    workers over localhost), which would slow down short steps by a fifth, so it is done about
    every CHECK_SECONDS of training: with each check the workers also sum how long their calls
    took, and from that same sum every worker derives the same number of calls to the next
    check. Epoch ends always check.
    """

    CHECK_SECONDS = 0.2  # how late a stop may come, roughly; one check costs ~1% of this

    def __init__(self, strategy: tf.distribute.Strategy):
        import tensorflow as tf

        self._calls_to_check = 1
        self._calls = 0
        self._started = time.perf_counter()

        @tf.function
        def sum_over_workers(values):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: values), axis=None)

        self._sum_over_workers = sum_over_workers

    def __call__(self, signum: int | None, epoch_end: bool = False) -> int | None:
        import tensorflow as tf

        self._calls += 0 if epoch_end else 1
        if not epoch_end and self._calls < self._calls_to_check:
            return None
        local = [signum == signal.SIGINT, signum == signal.SIGTERM, time.perf_counter() - self._started, self._calls]
        interrupts, terminations, seconds, calls = self._sum_over_workers(tf.constant(local, tf.float64)).numpy()
        if calls:  # the same numbers on every worker, so the same next check
            self._calls_to_check = int(min(10_000, max(1, round(self.CHECK_SECONDS * calls / max(seconds, 1e-9)))))
        self._calls, self._started = 0, time.perf_counter()
        return signal.SIGTERM if terminations else signal.SIGINT if interrupts else None


def values_on_every_worker(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """`value` as each replica of every worker has it (a collective: every worker must call it)."""
    import tensorflow as tf

    local = strategy.experimental_distribute_values_from_function(lambda _: tf.constant([value], tf.int64))
    return [int(v) for v in strategy.gather(local, axis=0).numpy()]


@contextlib.contextmanager
def peers_lost_as_error(distribution: Distribution):
    """Report a multi_worker peer that went away mid-run (killed, or its machine lost) in one
    line, instead of the collective op's traceback."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as exc:
        if distribution.kind != "multi_worker":
            raise
        peer = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", str(exc))
        who = f"{peer[1]} {peer[2]}" if peer else "another worker"
        raise PeerLostError(
            f"worker {distribution.worker_index} lost contact with {who} ({exc.__class__.__name__} in a "
            "collective op); every worker has to stop: resume them all from the chief's run directory with "
            "tftrain run --resume RUN_DIR and the same --workers, each with its own --worker-index") from None


def wait_for_every_worker(barrier: str, timeout_s: int) -> None:
    """Block until every worker of the cluster reaches `barrier` (a barrier of TensorFlow's
    coordination service, the one MultiWorkerMirroredStrategy already runs).

    Workers that leave together call it first: a worker that exits right after a collective op
    can close its connection while a peer is still reading its share of that op.
    """
    from tensorflow.python.eager import context  # the public API has no barrier; see _time_out_registration

    context.context().wait_at_barrier(barrier, timeout_s * 1000)


def weights_fingerprint(model: keras.Model) -> str:
    """sha256 of every weight's bytes: equal on all workers when they trained in sync."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(array.tobytes())
    return digest.hexdigest()


# -- mirrored ------------------------------------------------------------------------------------


def _local_devices(names: list[str]) -> list[str]:
    """Canonical names of `training.devices`, creating logical CPUs for cpu:1, cpu:2, ...

    Splitting the CPU into logical devices lets anyone try `mirrored` (and its numbers) on a
    laptop: `--set training.distribute=mirrored --set "training.devices=[cpu:0,cpu:1]"`.
    """
    import tensorflow as tf

    devices = [canonical_device(name) for name in names]
    cpus_wanted = 1 + max((int(d.rsplit(":", 1)[1]) for d in devices if ":CPU:" in d), default=0)
    physical = tf.config.list_physical_devices("CPU")
    if cpus_wanted > 1 and tf.config.get_logical_device_configuration(physical[0]) is None:
        try:
            tf.config.set_logical_device_configuration(
                physical[0], [tf.config.LogicalDeviceConfiguration()] * cpus_wanted)
        except RuntimeError:
            pass  # TensorFlow already started in this process; the check below reports it
    available = {canonical_device(d.name.rsplit("/", 1)[-1])  # "/device:CPU:0" -> "device:CPU:0"
                 for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")}
    missing = [name for name, device in zip(names, devices) if device not in available]
    if missing:
        raise ConfigError(
            f"training.devices: {missing[0]} does not exist; this process has "
            f"{', '.join(sorted(available)) or 'no devices'}"
            + (" (logical CPUs can only be added before TensorFlow starts: run tftrain in a fresh process)"
               if ":CPU:" in canonical_device(missing[0]) else ""))
    return devices


# -- multi_worker --------------------------------------------------------------------------------


def tf_config_from_flags(workers: str | None, worker_index: int | None) -> str:
    """`--workers H:P,H:P --worker-index I` as the TF_CONFIG JSON every TensorFlow tool reads.

    Worker 0 is the chief (TensorFlow's rule when the cluster has no `chief` job).
    """
    if workers is None or worker_index is None:
        given, needed = ("--workers", "--worker-index") if workers is not None else ("--worker-index", "--workers")
        raise ClusterError(f"{given} needs {needed} as well (every worker gets the same --workers "
                           "list and its own --worker-index)")
    addresses = [a.strip() for a in workers.split(",") if a.strip()]
    if not addresses:
        raise ClusterError("--workers: expected host:port,host:port,... (one per worker), got nothing")
    for address in addresses:
        _check_address(address, "--workers")
    if len(set(addresses)) != len(addresses):
        raise ClusterError(f"--workers: {next(a for a in addresses if addresses.count(a) > 1)} is listed twice")
    if not 0 <= worker_index < len(addresses):
        raise ClusterError(f"--worker-index: expected 0 to {len(addresses) - 1} (one of the {len(addresses)} "
                           f"--workers), got {worker_index}")
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": worker_index}})


def cluster_flags() -> str | None:
    """This process's cluster (TF_CONFIG) as `--workers ... --worker-index I`; None when it has
    a `chief` job, which the flags cannot express."""
    spec = read_tf_config(os.environ.get(TF_CONFIG))
    if set(spec["cluster"]) != {"worker"}:
        return None
    return f"--workers {','.join(spec['cluster']['worker'])} --worker-index {spec['task']['index']}"


def read_tf_config(text: str | None) -> dict[str, Any]:
    """Parse and check TF_CONFIG: {"cluster": {"worker": [...]}, "task": {"type": ..., "index": ...}}."""
    if not text:
        raise ClusterError("training.distribute multi_worker needs the cluster: pass --workers host:port,... "
                           "--worker-index I (the same list on every worker) or set TF_CONFIG")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"TF_CONFIG: invalid JSON ({exc.msg} at character {exc.pos})") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ClusterError('TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, '
                           '"task": {"type": "worker", "index": 0}}')
    for job, addresses in cluster.items():
        if job not in ("chief", "worker") or not isinstance(addresses, list) or not addresses:
            raise ClusterError(f"TF_CONFIG: cluster.{job}: multi_worker takes 'chief' and 'worker' jobs, "
                               "each a non-empty list of host:port")
        for address in addresses:
            _check_address(address, f"TF_CONFIG cluster.{job}")
    job, index = task.get("type"), task.get("index")
    if job not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[job]):
        raise ClusterError(f"TF_CONFIG: task {json.dumps(task)} is not one of the cluster's tasks "
                           f"({', '.join(f'{j} 0..{len(a) - 1}' for j, a in cluster.items())})")
    return spec


def _check_address(address: Any, where: str) -> None:
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if match is None or not 0 < int(match[2]) < 65536:
        raise ClusterError(f"{where}: expected host:port, got {address!r}")


def _multi_worker(timeout_s: int) -> Distribution:
    import tensorflow as tf

    spec = read_tf_config(os.environ.get(TF_CONFIG))
    cluster, task = spec["cluster"], spec["task"]
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task["type"], task_id=task["index"], rpc_layer="grpc")
    _time_out_registration(timeout_s, cluster)
    try:
        strategy = _keras_compatible("multi_worker")(cluster_resolver=resolver)
    except tf.errors.DeadlineExceededError:
        me = cluster[task["type"]][task["index"]]
        peers = [a for addresses in cluster.values() for a in addresses if a != me]
        raise ClusterStartError(
            f"{task['type']} {task['index']} ({me}) could not reach its peers {', '.join(peers)} within "
            f"{timeout_s}s (training.distribute_timeout): start every worker with the same --workers "
            "list, and check that these host:port addresses are reachable from this machine") from None
    except RuntimeError as exc:  # collective ops can only be configured before TensorFlow starts
        raise ClusterError(f"multi_worker: {str(exc).splitlines()[0]} (run each worker in a fresh process)") from None
    except (tf.errors.UnknownError, tf.errors.UnavailableError) as exc:  # e.g. its port is taken
        raise ClusterStartError(
            f"{task['type']} {task['index']} could not join the cluster at {cluster[task['type']][task['index']]}: "
            f"{str(exc).splitlines()[0]} (is that port free on this machine?)") from None
    is_chief = bool(strategy.extended.should_checkpoint)
    num_workers = sum(len(addresses) for addresses in cluster.values())
    index = task["index"] + (len(cluster.get("chief", [])) if task["type"] == "worker" else 0)
    return Distribution("multi_worker", strategy, is_chief=is_chief, worker_index=index, num_workers=num_workers)


@functools.cache
def _keras_compatible(kind: str) -> type:
    """TensorFlow's strategy class for `kind` (mirrored, multi_worker) with a `reduce` that
    takes what Keras 3's fit gives it.

    Keras's TensorFlow trainer (keras/src/backend/tensorflow/trainer.py) calls `strategy.reduce`
    in two ways that fail (keras-team/keras#20585):
    - `_maybe_symbolic_build`, at the start of fit and of every validation pass, "averages" the
      first whole `(x, y)` batch over the replicas, only to build the model from its shapes and
      dtypes. That fails whenever the batch splits unevenly (a validation set of 11 examples
      over two replicas: shapes [6, 1] and [5, 1]), and under multi_worker always, since that
      strategy cannot reduce a nest, nor uint8 images, over workers. The first replica's share
      of the batch has the same dtypes and inner shapes, so it is returned instead (no
      cross-device traffic for a value Keras discards).
    - `reduce_per_replica` averages each step's scalar metric results over workers with
      `axis=0`, which a scalar does not have: a scalar's mean over the replicas is the reduce
      without an axis.
    """
    import tensorflow as tf

    base = {"mirrored": tf.distribute.MirroredStrategy,
            "multi_worker": tf.distribute.MultiWorkerMirroredStrategy}[kind]

    class Strategy(base):
        def reduce(self, reduce_op, value, axis):
            if isinstance(reduce_op, str):
                reduce_op = tf.distribute.ReduceOp(reduce_op.upper())
            if (reduce_op == tf.distribute.ReduceOp.MEAN and tf.nest.is_nested(value)
                    and not isinstance(value, tf.distribute.DistributedValues)):
                return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
            if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None
            return super().reduce(reduce_op, value, axis)

    Strategy.__name__ = Strategy.__qualname__ = base.__name__
    return Strategy


def _time_out_registration(timeout_s: int, cluster: dict[str, list[str]]) -> None:
    """Make every worker give up after `timeout_s` if the cluster does not form.

    MultiWorkerMirroredStrategy registers each worker with TensorFlow's coordination service,
    which the chief hosts. By default the chief waits for the others forever; with a
    registration barrier and this timeout, every worker fails with DeadlineExceededError
    instead. The shutdown barrier makes the chief wait (as long) for the others to finish before
    it exits, so no worker loses the service while it still saves. The strategy keeps a
    coordination config that is already set, so this one (the strategy's own plus the timeouts)
    is used. The config is reached through TensorFlow's eager context module: the public API
    has no way to set these timeouts (tensorflow is pinned below 2.22 in pyproject.toml).
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
            for job in ("chief", "worker") if job in cluster]
    leader = "chief" if "chief" in cluster else "worker"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        coordinated_jobs=jobs, cluster_register_timeout_in_ms=timeout_s * 1000,
        shutdown_barrier_timeout_in_ms=timeout_s * 1000)
    context.context().coordination_service.cluster_register_with_barrier = True
