"""What a run's `auto` values meant on the machine it trained on, kept apart from what the user wrote.

config.yaml (and a study's best.yaml, copied from it) keeps the user's values: `auto` stays
`auto`, so the file travels to another machine or another `--jobs` count. What `auto` meant here
goes to summary.json (`resolved`, keyed by config path), and `tftrain run --resume` takes it from
there, so a resumed run reads its data the same way (in memory or streamed) and computes with the
same intra-op thread count (which can change a result's last bits), on any machine.

    key                      what `auto` becomes
    data.in_memory_max_mb    a quarter of this machine's memory, in MiB (tftrain.data.base)
    training.cpu_threads     the plan's thread count (tftrain.training.performance; a worker of
                             `sweep/tune --jobs N` gets its share through TF_NUM_INTRAOP_THREADS)
    training.precision       the policy the plan chose (mixed_bfloat16 where the hardware has it)
"""

from __future__ import annotations

from typing import Any

from tftrain.data.base import in_memory_limit_mb
from tftrain.spec.schema import Config

SUMMARY_KEY = "resolved"
MEMORY, THREADS, PRECISION = "data.in_memory_max_mb", "training.cpu_threads", "training.precision"


def resolved_config(config: Config, recorded: dict[str, Any] | None = None) -> Config:
    """`config` with its `auto` values as this run uses them: those `recorded` in the summary of
    the run being resumed, else this machine's memory limit (threads are the plan's to choose)."""
    recorded = recorded if isinstance(recorded, dict) else {}
    data, training = config.data, config.training
    if data.in_memory_max_mb == "auto":
        memory = recorded.get(MEMORY)
        limit = memory if isinstance(memory, int) and memory >= 0 else in_memory_limit_mb("auto")
        data = data.model_copy(update={"in_memory_max_mb": limit})
    threads = recorded.get(THREADS)
    if training.cpu_threads == "auto" and isinstance(threads, int) and threads > 0:
        training = training.model_copy(update={"cpu_threads": threads})
    precision = recorded.get(PRECISION)
    if training.precision == "auto" and precision in ("float32", "mixed_bfloat16", "mixed_float16"):
        training = training.model_copy(update={"precision": precision})
    return config.model_copy(update={"data": data, "training": training})


def resolved_values(written: Config, used: Config, cpu_threads: int) -> dict[str, Any]:
    """What each `auto` of `written` (the user's config) was in `used` (this run's), for
    summary.json; `cpu_threads`: the count in effect (0: TensorFlow's default, not recorded)."""
    values: dict[str, Any] = {}
    if written.data.in_memory_max_mb == "auto":
        values[MEMORY] = used.data.in_memory_max_mb
    if written.training.cpu_threads == "auto" and cpu_threads > 0:
        values[THREADS] = cpu_threads
    if written.training.precision == "auto":
        values[PRECISION] = used.training.precision
    return values
