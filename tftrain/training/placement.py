"""Where this process writes its run and where it restores from: the one place that tells
the chief from the other workers of a multi_worker run, and a new run from a resumed one.

The chief (every process of a single-device or `mirrored` run) writes the run directory. The
other workers of a multi_worker run take the very same steps (saving and reading metrics join
collective ops with the chief) but into a scratch folder that is deleted: the run directory is
the chief's. A resumed run restores from the run's own resume state, on every worker: the
chief's run directory, on storage that all of them read.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tftrain.errors import UserError
from tftrain.runs import CONFIG, RunDir
from tftrain.spec.schema import Config
from tftrain.training.distribute import Distribution


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
