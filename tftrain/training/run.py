"""`run_config`: the one function that runs a config as `tftrain run` does, and `Outcome`: the
one mapping from how it ended (completed, or the exception it raised) to the run's status and
the process's exit code.

The CLI (`tftrain run`, `--resume`, `--smoke`), the workers of `sweep --jobs N` and `tune`, the
in-process sweep, the Python API and tests call `run_config`; none re-enters the CLI. This
module imports no TensorFlow: `run_config` starts it once the config has been checked, so bad
input is refused in a blink.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tftrain.errors import DivergedError, TftrainError, TrainingInterrupted, UserError

if TYPE_CHECKING:
    from rich.console import Console

    from tftrain.runs import RunDir
    from tftrain.spec.schema import Config

# The statuses a run can end with (summary.json's "status" once it is over).
ENDED = ("completed", "pruned", "diverged", "failed", "interrupted")


@dataclass(frozen=True)
class Outcome:
    """How one run ended: its status (one of ENDED), the exit code `tftrain run` returns for it,
    its one-line reason (None when it completed) and its run directory, if it got one."""

    status: str
    exit_code: int
    error: str | None = None
    run_dir: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the run trained to its end (completed, or pruned by its study)."""
        return self.exit_code == 0

    @classmethod
    def of(cls, error: BaseException | None = None, run: RunDir | None = None) -> Outcome:
        """The outcome of a run that returned `run` (error None) or raised `error`."""
        run_dir = str(run.path) if run is not None else getattr(error, "run_dir", None)
        if error is None:
            status = (run.status() if run is not None else None) or "completed"
            return cls(status if status in ("completed", "pruned") else "completed", 0, None, run_dir)
        if isinstance(error, KeyboardInterrupt):
            return cls("interrupted", 130, "interrupted", run_dir)
        if isinstance(error, TrainingInterrupted):
            return cls("interrupted", error.exit_code, str(error), run_dir)
        if isinstance(error, DivergedError):
            return cls("diverged", error.exit_code, str(error), run_dir)
        if isinstance(error, TftrainError):
            return cls("failed", error.exit_code, str(error), run_dir)
        return cls("failed", 1, f"{error.__class__.__name__}: {error}"[:500], run_dir)

    @classmethod
    def recorded(cls, run: RunDir) -> Outcome:
        """The outcome summary.json records for a run that ended while nobody was listening (a
        tune trial whose tune process was killed): the exit code its status has, its error."""
        status, summary = run.status(), run.summary()
        code = {"completed": 0, "pruned": 0, "diverged": DivergedError.exit_code}.get(status, 1)
        return cls(status, code, summary.get("error"), str(run.path))

    @classmethod
    def died(cls, code: int | None) -> Outcome:
        """A worker process that ended (exit code `code`) without saying how its run ended."""
        return cls("failed", code if isinstance(code, int) and code > 0 else 1,
                   f"worker process died (exit code {code})")

    def as_json(self) -> dict[str, Any]:
        """The outcome as a worker sends it to its parent."""
        return {"status": self.status, "exit": self.exit_code, "error": self.error, "run_dir": self.run_dir}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        """The outcome a worker sent (`as_json`)."""
        return cls(data["status"], int(data["exit"]), data.get("error"), data.get("run_dir"))


def run_config(config: str | Path | Config | Mapping[str, Any] | None = None,
               overrides: Sequence[str] | None = None, runs_dir: str | Path = "runs", name: str | None = None, *,
               resume: str | Path | None = None, workers: str | None = None, worker_index: int | None = None,
               console: Console | None = None, verbose: bool = False, callbacks: Sequence[Any] = (),
               smoke: bool = False, keep: bool = False, plugins: Sequence[str] = (),
               into: str | Path | None = None) -> RunDir | None:
    """Run a config as `tftrain run` does, and return its run directory.

    `config`: a YAML file (loaded, composed and validated, `overrides` being its `--set KEY=VALUE`
    list), a validated Config, or a raw config dict (`overrides` applied to it). `resume`: instead
    of a config, an unfinished run directory to continue exactly (its only override:
    `training.epochs=N`, to train a run on). `workers`/`worker_index`: join a multi_worker cluster
    (`--workers`, `--worker-index`). `smoke`: every stage on a few batches (`keep`: its run
    directory stays in `runs_dir`). `callbacks`: Keras callbacks run beside tftrain's own.
    `plugins`: modules of the user's to import (`--plugin`); a resumed run needs the ones its
    config names, given here (a run directory never makes tftrain import anything itself).
    `into`: train a new run in this directory, which a launcher made (and named) before its
    workers started, instead of a new one under `runs_dir`.

    Returns None for a multi_worker worker other than the chief, or a smoke test not kept.
    Raises what `tftrain run` reports (`Outcome.of` maps it to a status and an exit code).
    """
    from rich.console import Console

    from tftrain.security import check_keras_version

    check_keras_version()  # the runs it writes are read back with Keras; refuse a Keras with known holes
    console = console if console is not None else Console(stderr=True)
    overrides = list(overrides or ())
    if resume is not None:
        if config is not None or name is not None or smoke:
            raise UserError("--resume takes the run directory alone: the run's own config.yaml is what "
                            "continues (CONFIG, --name and --smoke do not apply)")
        import_run_plugins(Path(resume), list(plugins))
        return _resume(Path(resume), overrides, workers, worker_index, console, verbose, callbacks)
    if config is None:
        raise UserError("missing CONFIG: tftrain run CONFIG (or tftrain run --resume RUN_DIR)")
    cfg, shown = _loaded(config, overrides, list(plugins))
    if name is not None:
        from tftrain.runs import check_name

        check_name(name)
    from tftrain.tracking import check_tracking

    check_tracking(cfg)  # before TensorFlow's import: a missing tracker is known in a blink
    _join_cluster(cfg, workers, worker_index)
    what = "smoke-testing" if smoke else "training"
    start(console, f"{what} {shown} ({cfg.data.dataset}, {cfg.model.type} model, {cfg.training.loop} loop)",
           verbose)
    if smoke:
        from tftrain.training.smoke import smoke_run

        return smoke_run(cfg, runs_dir=Path(runs_dir), name=name, console=console, verbose=verbose, keep=keep)
    from tftrain.training.session import run_training

    return run_training(cfg, runs_dir=runs_dir, name=name, console=console, verbose=verbose, callbacks=callbacks,
                        into=Path(into) if into is not None else None)


