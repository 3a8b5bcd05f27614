"""The speed options resolved against the data and the machine.

`training.steps_per_execution`, `training.jit_compile`, `training.cpu_threads`,
`training.precision` and `training.in_graph` are the knobs users expect for speed. They default
to `auto` (precision: float32, see the README), decided here (steps per compiled call, CPU
threads, precision, in-graph data) or by Keras (XLA), and the values actually used are written
to summary.json.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

# `auto` sizes a compiled call by its cost, not as a share of the epoch. Callbacks (progress,
# --verbose lines, TensorBoard's batch points) run between calls, and a call costs ~2 ms of
# Python, callbacks and executor set-up: calls of about AUTO_MACS_PER_CALL multiply-adds
# (forward passes of its steps), ~0.1-0.3 s on a 2-core CPU, hide that and still update progress
# several times a second, however short the epoch. Measured on 2 cores with the MNIST dense
# model (3.3M per step): 1, 8, 32, 128 steps per call run 1.1x, 2.9x, 3.5x, 4.2x the
# hand-written script's examples/second; the CIFAR CNN (290M per step) gets 6 steps, within 1%
# of more.
AUTO_MACS_PER_CALL = 2_000_000_000
# ... and at most this many steps: a tiny model's step costs ~100 us whatever its multiply-adds
# (the table MLP of bench/compare.py: 0.35M), so its calls stay ~50 ms. On its 500-step epochs,
# 125-step calls ran ~20% faster than calls of a tenth of an epoch, and 500-step calls another
# ~10% (alternating rounds, bench/RESULTS.md).
AUTO_MAX_STEPS_PER_EXECUTION = 512
AUTO_STEPS_PER_EXECUTION = 32  # for models whose cost tftrain cannot estimate

# /proc/cpuinfo flags of CPUs that multiply bfloat16 in hardware (AVX512-BF16, AMX).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# `precision: auto` computes in bfloat16 only for steps of at least this many multiply-adds
# (forward pass, whole batch): below it the casts around every op cost more than the faster
# multiplies save. Measured on 2 cores with AVX512-BF16/AMX (raw kernels, bench/baselines/
# raw_kernel.py): the MNIST dense model at batch 32 (3.3M) runs 0.83x float32's rate in
# bfloat16, the CIFAR CNN at batch 64 (290M) 3.0x.
BF16_MIN_STEP_MACS = 50_000_000
# GPUs with bfloat16 arithmetic: compute capability 8.0 (Ampere) and later.
BF16_GPU_CAPABILITY = (8, 0)

# `cpu_threads: auto` runs steps with fewer multiply-adds than this (forward pass, whole batch) on
# one intra-op thread: splitting ops that small across cores costs more in hand-offs and spinning
# than it saves. Measured on 2 cores: the MNIST dense model at batch 32 (3.3M) runs 1.3-1.6x the
# examples/second on one thread, with half the CPU time; the CIFAR CNN at batch 64 (300M) runs
# 1.3-1.8x slower on one thread, so it keeps TensorFlow's default (one thread per core).
SMALL_STEP_MACS = 10_000_000


def resolve_steps_per_execution(value: int | str, steps_per_epoch: int, whole_calls: bool,
                                step_macs: int | None = None, checkpoint_every: int | None = None) -> int:
    """Steps per compiled call: `auto` (AUTO_MACS_PER_CALL / `step_macs` steps, at most
    AUTO_MAX_STEPS_PER_EXECUTION) or the user's number, never more than an epoch; the value used
    is recorded in summary.json.

    The results do not depend on it (the same batches in the same order); only how often
    callbacks see progress does. `whole_calls`: Keras's fit runs every call to its full length,
    so where an epoch is cut from a longer stream (steps mode: one log interval) a call must not
    cross the epoch's end, and the value is lowered to a divisor of steps_per_epoch. (A finite
    epoch dataset ends its last call early by itself.) `checkpoint_every`
    (training.checkpoint.every_steps): `auto` lowers its value to a divisor of it, so the resume
    state is saved every that many steps, as asked (checkpoints are taken between calls).
    """
    divides = [steps_per_epoch] if whole_calls else []
    if value == "auto":
        by_cost = AUTO_MACS_PER_CALL // step_macs if step_macs else AUTO_STEPS_PER_EXECUTION
        value = min(by_cost, AUTO_MAX_STEPS_PER_EXECUTION)
        divides += [checkpoint_every] if checkpoint_every else []
    cap = max(1, min(int(value), steps_per_epoch))
    return max(d for d in range(1, cap + 1) if all(n % d == 0 for n in divides))


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


def resolve_precision(value: str, step_macs: int | None, hardware: str | None) -> tuple[str, str]:
    """The Keras dtype policy for `training.precision` and why: `auto` is mixed_bfloat16 where the
    hardware multiplies bfloat16 (`hardware`: bf16_hardware()'s answer) and the step is large
    enough to gain (BF16_MIN_STEP_MACS), else float32. A float32 run that auto would run in
    bfloat16 says so in its reason (the data lines), so users learn of the faster choice."""
    if value != "auto":
        gain = value == "float32" and hardware is not None and (step_macs or 0) >= BF16_MIN_STEP_MACS
        return value, "training.precision" + (f"; auto would pick mixed_bfloat16 here ({hardware})" if gain else "")
    if hardware is None:
        return "float32", "auto: no bfloat16 units (GPU compute capability >= 8.0, or CPU avx512_bf16 / amx_bf16)"
    if step_macs is None or step_macs < BF16_MIN_STEP_MACS:
        size = "cost unknown" if step_macs is None else f"{step_macs / 1e6:,.1f}M multiply-adds a step"
        return "float32", (f"auto: {hardware}, but the model is too small to gain ({size} < "
                           f"{BF16_MIN_STEP_MACS / 1e6:,.0f}M)")
    return "mixed_bfloat16", f"auto: {hardware}, {step_macs / 1e6:,.0f}M multiply-adds a step"


def bf16_hardware(flags: set[str] | None = None) -> str | None:
    """What multiplies bfloat16 here, or None: the GPUs when there are any (all of compute
    capability >= 8.0), else the CPU (AVX512-BF16 or AMX in its /proc/cpuinfo flags)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
                        for gpu in gpus]
        if min(capabilities) >= BF16_GPU_CAPABILITY:
            return f"GPU compute capability {'.'.join(map(str, min(capabilities)))}"
        return None
    flags = cpu_flags() if flags is None else flags
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    return f"CPU {' + '.join(found)}" if found else None


