"""Where this process writes its run and where it restores from: the one place that tells
the chief from the other workers of a multi_worker run, and a new run from a resumed one.

The chief (every process of a single-device or `mirrored` run) writes the run directory. The
other workers of a multi_worker run take the very same steps (saving and reading metrics join
collective ops with the chief) but into a scratch folder that is deleted: the run directory is
the chief's. A resumed run restores from the run's own resume state, on every worker: the
chief's run directory, on storage that all of them read.

So everything a session does differently on the chief and on the other workers is asked of its
Placement: what it says, whether it writes plots, the weights fingerprint, the resume command,
how the workers agree on a stop, and what the session returns.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from tftrain.console import say
from tftrain.errors import TrainingInterrupted, UserError
from tftrain.runs import CHECKPOINTS, CONFIG, RunDir
from tftrain.runs import resume_command as plain_resume_command
from tftrain.spec.schema import Config
from tftrain.training.distribute import (
    Distribution,
    SignalAgreement,
    cluster_flags,
    values_on_every_worker,
    wait_for_every_worker,
    weights_fingerprint,
)


@dataclass(frozen=True)
class Placement:
    """A new run under `runs_dir` (named `name`, or the config's name) or in `into` (a directory a
    launcher made before its workers started), or the resume of `resumed` (trained on to
    `extends_to` epochs, when given: its config.yaml then says so)."""

    distribution: Distribution
    runs_dir: Path | None = None
    name: str | None = None
    resumed: RunDir | None = None
    extends_to: int | None = None
    into: Path | None = None

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory."""
        return self.distribution.is_chief

    @property
    def restore_from(self) -> Path | None:
        """The resume state to restore (the chief's, on every worker); None for a new run."""
        return None if self.resumed is None else self.resumed.state_folder

    def check(self, holding: bool = False) -> None:
        """Refuse, before anything is built, to resume a run that another process holds or that
        has completed (`holding`: this process holds the run's lock now)."""
        if self.resumed is None:
            return
        if self.is_chief and not holding and self.resumed.active():
            raise UserError(f"{self.resumed.path}: another tftrain process is training this run")
        status = self.resumed.summary().get("status")
        if status == "pruned":
            raise UserError(f"{self.resumed.path}: the run has been pruned; there is nothing to resume")
        if status == "completed" and self.extends_to is None:
            raise UserError(f"{self.resumed.path}: the run has completed; there is nothing to resume (to train "
                            "it on: tftrain run --resume RUN --set training.epochs=N)")

    @contextlib.contextmanager
    def open(self, config: Config) -> Iterator[RunDir]:
        """The run directory this process trains into, held (locked) while it does."""
        if not self.is_chief:
            scratch = RunDir(Path(tempfile.mkdtemp(prefix="tftrain-worker-")))
            try:
                yield scratch
            finally:
                shutil.rmtree(scratch.path, ignore_errors=True)
        elif self.resumed is not None:
            with self.resumed.lock():
                self.check(holding=True)  # another process may have finished it meanwhile
                if self.extends_to is not None:
                    self.resumed.write_text(CONFIG, config.to_yaml())  # the run now trains this long
                yield self.resumed
        else:
            run = RunDir(self.into) if self.into is not None else RunDir.create(self.runs_dir, self.name or config.name)
            with run.lock():
                run.write_text(CONFIG, config.to_yaml())
                yield run

    # -- what differs between the chief and the other workers -------------------------------
    @property
    def multi_worker(self) -> bool:
        """Whether this process is one worker of several (they must act in step)."""
        return self.distribution.kind == "multi_worker"

    @property
    def continues_summary(self) -> bool:
        """Whether summary.json records one more session of a run (the chief of a resumed run)
        rather than a new run's facts (a new run, or a worker's scratch folder)."""
        return self.resumed is not None and self.is_chief

    def result(self, run: RunDir) -> RunDir | None:
        """What a session returns: the run directory on the chief, None on the other workers."""
        return run if self.is_chief else None

    def shown_run_dir(self, run: RunDir) -> str | None:
        """The run directory an interrupted session prints on stdout (the chief's only)."""
        return str(run.path) if self.is_chief else None

    def where_message(self, run: RunDir) -> str:
        """The first line a session says: its run directory, or whose it is."""
        if self.is_chief:
            return f"run directory: {run.path}"
        return (f"worker {self.distribution.worker_index} of {self.distribution.num_workers}: the chief "
                "(worker 0) writes the run directory")

    def resume_command(self, run_path: Path | str | None = None) -> str:
        """The command that continues the run at `run_path` (default: the resumed run's, or
        RUN_DIR), ready to paste into a shell; for a multi_worker run, the chief's, with a word
        on what the other workers run."""
        if run_path is None:
            run_path = self.resumed.path if self.resumed is not None else "RUN_DIR"
        command = plain_resume_command(run_path)
        if not self.multi_worker:
            return command
        flags = cluster_flags()
        if flags is None:  # the cluster came from a TF_CONFIG that the flags cannot express
            return f"{command} (on every worker, with TF_CONFIG set as for this run)"
        return f"{command} {flags} (on every worker, each with its own --worker-index)"

    def signal_agreement(self, strategy) -> SignalAgreement | None:
        """How the workers of a multi_worker run agree on the step to stop after (None: alone)."""
        return SignalAgreement(strategy) if self.multi_worker else None

    def check_restored(self, global_step: int | None, timeout_s: int) -> None:
        """Every worker of a resumed multi_worker run must have restored the same checkpoint
        (`global_step`, None: none), or they would run different steps in lock-step and fail in
        a collective op, without saying why."""
        if not self.multi_worker:
            return
        steps = values_on_every_worker(self.distribution.strategy, -1 if global_step is None else global_step)
        if len(set(steps)) > 1:
            wait_for_every_worker("tftrain-restored", timeout_s)  # all stop: leave together
            found = ", ".join("none" if step < 0 else f"step {step}" for step in steps)
            raise UserError(f"the workers restored different checkpoints ({found}, by replica): every worker "
                            "must resume from the chief's run directory itself, on storage that all of them "
                            "read, not from a copy")

    def interrupted(self, run: RunDir, where: str, signum: int, global_step: int, timeout_s: int
                    ) -> TrainingInterrupted:
        """The error a session stopped by a signal after `global_step` raises (`where`: what
        stopped it, and where); the workers of a multi_worker run leave together first."""
        if self.multi_worker:  # all stopped after this step: leave together
            wait_for_every_worker(f"tftrain-stop-{global_step}", timeout_s)
        if self.is_chief:
            return TrainingInterrupted(f"{where}; checkpoint saved; resume with: {self.resume_command(run.path)}",
                                       signum, run_dir=str(run.path))
        return TrainingInterrupted(f"{where}; the chief saved the checkpoint; resume with: "
                                   f"{self.resume_command()}, RUN_DIR being the chief's run directory", signum)

    def fingerprint(self, model) -> str | None:
        """The weights' sha256 where several processes or devices trained them (anyone can check
        that every worker ended with the same model); None on a single device."""
        return weights_fingerprint(model) if self.distribution.kind != "none" else None

    def checkpoints_of(self, run: RunDir) -> str:
        """Where the run's checkpoints are, as a message names them."""
        return str(run.file(CHECKPOINTS)) if self.is_chief else "the chief's run directory"

    def write_plots(self, run: RunDir, console: Console) -> None:
        """plots/*.png from history.csv, on the chief (other workers train into a scratch folder
        nobody looks at); a plotting problem is a warning, never a lost run."""
        if not self.is_chief:
            return
        from tftrain.runs.plots import write_run_plots  # matplotlib is imported only once a run has a history

        try:
            write_run_plots(run.path)
        except Exception as exc:  # noqa: BLE001 (the trained model and history are already saved)
            say(console, f"warning: plots not written: {exc.__class__.__name__}: {exc}")

    def say_done(self, console: Console, fingerprint: str | None) -> None:
        """A worker's last line: it is done, and the weights it ended with (the chief's run
        directory says the rest)."""
        if not self.is_chief:
            say(console, f"worker {self.distribution.worker_index} of {self.distribution.num_workers} done; "
                         f"weights sha256 {fingerprint} (the chief wrote the run directory)")
