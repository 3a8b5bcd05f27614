"""`tftrain run CONFIG --smoke`: every stage of a real run on a few batches, for CI.

The config is the user's own with only its size cut down (see `smoke_config`): the same loader,
model, loss, optimizer, loop and callbacks run, then the saved model is reloaded in safe mode
and evaluated. Each stage is checked, not just run; the first failure ends the smoke test with
its stage named.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from tftrain.console import Table, print_table
from tftrain.errors import TftrainError, UserError
from tftrain.runs import MODEL, PLOTS, SMOKE, TENSORBOARD, RunDir
from tftrain.spec.loading import validate
from tftrain.spec.schema import Config

# Two training and two validation steps: enough for the loop to iterate and for validation to
# aggregate more than one batch, still seconds even for the CNN on a CPU.
SMOKE_BATCHES = 2


class SmokeError(TftrainError):
    """A smoke-test stage did not work (exit 1)."""


def smoke_config(config: Config) -> Config:
    """The same config on about SMOKE_BATCHES batches of training and of validation data.

    `data.limit` keeps the first examples, one epoch (or one log interval of SMOKE_BATCHES steps)
    is trained, and validation on the test split becomes validation on half of the limited
    training examples, so it costs SMOKE_BATCHES batches instead of the whole test set. The test
    split is still read and used by the evaluate stage.
    """
    raw = config.model_dump(mode="json")
    data, training = raw["data"], raw["training"]
    batch = data["batch_size"]
    validation = data["validation"]
    if validation == "test":
        data["validation"] = 0.5
        limit = 2 * SMOKE_BATCHES * batch
    elif isinstance(validation, float):
        limit = math.ceil(SMOKE_BATCHES * batch / (1 - validation))
    else:
        limit = SMOKE_BATCHES * batch
    data["limit"] = min(limit, data["limit"] or limit)
    if training["steps"] is not None:
        training["steps"] = training["log_every"] = SMOKE_BATCHES
    training["epochs"] = 1
    rate = raw["optimizer"]["learning_rate"]
    if isinstance(rate, dict) and (rate.get("warmup_steps") or rate.get("warmup_epochs")):
        rate["warmup_steps"], rate["warmup_epochs"] = 0, None  # a warmup as long as the smoke run is refused
    raw["name"] = f"{config.name}-smoke"
    return validate(raw)


class _Stages:
    """Runs stages in order, times them and records what each one checked."""

    def __init__(self, console: Console):
        self.console = console
        self.results: list[dict[str, Any]] = []

    def run(self, name: str, stage: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail = stage()
        except BaseException as exc:
            self.results.append({"stage": name, "ok": False, "seconds": time.perf_counter() - started,
                                 "detail": f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]})
            print_table(self.console, self.table())
            if isinstance(exc, (TftrainError, KeyboardInterrupt)):
                raise  # keeps its own exit code (2 bad input, 3 diverged, 130 interrupted)
            raise SmokeError(f"smoke test failed at stage '{name}': {self.results[-1]['detail']} (--keep keeps "
                             "the run directory to look at)") from exc
        self.results.append({"stage": name, "ok": True, "seconds": time.perf_counter() - started,
                             "detail": detail})

    def table(self) -> Table:
        table = Table(title="smoke test", title_justify="left")
        for column in ("stage", "result", "seconds", "checked"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for r in self.results:
            table.add_row(r["stage"], "ok" if r["ok"] else "FAILED", f"{r['seconds']:.2f}", r["detail"])
        return table


def smoke_run(config: Config, runs_dir: str | Path = "runs", name: str | None = None,
              console: Console | None = None, verbose: bool = False, keep: bool = False):
    """Run every stage on a few batches; raises at the first failure. With `keep` the run
    directory (with smoke.json) stays in `runs_dir` and is returned; else it is made in a
    temporary folder that is deleted, and None is returned.

    Under `training.distribute: mirrored` every stage runs under the config's strategy, as the
    run would. A multi_worker config is refused: a smoke test runs on this machine alone.
    """
    if config.training.distribute == "multi_worker":
        raise UserError("--smoke: runs on this machine alone, so not with training.distribute=multi_worker; "
                        "smoke-test the config with --set training.distribute=none (or mirrored)")
    console = console or Console(stderr=True)
    if keep:
        return _SmokeTest(smoke_config(config), Path(runs_dir), name, console, verbose).run()
    with tempfile.TemporaryDirectory(prefix="tftrain-smoke-") as scratch:
        _SmokeTest(smoke_config(config), Path(scratch), name, console, verbose).run()
    return None


class _SmokeTest:
    """The stages of one smoke test; each checks what it did and says so in one line."""

    def __init__(self, config: Config, runs_dir: Path, name: str | None, console: Console, verbose: bool):
        self.config, self.runs_dir, self.name = config, runs_dir, name
        self.console, self.verbose = console, verbose
        self.stages = _Stages(console)
        self.distribution = self.run_dir = self.model = self.split = None

    def run(self):
        plan = [("data + model", self.build), ("train + validate + save", self.train),
                ("reload", self.reload), ("evaluate", self.evaluate)]
        try:
            for stage_name, stage in plan:
                self.stages.run(stage_name, stage)
        finally:
            if self.run_dir is not None:  # the run directory records how far the smoke test got
                ok = len(self.stages.results) == len(plan) and all(r["ok"] for r in self.stages.results)
                self.run_dir.write_json(SMOKE, {"ok": ok, "stages": self.stages.results})
        print_table(self.console, self.stages.table())
        return self.run_dir

    def build(self) -> str:
        from tftrain.training.distribute import check_distribution, create_distribution
        from tftrain.training.prepare import prepare

        # The strategy first, as in a run: mirrored on logical CPUs must split the CPU before
        # TensorFlow runs its first op. The training stage then uses the same one.
        self.distribution = create_distribution(self.config.training)
        check_distribution(self.config, self.distribution)
        prepared = prepare(self.config, self.distribution)
        pipes = prepared.pipelines
        val = f", {pipes.validation_steps} validation batches" if pipes.validation is not None else ""
        return (f"{prepared.data_info['train_examples']} examples, {pipes.steps_per_epoch} training "
                f"batches{val}; model {prepared.model.name} with {prepared.model.count_params():,} parameters")

    def train(self) -> str:
        from tftrain.training.session import run_training

        before = set(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else set()
        try:
            run = run_training(self.config, runs_dir=self.runs_dir, name=self.name and f"{self.name}-smoke",
                               console=self.console, verbose=self.verbose, distribution=self.distribution)
        except BaseException:
            created = set(self.runs_dir.iterdir()) - before if self.runs_dir.is_dir() else set()
            if len(created) == 1:  # the failed run's directory gets smoke.json too
                self.run_dir = RunDir(created.pop())
            raise
        self.run_dir = run
        return _check_trained(run)

    def reload(self) -> str:
        import keras
        import numpy as np

        from tftrain.runs.evaluation import evaluation_split
        from tftrain.security import load_model

        run = self.run_dir
        self.model = load_model(run.file(MODEL))  # safe mode: nothing in the file is executed
        _, self.split = evaluation_split(self.config)
        x = next(iter(self.split.batches))[0]  # a tensor: a typed table's rows are strings, which no NumPy array adapter takes
        last = load_model(run.snapshot("last"))
        # The final model and the last snapshot are the same weights: their outputs (each of
        # several outputs) must agree.
        pairs = zip(keras.tree.flatten(self.model.predict(x, verbose=0)), keras.tree.flatten(last.predict(x, verbose=0)))
        if not all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in pairs):
            raise SmokeError("model.keras and checkpoints/last.keras give different outputs")
        return "model.keras and checkpoints/last.keras loaded in safe mode, same outputs"

    def evaluate(self) -> str:
        from tftrain.runs.evaluation import evaluate_model

        config, split = self.config, self.split
        batches = min(SMOKE_BATCHES, math.ceil(split.examples / config.data.batch_size))
        metrics = evaluate_model(self.model, config, split.batches.take(batches))
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            raise SmokeError(f"non-finite {', '.join(bad)} on the {split.name} split")
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        return f"{split.name} split, {batches} batch{'es' if batches > 1 else ''}: {shown}"


def _check_trained(run: RunDir) -> str:
    """What a finished smoke run must hold: completed, finite losses, every output written."""
    summary, rows = run.summary(), run.history()
    if summary.get("status") != "completed" or not rows:
        raise SmokeError(f"run ended with status {summary.get('status')!r} and {len(rows)} history rows")
    last = rows[-1]
    checked = [k for k in ("loss", "val_loss") if k in last]
    if "loss" not in last or (summary["data"].get("validation") and "val_loss" not in last):
        raise SmokeError(f"history.csv lacks loss or val_loss: columns {', '.join(last)}")
    bad = [k for k in checked if not math.isfinite(float(last[k]))]
    if bad:
        raise SmokeError(f"non-finite {', '.join(bad)} in history.csv")
    missing = [str(p.relative_to(run.path)) for p in (run.file(MODEL), run.snapshot("last"),
                                                       run.file(TENSORBOARD), run.file(PLOTS)) if not p.exists()]
    if missing:
        raise SmokeError(f"{run.path} lacks {', '.join(missing)}")
    return (f"{summary['steps_done']} training steps; finite {' and '.join(checked)}; "
            f"model.keras, checkpoints, tensorboard/, plots/ written")
