"""The speed options resolved against the data and the machine.

`training.steps_per_execution`, `training.jit_compile` and `training.precision` are the knobs
users expect for speed. Only `precision` changes the numbers a run produces, so it stays
float32 unless asked for; the other two default to `auto`, decided here (steps per compiled
call) or by Keras (XLA), and the values actually used are written to summary.json.
"""

from __future__ import annotations

from pathlib import Path

from tftrain.errors import ConfigError

# `auto` runs up to this many steps per compiled call. Measured on a 2-core CPU with the MNIST
# dense model: 1 -> 32 steps per call is ~3x the examples/second, 32 -> 128 adds little; on
# models whose steps take tens of milliseconds it changes nothing but the progress granularity.
AUTO_STEPS_PER_EXECUTION = 32

# /proc/cpuinfo flags of CPUs that multiply bfloat16 in hardware (AVX512-BF16, AMX).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_steps_per_execution(value: int | str, steps_per_epoch: int, steps_mode: bool) -> int:
    """Steps per compiled call: `auto` or the user's number, never more than an epoch.

    The results do not depend on it (the same batches in the same order); only how often
    callbacks see progress does. In steps mode an epoch is one log interval cut from an endless
    stream, and Keras's fit runs whole calls, so the value must divide the interval there or
    each interval would train too many steps.
    """
    if value == "auto":
        cap = min(AUTO_STEPS_PER_EXECUTION, steps_per_epoch)
        if not steps_mode:
            return max(1, cap)  # a finite epoch ends a call early at its last batch
        return max(d for d in range(1, cap + 1) if steps_per_epoch % d == 0)
    value = min(int(value), steps_per_epoch)
    if steps_mode and steps_per_epoch % value:
        divisors = [d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0]
        raise ConfigError(
            f"training.steps_per_execution: {value} does not divide the log interval of "
            f"{steps_per_epoch} steps (training.log_every); expected one of "
            f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''} or auto")
    return value


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
