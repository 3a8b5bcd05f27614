"""How many worker processes `--jobs N` starts (issue 34): each is a TensorFlow process
(hundreds of MB before it trains), so `tune --jobs 1000000 --trials 2` must not start a
million. N is refused past MAX_JOBS and capped by the tasks there are and the CPU cores."""

from __future__ import annotations

import os

from tftrain.errors import UserError

MAX_JOBS = 256  # worker processes one command may start


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def capped_jobs(jobs: int, tasks: int | None, what: str) -> tuple[int, str | None]:
    """(workers to start, a line saying why fewer than asked, or None); UserError past MAX_JOBS.
    `tasks`: how many `what` (trials, runs) there are to run; None when unbounded (a time budget)."""
    if jobs < 1:
        raise UserError(f"--jobs: expected a positive number of {what} at once, got {jobs}")
    if jobs > MAX_JOBS:
        raise UserError(f"--jobs: expected at most {MAX_JOBS} {what} at once (each is a TensorFlow process), "
                        f"got {jobs:,}")
    limits = [(cpu_cores(), f"{cpu_cores()} CPU cores")]
    if tasks is not None:
        limits.append((tasks, f"{tasks} {what}"))
    lowest, why = min(limits)
    if jobs <= lowest:
        return jobs, None
    return lowest, f"--jobs {jobs}: {lowest} at once (there are {why})"
