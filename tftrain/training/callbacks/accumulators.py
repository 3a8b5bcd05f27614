"""The metric accumulators of the epoch in progress, as resume state: a run resumed part-way
through an epoch continues its running loss and metric averages where they were."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


class MetricAccumulators(keras.callbacks.Callback):
    """Resume state: the running sums of `metrics` (the loop's loss tracker and metrics) while an
    epoch is in progress; nothing at an epoch boundary, where the loop resets them anyway.

    A restored state is put back when its epoch begins, after the loop has reset the metrics.
    Under a strategy each replica's own accumulators are kept: Keras keeps one per replica and
    sums them when read, and restoring only the sum would split it evenly over the replicas, so
    the rest of the epoch would add up in another order (the same to ~1e-7, not bit for bit).
    """

    state_key = "metrics"

    def __init__(self, metrics: list, strategy: tf.distribute.Strategy):
        super().__init__()
        self.metrics = metrics
        self.strategy = strategy
        self._epoch: int | None = None  # the epoch in progress (None between epochs)
        self._restored: dict[str, Any] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._restored and self._restored["epoch"] == epoch:
            self._put_back(self._restored["values"], self._restored["replica_values"])
            self._restored = None

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = None

    def get_state(self) -> dict[str, Any]:
        """The epoch in progress and its accumulators ({} between epochs). Under a strategy this
        is a collective op: every worker saves at the same steps."""
        if self._epoch is None:
            return {}
        values = {path: keras.ops.convert_to_numpy(v).tolist() for path, v in _variables(self.metrics).items()}
        return {"epoch": self._epoch, "values": values, "replica_values": self._replica_values()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put these accumulators back when their epoch begins."""
        self._restored = state or None

    def _replica_values(self) -> dict[str, list]:
        """Every replica's own accumulators, by variable path, in replica order over all workers;
        {} on one device."""
        parts = {path: self.strategy.experimental_local_results(variable.value)
                 for path, variable in _variables(self.metrics).items() if _per_replica(variable)}
        if not parts:
            return {}
        local_replicas = len(next(iter(parts.values())))

        def flat(context):  # this replica's accumulators in one row (float64 holds them all exactly)
            i = context.replica_id_in_sync_group % local_replicas  # workers have as many replicas each
            return tf.concat([tf.reshape(tf.cast(p[i], tf.float64), [1, -1]) for p in parts.values()], axis=1)

        rows = self.strategy.gather(self.strategy.experimental_distribute_values_from_function(flat), axis=0)
        rows, values, start = rows.numpy(), {}, 0
        for path, (first, *_) in parts.items():
            size = int(np.prod(first.shape))
            values[path] = rows[:, start:start + size].reshape((-1, *first.shape)).tolist()
            start += size
        return values

    def _put_back(self, values: dict[str, list], replica_values: dict[str, list]) -> None:
        """Each replica's own accumulators where saved for this many replicas, else the sums."""
        replica_ids = None
        for path, variable in _variables(self.metrics).items():
            dtype = keras.backend.standardize_dtype(variable.dtype)
            by_replica = replica_values.get(path)
            if (by_replica is not None and _per_replica(variable)
                    and len(by_replica) == self.strategy.num_replicas_in_sync):
                if replica_ids is None:
                    replica_ids = [int(i) for i in self.strategy.experimental_local_results(
                        self.strategy.experimental_distribute_values_from_function(
                            lambda context: tf.constant(context.replica_id_in_sync_group)))]
                for replica, part in zip(replica_ids, self.strategy.experimental_local_results(variable.value)):
                    part.assign(np.asarray(by_replica[replica], dtype=dtype))
            elif path in values:
                variable.assign(np.asarray(values[path], dtype=dtype))


def _variables(metrics: list) -> dict[str, Any]:
    """Each metric variable once (fit's compiled metrics share the configured metric objects),
    keyed by its path, with a counter for repeated paths."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for metric in metrics:
        for variable in metric.variables:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            key, n = variable.path, 1
            while key in found:
                n += 1
                key = f"{variable.path}#{n}"
            found[key] = variable
    return found


def _per_replica(variable) -> bool:
    """Whether a Keras variable is a tf.distribute variable with one accumulator per replica."""
    value = variable.value
    return (isinstance(value, tf.distribute.DistributedValues)
            and value.synchronization == tf.VariableSynchronization.ON_READ)