def resolve_in_graph(value: bool | str, streamed: bool, distribute: str,
                     preprocessor: bool = False) -> tuple[bool, str]:
    """Whether the loops gather training batches inside the compiled step, and why (or why not):
    `auto` does for data in memory on one device. A strategy splits every global batch across
    its replicas through tf.data's distributed iterator, which needs the tf.data pipeline; a
    keras-hub task's preprocessor (`preprocessor`) runs on the batches in tf.data too."""
    if value is False:
        return False, "training.in_graph: false"
    if preprocessor:
        return False, "the model's keras-hub preprocessor reads each batch in tf.data"
    if streamed:
        return False, "the data are read from disk while training"
    if distribute != "none":
        return False, f"training.distribute: {distribute} shares each batch out to its replicas through tf.data"
    return True, "the training split is in memory"


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
    import tensorflow as tf

    from tftrain.models.keras_build import symbolic

    # First in a graph of its own: a layer that makes tensors as it builds (Normalization's mean
    # and variance, a table's numeric columns) would otherwise start the eager runtime, after
    # which the thread count can no longer be set (such a table MLP ran on every core). A model
    # that cannot build in a graph is counted eagerly, as before.
    macs = None
    for scope in (tf.Graph().as_default, contextlib.nullcontext):
        try:  # symbolic() outermost: it forgets the throwaway layers' names outside the graph
            with symbolic(), scope():
                macs = forward_macs(model_config.build(spec, load_weights=False))
        except Exception:  # noqa: BLE001 (an estimate only: the real build reports real problems)
            macs = None
        if macs is not None:
            return macs
    return None


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


def apply_cpu_threads(threads: int | None, one_op_at_a_time: bool = False) -> int:
    """Set TensorFlow's intra-op threads; returns the count in effect (0: TensorFlow's default).
    `one_op_at_a_time` (`auto`'s tiny steps on one device): one inter-op thread too, so the
    step's ops run one after another on one thread instead of being handed between threads:
    a hand-off costs more than such an op (dense MNIST, custom loop: 13.3 -> 10.4 us of CPU per
    example). Not under a strategy, whose replicas' collectives must run side by side.

    It is a process-wide setting that TensorFlow accepts only before it runs its first op: a
    later run in the same process (tests, sweeps in one process) keeps the first run's value.
    Neither changes results: an op computes the same with the same intra-op threads.
    """
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            if one_op_at_a_time and not os.environ.get("TF_NUM_INTEROP_THREADS"):
                tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # the runtime is already up: keep what it has
            pass
    return tf.config.threading.get_intra_op_parallelism_threads()


