"""The speed options resolved against the data and the machine.

`training.steps_per_execution`, `training.jit_compile`, `training.cpu_threads` and
`training.precision` are the knobs users expect for speed. `precision` changes the numbers a run
produces, so it stays float32 unless asked for; the others default to `auto`, decided here
(steps per compiled call, CPU threads) or by Keras (XLA), and the values actually used are
written to summary.json.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# `auto` sizes a compiled call to about this many multiply-adds (forward passes of its steps):
# a call costs ~2 ms of Python and callbacks, so calls of ~0.1-0.3 s on a 2-core CPU hide it and
# still update progress several times a second. Measured on 2 cores with the MNIST dense model
# (3.3M per step): 1, 8, 32, 128 steps per call run 1.1x, 2.9x, 3.5x, 4.2x the hand-written
# script's examples/second; the CIFAR CNN (290M per step) gets 6 steps, within 1% of more.
AUTO_MACS_PER_CALL = 2_000_000_000
AUTO_MAX_STEPS_PER_EXECUTION = 128  # beyond this the gain is lost in noise
AUTO_STEPS_PER_EXECUTION = 32  # for models whose cost tftrain cannot estimate
# ... and at most an epoch / this many, so progress, --verbose lines and TensorBoard's batch
# points still come about ten times an epoch (callbacks only run between calls).
AUTO_CALLS_PER_EPOCH = 10

# /proc/cpuinfo flags of CPUs that multiply bfloat16 in hardware (AVX512-BF16, AMX).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# `cpu_threads: auto` runs steps with fewer multiply-adds than this (forward pass, whole batch) on
# one intra-op thread: splitting ops that small across cores costs more in hand-offs and spinning
# than it saves. Measured on 2 cores: the MNIST dense model at batch 32 (3.3M) runs 1.3-1.6x the
# examples/second on one thread, with half the CPU time; the CIFAR CNN at batch 64 (300M) runs
# 1.3-1.8x slower on one thread, so it keeps TensorFlow's default (one thread per core).
SMALL_STEP_MACS = 10_000_000


def resolve_steps_per_execution(value: int | str, steps_per_epoch: int, whole_calls: bool,
                                step_macs: int | None = None) -> int:
    """Steps per compiled call: `auto` (AUTO_MACS_PER_CALL / `step_macs` steps, at most
    AUTO_MAX_STEPS_PER_EXECUTION and ~AUTO_CALLS_PER_EPOCH calls an epoch) or the user's number,
    never more than an epoch; the value used is recorded in summary.json.

    The results do not depend on it (the same batches in the same order); only how often
    callbacks see progress does. `whole_calls`: Keras's fit runs every call to its full length,
    so where an epoch is cut from a longer stream (steps mode: one log interval) a call must not
    cross the epoch's end, and the value is lowered to a divisor of steps_per_epoch. (A finite
    epoch dataset ends its last call early by itself.)
    """
    if value == "auto":
        by_cost = AUTO_MACS_PER_CALL // step_macs if step_macs else AUTO_STEPS_PER_EXECUTION
        value = min(by_cost, AUTO_MAX_STEPS_PER_EXECUTION, steps_per_epoch // AUTO_CALLS_PER_EPOCH)
    cap = max(1, min(int(value), steps_per_epoch))
    if not whole_calls:
        return cap
    return max(d for d in range(1, cap + 1) if steps_per_epoch % d == 0)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def precision_note(precision: str, has_gpu: bool, flags: set[str] | None = None) -> str | None:
    """A one-line warning when the chosen precision will likely be slower here, else None."""
    if precision == "float32" or has_gpu:
        return None
    if precision == "mixed_float16":
        return ("training.precision mixed_float16 is meant for GPUs; on this CPU float16 is "
                "emulated and usually slower than float32")
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in BF16_CPU_FLAGS):
        return ("training.precision mixed_bfloat16: this CPU has no bfloat16 units "
                f"({' / '.join(BF16_CPU_FLAGS)} not in its flags), so it usually runs slower "
                "than float32 here")
    return None


def forward_macs(model) -> int:
    """Multiply-adds of one example's forward pass, from a built Keras model's layers: every
    weight matrix (or kernel) multiplies once per output position (the output's shape without
    the batch and channel axes), as dense and convolution layers do; recurrent layers once per
    time step of their input. Embedding tables are looked up, not multiplied."""
    import keras

    macs = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Embedding):
            continue
        # A recurrent layer multiplies its kernels once per time step of its input, whether or
        # not it returns the whole sequence.
        recurrent = isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
        shape = layer.input.shape if recurrent else layer.output.shape
        positions = math.prod(d or 1 for d in tuple(shape)[1:-1])
        macs += positions * sum(math.prod(w.shape) for w in layer.weights if len(w.shape) >= 2)
    return macs


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model or a wrapper of layers
            yield from _leaf_layers(layer)
        else:
            yield layer


def symbolic_macs(model_config, spec) -> int | None:
    """forward_macs of the model `model_config` builds for `spec`, counted on a symbolic build:
    no variable is initialised, so TensorFlow's runtime does not start (thread settings can
    still be applied after). None when the model cannot be built that way."""
    import keras
    from keras.src.backend.common.stateless_scope import StatelessScope  # no public equivalent

    try:
        with StatelessScope(initialize_variables=False):
            macs = forward_macs(model_config.build(spec, load_weights=False))
    except Exception:  # noqa: BLE001 (an estimate only: the real build reports real problems)
        macs = None
    keras.backend.clear_session()  # forget the throwaway layers' names, so the real model's match
    return macs


def resolve_cpu_threads(value: int | str, macs_per_step: int | None, has_gpu: bool) -> int | None:
    """Intra-op threads to ask TensorFlow for; None leaves its default (one per core).

    `auto` picks 1 for steps below SMALL_STEP_MACS on a CPU-only machine, unless the user set
    TF_NUM_INTRAOP_THREADS (their choice wins). The count can change the last bits of results,
    as running on a machine with another number of cores does.
    """
    if value != "auto":
        return int(value)
    chosen = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    if chosen.isdigit() and int(chosen) > 0:  # set explicitly, so the count in effect is recorded
        return int(chosen)
    if has_gpu or chosen or macs_per_step is None:
        return None
    return 1 if macs_per_step < SMALL_STEP_MACS else None


def apply_cpu_threads(threads: int | None) -> int:
    """Set TensorFlow's intra-op threads; returns the count in effect (0: TensorFlow's default).

    It is a process-wide setting that TensorFlow accepts only before it runs its first op: a
    later run in the same process (tests, sweeps in one process) keeps the first run's value.
    """
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime is already up: keep what it has
            pass
    return tf.config.threading.get_intra_op_parallelism_threads()