def _loaded(config: str | Path | Config | Mapping[str, Any], overrides: list[str],
            plugins: list[str]) -> tuple[Config, str]:
    """The validated config, and how the start-up line names it (the file, or the config's name)."""
    from tftrain.spec.loading import apply_override, load_config, validate
    from tftrain.spec.schema import Config

    if isinstance(config, (str, Path)):
        return load_config(config, overrides, plugins=plugins), str(config)
    if isinstance(config, Config):
        if not overrides:
            return config, config.name or "config"
        config = config.model_dump(mode="json")
    if not isinstance(config, Mapping):
        raise UserError(f"run_config: expected a config file, a Config or a dict, got {type(config).__name__}")
    import copy

    raw = copy.deepcopy(dict(config))
    if plugins:
        raw["plugins"] = [*raw.get("plugins", []), *(p for p in plugins if p not in raw.get("plugins", []))]
    for override in overrides:
        apply_override(raw, override)
    raw.setdefault("name", None)
    if raw["name"] is None:
        raw["name"] = "run"  # what a file's stem names otherwise
    cfg = validate(raw)
    return cfg, cfg.name


def _resume(run_dir: Path, overrides: list[str], workers: str | None, worker_index: int | None,
            console: Console, verbose: bool, callbacks: Sequence[Any]) -> RunDir | None:
    """`tftrain run --resume RUN_DIR [--set training.epochs=N]`."""
    from tftrain.runs import RunDir

    epochs = resume_epochs(overrides)
    if not run_dir.exists() and (workers is not None or worker_index is not None or "TF_CONFIG" in os.environ):
        raise UserError(f"--resume: {run_dir} does not exist on this machine; every worker resumes from the "
                        "chief's run directory, so it must be on storage that all workers read "
                        "(a shared filesystem), at the path given here")
    _join_cluster(RunDir.open(run_dir).config(), workers, worker_index)
    start(console, f"resuming {run_dir}" + (f" to {epochs} epochs" if epochs else ""), verbose)
    from tftrain.training.session import resume_training

    return resume_training(run_dir, console=console, verbose=verbose, callbacks=callbacks, epochs=epochs)


def import_run_plugins(run_dir: Path, given: list[str]) -> None:
    """Import the `--plugin` modules given for a command on `run_dir`, once they are the ones its
    config names (tftrain imports nothing a run directory names: the user names it, or the
    command stops with one line saying which to pass)."""
    from tftrain import plugins
    from tftrain.runs import RunDir

    for name in given:
        try:
            plugins.check_module_name(name)
        except ValueError as exc:
            raise UserError(f"--plugin: {exc}") from None
    if not Path(run_dir).exists() and not given:
        return  # the resume itself says the run directory is missing
    needed = RunDir.open(run_dir).config().plugins  # registered names are looked up only once imported
    plugins.require(needed, given, str(run_dir))
    plugins.import_plugins(given, where="--plugin")


def resume_epochs(overrides: Sequence[str]) -> int | None:
    """The one override a resume takes: --set training.epochs=N (a positive integer), or None."""
    from tftrain.spec.safe_yaml import parse_yaml

    if not overrides:
        return None
    key, _, text = overrides[0].partition("=")
    if len(overrides) > 1 or key.strip() != "training.epochs":
        raise UserError("--resume: the only override it takes is --set training.epochs=N (train a run on to "
                        f"N epochs); got --set {(overrides[1] if key.strip() == 'training.epochs' else overrides[0])!r}")
    epochs = parse_yaml(text, source="--set training.epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UserError(f"--set training.epochs: expected a positive integer, got {text!r}")
    return epochs


def start(console: Console, doing: str, verbose: bool) -> None:
    """Start TensorFlow (seconds), saying meanwhile on a terminal what is about to happen, with
    its start-up noise kept off the console (shown with --verbose)."""
    from tftrain.tf_setup import start_tensorflow

    start_tensorflow(verbose, doing=None if console.quiet else doing)


def _join_cluster(cfg: Config, workers: str | None, worker_index: int | None) -> None:
    """Set TF_CONFIG, which TensorFlow reads when its strategy starts, from --workers and
    --worker-index."""
    if workers is not None or worker_index is not None:
        from tftrain.training.distribute import TF_CONFIG, tf_config_from_flags

        if cfg.training.distribute != "multi_worker":
            raise UserError("--workers/--worker-index: only used with training.distribute=multi_worker "
                            f"(it is {cfg.training.distribute})")
        os.environ[TF_CONFIG] = tf_config_from_flags(workers, worker_index)  # read when the strategy starts
