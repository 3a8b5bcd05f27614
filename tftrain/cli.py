"""The `tftrain` command line (typer).

This module parses arguments, calls into the core and maps known errors to exit codes:
0 ok, 1 failed, 2 bad input, 3 diverged, 130/143 interrupted. It imports no TensorFlow at
module level, so `tftrain --help`, `validate` and `show` stay instant.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tftrain.errors import TftrainError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="tftrain",
    help="Train TensorFlow/Keras models from YAML configs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# Progress, tables and errors go to stderr; stdout carries only results (the run directory,
# --json output), so `RUN=$(tftrain run c.yaml)` and `tftrain evaluate RUN --json | jq` work.
# Made on first use: importing rich costs ~30 ms that `validate` and `show` never need.
@functools.cache
def err_console() -> Console:
    """The stderr console (progress, tables, errors)."""
    from rich.console import Console

    return Console(stderr=True)


@functools.cache
def out_console() -> Console:
    """The stdout console (results)."""
    from rich.console import Console

    return Console()


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)]
SetOpt = Annotated[list[str], typer.Option("--set", help="Override a key: --set training.epochs=3 (repeatable).",
                                           metavar="KEY=VALUE")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


def _reports_errors(command):
    """Turn tftrain errors into `error: <one line>` and their exit code; --debug re-raises."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TftrainError as exc:
            if kwargs.get("debug"):
                raise
            err_console().print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console().print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@_reports_errors
def run(
    config: ConfigArg,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default, never mutates it)
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option("--name", help="Run-name prefix (default: the config's name).")] = None,
    debug: DebugOpt = False,
) -> None:
    """Train a model from CONFIG; prints the run directory.

    Example: tftrain run configs/linear_regression.yaml --set training.epochs=3
    """
    from tftrain.config import load_config
    from tftrain.runs import check_name

    cfg = load_config(config, set_)
    if name is not None:
        check_name(name)
    from tftrain.training.runner import run_training  # TensorFlow is imported here, not before

    result = run_training(cfg, runs_dir=runs_dir, name=name, console=err_console())
    print(result.path)


@app.command()
@_reports_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", show_default=False)],
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="Which model: last or best.")] = "last",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Evaluate a finished run's model on its test split; writes eval.json.

    Example: tftrain evaluate runs/mnist-dense-20260101-120000 --checkpoint best
    """
    from tftrain.errors import UserError

    if checkpoint not in ("last", "best"):
        raise UserError(f"--checkpoint: expected last or best, got {checkpoint!r}")
    from tftrain.evaluate import evaluate_run
    from tftrain.report import metrics_table

    result = evaluate_run(run_dir, checkpoint)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        out_console().print(f"{run_dir}: {result['model']} on {result['split']} "
                            f"({result['examples']} examples)", markup=False, highlight=False, soft_wrap=True)
        out_console().print(metrics_table("metrics", result["metrics"]))


@app.command()
@_reports_errors
def validate(config: ConfigArg, set_: SetOpt = [], debug: DebugOpt = False) -> None:  # noqa: B006
    """Check a config without training (no TensorFlow import: instant).

    Example: tftrain validate configs/mnist_dense.yaml --set data.batch_size=64
    """
    from tftrain.config import load_config

    cfg = load_config(config, set_)
    print(f"{config}: ok ({cfg.data.dataset}, {cfg.model.type} model, {cfg.training.loop} loop)")


@app.command()
@_reports_errors
def show(config: ConfigArg, set_: SetOpt = [], debug: DebugOpt = False) -> None:  # noqa: B006
    """Print the resolved config, every default included, as YAML.

    Example: tftrain show configs/cifar10_cnn.yaml --set training.loop=fit
    """
    from tftrain.config import load_config

    sys.stdout.write(load_config(config, set_).to_yaml())


def main() -> None:
    """Entry point for `python -m tftrain`."""
    app(prog_name="tftrain")
