"""The `tftrain` command line (typer).

This module parses arguments, calls one function of the core and maps known errors to exit
codes: 0 ok, 1 failed, 2 bad input, 3 diverged, 130/143 interrupted. It imports no TensorFlow at
module level, so `tftrain --help`, `validate` and `show` stay instant; commands that train or
load models start it with `tftrain.tf_setup.start_tensorflow`, after saying what they do.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from typer.core import TyperGroup

from tftrain.errors import TftrainError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_CODES = "Exit codes: 0 ok, 1 failed, 2 bad input, 3 diverged, 130/143 interrupted."


class _OneLineUsageErrors(TyperGroup):
    """typer's command group, reporting a usage mistake (an unknown option, a missing argument)
    as tftrain reports bad input, `error: <one line>` and exit 2, instead of a boxed panel; its
    help lists each command with its whole first paragraph (typer's rich help shows it whole,
    click's plain help would cut it at about 45 characters)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer bundles its own click

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:  # `tftrain` alone: the help is the answer
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            from tftrain.usage import usage_message

            print(f"error: {usage_message(exc)}", file=sys.stderr)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def format_commands(self, ctx, formatter) -> None:
        rows = [(name, _first_paragraph(command.help or "")) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n", 1)[0].split())


# Plain help (click's formatter), not typer's rich panels: typer.rich_utils imports rich.markdown,
# markdown-it, pygments and rich.traceback on every `--help`, about 0.2 s on a slow machine, more
# than typer itself costs (issue 21; bench/compare.py --cases cli).
app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="tftrain",
    help="Train TensorFlow/Keras models from YAML configs.",
    epilog=f"Example: tftrain run configs/linear_regression.yaml    {EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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
RunDirArg = Annotated[Path, typer.Argument(help="A run directory.", show_default=False)]
RunDirsArg = Annotated[list[Path], typer.Argument(help="Run directories.", show_default=False)]
CheckpointOpt = Annotated[str, typer.Option("--checkpoint", help="Which model: last or best.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]
MaxMembersOpt = Annotated[int, typer.Option("--max-members", help="Refuse a grid of more points than this "
                                            "(each is validated and listed, and trained).")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Runs at once, each in its own process with a "
                                      "fair share of the CPU threads.")]
PluginOpt = Annotated[list[str], typer.Option(
    "--plugin", metavar="MODULE", help="Import this module of yours first: its registered layers, losses, metrics "
    "and callbacks become usable by name (repeatable; only code you trust). A run whose config names plugins needs "
    "the same ones.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists (never a run's own files).")]


def _console(quiet: bool = False) -> Console:
    """A stderr console made now, so NO_COLOR and the current stderr apply; quiet prints nothing."""
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


def _print_table(table, console: Console | None = None) -> None:
    from tftrain.console import print_table

    print_table(console or out_console(), table)


def _user_config(config: Path, sets: list[str], given: list[str], console: Console | None = None,
                 verbose: bool = False):
    """A config the user runs, `--plugin` modules added to its plugins; its plugins are imported
    (with TensorFlow started quietly first, when there are any). Returns (composed, Config)."""
    from tftrain.spec.loading import compose_config, validate

    composed = compose_config(config, sets, plugins=given)
    if composed.raw.get("plugins"):
        _start(console or err_console(), f"importing the plugins of {config}", verbose)
    return composed, validate(composed.raw, composed)


def _with_plugins(config: Path | None, sets: list[str], given: list[str]) -> list[str]:
    """`sets` plus, for `--plugin` modules, one `--set plugins=[...]` listing the config's own
    plugins and the given ones: every member or trial, in this process or a worker, imports them."""
    if not given or config is None:
        return sets
    import json

    from tftrain.spec.loading import compose_config

    listed = compose_config(config, sets, plugins=given).raw["plugins"]
    return [*sets, f"plugins={json.dumps(listed)}"]


def _run_plugins(run_dir: Path, given: list[str]) -> None:
    """Import the `--plugin` modules a command on a run directory was given (and only those,
    once they are the ones the run's config names: tftrain.training.run.import_run_plugins)."""
    from tftrain.training.run import import_run_plugins

    import_run_plugins(run_dir, given)


def _check_checkpoint(checkpoint: str) -> None:
    from tftrain.errors import UserError

    if checkpoint not in ("last", "best"):
        raise UserError(f"--checkpoint: expected last or best, got {checkpoint!r}")


def _reports_errors(command):
    """Turn tftrain errors into `error: <one line>` and their exit code; --debug re-raises."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (TftrainError, KeyboardInterrupt) as exc:
            if kwargs.get("debug") and isinstance(exc, TftrainError):
                raise
            from tftrain.console import print_error
            from tftrain.training.run import Outcome

            print_error(err_console(), exc)
            outcome = Outcome.of(exc)
            if outcome.run_dir:  # an interrupted run: its directory is still the result
                print(outcome.run_dir)
            raise typer.Exit(outcome.exit_code) from None

    return wrapper


def _version(value: bool) -> None:
    if not value:
        return
    import platform
    from importlib import metadata

    import tftrain

    def installed(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    print(f"tftrain {tftrain.__version__} (TensorFlow {installed('tensorflow')}, Keras {installed('keras')}, "
          f"Python {platform.python_version()})")
    raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the versions of tftrain, TensorFlow, Keras and Python (no TensorFlow import).")] = False) -> None:
    """Train TensorFlow/Keras models from YAML configs."""


def _extra_callbacks(ctx: typer.Context) -> list:
    """Keras callbacks a caller of `main` asked every run of this invocation to add."""
    return list((ctx.obj or {}).get("callbacks", ()))


@app.command()
@_reports_errors
def run(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Argument(help="YAML config file.", show_default=False)] = None,
    set_: SetOpt = [],  # noqa: B006 (typer reads the default, never mutates it)
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option("--name", help="Run-name prefix (default: the config's name).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Every stage on a few batches (CI); exit 0 only if all work.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="--smoke: keep its run directory in --runs-dir.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run directory and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the resolved config, "
                                          "lines within epochs and TensorFlow's own log.")] = False,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue this interrupted run from its last checkpoint, exactly (multi_worker: "
        "on every worker, with the chief's run directory on storage they all read); with "
        "--set training.epochs=N, train a finished run on to N epochs.", metavar="RUN_DIR")] = None,
    workers: Annotated[Optional[str], typer.Option(
        "--workers", metavar="HOST:PORT,...",
        help="multi_worker: every worker's address, the same list on every machine (with --launcher ray: "
             "how many workers).")] = None,
    worker_index: Annotated[Optional[int], typer.Option(
        "--worker-index", help="multi_worker: this worker's position in --workers (0 is the chief).")] = None,
    plugin: PluginOpt = [],  # noqa: B006
    launcher: Annotated[Optional[str], typer.Option(
        "--launcher", metavar="ray|slurm",
        help="Start the multi_worker workers for you: ray (--workers N on a Ray cluster, restarted and resumed "
             "when one dies) or slurm (one worker per srun task).")] = None,
    address: Annotated[Optional[str], typer.Option(
        "--address", metavar="HOST:PORT",
        help="--launcher ray: join this Ray cluster (default: start a local one).")] = None,
    max_failures: Annotated[Optional[int], typer.Option(
        "--max-failures", help="--launcher ray: restarts of the worker group allowed (-1: no limit) [default: 0].",
        show_default=False)] = None,
    cpus_per_worker: Annotated[Optional[float], typer.Option(
        "--cpus-per-worker", help="--launcher ray: CPUs Ray reserves per worker [default: 1].",
        show_default=False)] = None,
    gpus_per_worker: Annotated[Optional[float], typer.Option(
        "--gpus-per-worker", help="--launcher ray: GPUs Ray reserves per worker [default: 0].",
        show_default=False)] = None,
    debug: DebugOpt = False,
) -> None:
    """Train a model from CONFIG (or continue one with --resume RUN_DIR); prints the run directory.

    Example: tftrain run configs/linear_regression.yaml --set training.epochs=3
    """
    from tftrain.errors import UserError
    from tftrain.training.run import run_config

    if (quiet and verbose) or (keep and not smoke):
        raise UserError("--quiet and --verbose: choose one" if quiet and verbose else
                        "--keep: only with --smoke (a run always keeps its run directory)")
    from tftrain.training.launchers import check_launch

    request = check_launch(launcher, workers, worker_index, address, max_failures, cpus_per_worker, gpus_per_worker)
    if request is not None:
        return _launch(request, launcher, smoke, plugin, config, set_, runs_dir, name, resume, quiet, verbose, ctx)
    result = run_config(config, set_, runs_dir, name, resume=resume, workers=workers, worker_index=worker_index,
                        console=_console(quiet), verbose=verbose, callbacks=_extra_callbacks(ctx), smoke=smoke,
                        keep=keep, plugins=plugin)
    if result is not None:  # None: a multi_worker worker other than the chief, or a smoke test not kept
        print(result.path)


def _launch(request, launcher: str, smoke: bool, plugin: list[str], config, set_, runs_dir, name, resume, quiet: bool,
            verbose: bool, ctx: typer.Context) -> None:
    """`run --launcher ray|slurm`: the launcher starts the workers (tftrain.training.launchers)."""
    from tftrain.errors import UserError
    from tftrain.training.launchers import launch

    if smoke:
        raise UserError(f"--smoke: runs on this machine alone, so not with --launcher {launcher}")
    if plugin:
        raise UserError(f"--plugin: the workers --launcher {launcher} starts import the modules the config "
                        "names; list them under plugins: in the config")
    run = launch(request, config, set_, runs_dir, name, resume, _console(quiet), verbose, _extra_callbacks(ctx))
    if run is not None:  # None: a SLURM task other than the chief
        print(run.path)


def _start(console: Console, doing: str, verbose: bool) -> None:
    """Start TensorFlow (seconds), saying meanwhile on a terminal what is about to happen, with
    its start-up noise kept off the console (shown with --verbose)."""
    from tftrain.training.run import start

    start(console, doing, verbose)


@app.command()
@_reports_errors
def evaluate(
    run_dir: RunDirArg,
    checkpoint: Annotated[Optional[str], typer.Option(
        "--checkpoint", help="Which model: last, best, or a .keras file to evaluate on this run's data "
                             "[default: best where the run tracked a monitor, else last].",
        show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", metavar="CONFIG_OR_PATH",
        help="Evaluate on other data of the same kind: a config file's data: block, or the run's dataset at "
             "this path (all of it); writes eval-NAME.json and plots/NAME/.")] = None,
    as_json: JsonOpt = False,
    unsafe: Annotated[bool, typer.Option(
        "--unsafe", help="Also load what can run code: Lambda layers, .h5 files, SavedModel directories, "
                         "URLs. Only for models from a source you trust.")] = False,
    mistakes: Annotated[Optional[int], typer.Option(
        "--mistakes", min=1, metavar="N",
        help="Also draw the N most confident misclassified test images (plots/mistakes.png).")] = None,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Evaluate a finished run's model on its test split; writes eval.json and plots/.

    Classifiers: per-class table and confusion matrix; binary: ROC and PR curves; regression: MAE, RMSE, R².

    Example: tftrain evaluate runs/mnist-dense-20260101-120000 --mistakes 25 --data other-test-images/
    """
    from tftrain.security import check_keras_version

    check_keras_version()
    _start(err_console(), f"evaluating {run_dir}", verbose=False)
    _run_plugins(run_dir, plugin)
    from tftrain.commands.evaluate import evaluate_run, evaluation_tables

    result = evaluate_run(run_dir, checkpoint, unsafe=unsafe, mistakes=mistakes, data=data)
    from tftrain.commands.evaluation_data import checkpoint_note
    from tftrain.runs import RunDir

    err_console().print(checkpoint_note(RunDir.open(run_dir), result["checkpoint"], result["model"]),
                        markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        from tftrain.console import say

        of = f" of {result['data']}" if "data" in result else ""
        say(out_console(), f"{run_dir}: {result['model']} on {result['split']}{of} ({result['examples']} examples)")
        for shown in evaluation_tables(result):
            if isinstance(shown, str):
                say(out_console(), shown)
            else:
                _print_table(shown)
    _say_plots(run_dir, result)


def _say_plots(run_dir: Path, result: dict) -> None:
    """On stderr: which plots an evaluation wrote (or that there were no mistakes to draw)."""
    mistakes = result.get("mistakes", {})
    written = [*result["plots"].values(), *([mistakes["plot"]] if "plot" in mistakes else [])]
    if written:
        err_console().print(f"plots: {', '.join(str(run_dir / name) for name in written)}", markup=False,
                            highlight=False, soft_wrap=True)
    if mistakes.get("misclassified") == 0:
        err_console().print("--mistakes: no misclassified examples to draw", markup=False, highlight=False)


@app.command()
@_reports_errors
def validate(config: ConfigArg, set_: SetOpt = [], plugin: PluginOpt = [],  # noqa: B006
             debug: DebugOpt = False) -> None:
    """Check a config without training (no TensorFlow import unless it names plugins: instant).

    Example: tftrain validate configs/mnist_dense.yaml --set data.batch_size=64
    """
    from tftrain.spec.base import printable

    _, cfg = _user_config(config, set_, plugin)
    print(f"{printable(str(config), limit=None)}: ok ({cfg.data.dataset}, {cfg.model.type} model, {cfg.training.loop} loop)")


@app.command()
@_reports_errors
def show(
    config: ConfigArg,
    set_: SetOpt = [],  # noqa: B006
    sources: Annotated[bool, typer.Option("--sources", help="Say beside each key which file, --set or "
                                          "default it came from.")] = False,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Print the resolved config, every default included, as YAML (extends and ${env:...} resolved);
    for layer-list models also the layers it builds, repeated groups expanded (a table on stderr).

    Example: tftrain show configs/cifar10_cnn.yaml --set training.loop=fit --sources
    """
    composed, resolved = _user_config(config, set_, plugin)
    if sources:
        from tftrain.commands.show import annotated_yaml

        sys.stdout.write(annotated_yaml(resolved, composed))
    else:
        sys.stdout.write(resolved.to_yaml())
    rows = resolved.model.layer_rows()
    if rows:
        from tftrain.console import layers_table

        _print_table(layers_table(rows, f"model: {resolved.model.type}, {len(rows)} layers"), err_console())


@app.command()
@_reports_errors
def schema(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write it to this file "
                                                   "(default: print it).")] = None,
    debug: DebugOpt = False,
) -> None:
    """Write the JSON Schema of config files, for completion and checks in editors.

    Editors using the YAML language server read it from the first line tftrain init writes.

    Example: tftrain schema --output tftrain.schema.json
    """
    from tftrain.commands.schema import schema_text, write_schema

    if output is None:
        sys.stdout.write(schema_text())
    else:
        print(write_schema(output))


@app.command()
@_reports_errors
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path("config.yaml"),
    template: Annotated[str, typer.Option("--template", "-t", help="fashion_mnist (offline with Debian's "
                                          "dataset-fashion-mnist), mnist, cifar10, regression or binary "
                                          "(generated data).")] = "fashion_mnist",
    schema: Annotated[Path, typer.Option("--schema", help="The JSON Schema file editors should check it "
                                         "against (write it with tftrain schema --output FILE).")
                      ] = Path("tftrain.schema.json"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite PATH if it exists.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a commented starter config to PATH.

    Its first line points editors (YAML language server) at the JSON Schema, --schema.

    Example: tftrain init --template regression my_regression.yaml
    """
    from tftrain.commands.init import write_template

    written = write_template(template, path, force=force, schema=schema)
    print(written)
    if not schema.exists():
        err_console().print(f"editor completion: tftrain schema --output {schema}", markup=False,
                            highlight=False, soft_wrap=True)
    err_console().print(f"next: tftrain validate {written} && tftrain run {written}", markup=False,
                      highlight=False)


@app.command("runs")
@_reports_errors
def runs_(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of run directories.")] = Path("runs"),
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List runs, newest first: status, progress, best metric, time.

    Example: tftrain runs runs/ --json
    """
    from tftrain.commands.runs import list_runs, resume_lines, runs_table

    rows = list_runs(runs_dir)
    if as_json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        err_console().print(f"no runs in {runs_dir}", markup=False, highlight=False)
    else:
        _print_table(runs_table(rows, title=f"{len(rows)} runs in {runs_dir}"))
        from tftrain.console import say

        for line in resume_lines(rows):
            say(err_console(), line)


@app.command()
@_reports_errors
def compare(run_dirs: RunDirsArg, as_json: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Config differences and metrics of several runs (or a sweep's or study's members), side by side.

    Example: tftrain compare runs/mnist-dense-20260101-120000 runs/mnist-dense-20260102-090000
    """
    from tftrain.commands.runs import compare_runs, comparison_tables

    result = compare_runs(run_dirs)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for table in comparison_tables(result):
        _print_table(table)


@app.command()
@_reports_errors
def plot(
    run_dirs: RunDirsArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG file to write.")] = Path("plot.png"),
    force: ForceOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Overlay the curves of one or more runs in one PNG figure (a sweep or study folder: its members).

    Example: tftrain plot runs/lr-0.1-* runs/lr-0.01-* --output lr.png
    """
    from tftrain.commands.plot import overlay_plot

    print(overlay_plot(run_dirs, output, force))


@app.command()
@_reports_errors
def report(
    run_dirs: RunDirsArg,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The HTML file to write (default: RUN_DIR/report.html for one run, "
                               "report.html for several).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write one self-contained HTML page of runs: summary, curves, evaluation, confusion matrix, config.

    Several runs are compared first. Images are inlined, so the file opens anywhere on its own.

    Example: tftrain report runs/lr-0.1-20260101-120000 runs/lr-0.01-20260101-123000 --output report.html
    """
    from tftrain.commands.report import write_report

    print(write_report(run_dirs, output, force=force))


@app.command()
@_reports_errors
def sweep(
    config: ConfigArg,
    grid: Annotated[list[str], typer.Option("--grid", help="KEY=V1,V2,... (repeatable: the cartesian product).",
                                            metavar="KEY=V1,V2")] = [],  # noqa: B006
    set_: SetOpt = [],  # noqa: B006
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where the sweep folder is created.")] = Path("runs"),
    metric: Annotated[Optional[str], typer.Option("--metric", help="Rank by this history column "
                                                  "(default: the checkpoint monitor).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="auto, min or max.")] = "auto",
    jobs: JobsOpt = 1,
    max_members: MaxMembersOpt = 10_000,  # commands.sweep.MAX_MEMBERS (not imported: --help stays light)
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the ranking and errors.")] = False,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Train every combination of --grid values; rank them; write sweep.json.

    Exits 1 if any member did not complete (the others still ran).

    Example: tftrain sweep configs/linear_regression.yaml --grid optimizer.learning_rate=0.1,0.01 --jobs 2
    """
    from tftrain.commands.sweep import run_sweep, sweep_table

    result = run_sweep(config, _with_plugins(config, set_, plugin), grid, runs_dir=runs_dir, metric=metric, mode=mode,
                       console=_console(quiet), jobs=jobs, max_members=max_members)
    _print_table(sweep_table(result), err_console())
    print(result.path)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def tune(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config file (its tune: section, or --space).",
                                                     show_default=False)] = None,
    space: Annotated[Optional[Path], typer.Option("--space", help="The search: objective, space, sampler, "
                                                  "pruner, trials (instead of the config's tune: section).",
                                                  metavar="FILE")] = None,
    set_: SetOpt = [],  # noqa: B006
    trials: Annotated[Optional[int], typer.Option("--trials", help="Trials in the study (all processes "
                                                  "together); overrides the spec's trials.")] = None,
    jobs: JobsOpt = 1,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage shared by every process "
                                                   "of the study: sqlite:///PATH, postgresql://..., mysql://..., "
                                                   "journal:PATH (default: sqlite in the study folder).",
                                                   metavar="URL")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="Study name: processes (and machines) that give "
                                                 "the same one, and the same --storage, share the study.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where the study folder is created.")] = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue this study: trials a stopped or killed tune process left are resumed from "
        "their checkpoints (or re-run), then the study goes on.", metavar="STUDY_DIR")] = None,
    max_members: MaxMembersOpt = 10_000,  # commands.sweep.MAX_MEMBERS (not imported: --help stays light)
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the results and errors.")] = False,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Search hyperparameters with Optuna; prints the study folder (best.yaml, study.json, plots).

    Trials are normal run directories in the study folder, --jobs N of them at a time in worker
    processes; unpromising trials are pruned after any epoch. Exits 1 if no trial completed.

    Example: tftrain tune configs/mnist_dense.yaml --space space.yaml --trials 20 --jobs 2
    """
    from tftrain.commands.tune import resume as resume_study
    from tftrain.commands.tune import tune as run_study
    from tftrain.errors import UserError

    if resume is not None:
        if config is not None or space is not None or set_ or study is not None or plugin:
            raise UserError("--resume takes the study folder alone: its own base.yaml and tune.yaml go on "
                            "(CONFIG, --space, --set, --study and --plugin do not apply; --trials, --jobs and "
                            "--storage do)")
        print(resume_study(resume, trials=trials, jobs=jobs, storage=storage, console=_console(quiet)))
        return
    if config is None:
        raise UserError("missing CONFIG: tftrain tune CONFIG [--space FILE] (or tftrain tune --resume STUDY_DIR)")
    print(run_study(config, space, _with_plugins(config, set_, plugin), trials=trials, jobs=jobs, storage=storage,
                    study_name=study, runs_dir=runs_dir, console=_console(quiet), max_members=max_members))


@app.command()
@_reports_errors
def predict(
    run_dir: RunDirArg,
    inputs: Annotated[list[Path], typer.Argument(help=".npy, .npz, .csv or image files (or a folder of images).",
                                                 show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write a .csv or .json file.")] = None,
    force: ForceOpt = False,
    checkpoint: CheckpointOpt = "last",
    top_k: Annotated[Optional[int], typer.Option(
        "--top-k", min=1, metavar="K", help="Also the K most probable classes of each example, best first.")] = None,
    probabilities: Annotated[bool, typer.Option(
        "--probabilities", help="Also every class's probability, by class name.")] = False,
    as_json: JsonOpt = False,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Predict with a run's model: class and probability, or values.

    Example: tftrain predict runs/mnist-dense-20260101-120000 digits/ --top-k 3 --output predictions.csv
    """
    _check_checkpoint(checkpoint)
    from tftrain.commands.predict import predict_run, predictions_table, write_predictions
    from tftrain.runs import check_output

    if output is not None:
        check_output(output, force)  # before the model runs: a refused path costs nothing
    _start(err_console(), f"predicting with {run_dir}", verbose=False)
    _run_plugins(run_dir, plugin)

    result = predict_run(run_dir, inputs, checkpoint, top_k=top_k, probabilities=probabilities)
    from tftrain.console import say

    for warning in result["warnings"]:
        say(err_console(), f"warning: {warning}")
    if output is not None:
        print(write_predictions(result, output, force))
    elif as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(predictions_table(result))


@app.command()
@_reports_errors
def export(
    run_dir: RunDirArg,
    format_: Annotated[str, typer.Option(
        "--format", "-f", help="saved_model (TF Serving), tflite, onnx (the onnx extra), keras, h5 or weights.")
                       ] = "saved_model",
    quantize: Annotated[Optional[str], typer.Option(
        "--quantize", help="tflite only: none, dynamic (int8 weights), float16, or int8 (weights and "
                           "activations, calibrated on the run's training data). Default: none.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write "
                                                   "(default: RUN_DIR/export/...).")] = None,
    checkpoint: CheckpointOpt = "last",
    lora: Annotated[str, typer.Option("--lora", help="A LoRA model (model.lora): merged (the adapters merged into "
                                      "the kernels) or separate (keras: model.keras + model.lora.h5; saved_model: "
                                      "the adapters as their own variables).")] = "merged",
    as_json: JsonOpt = False,
    plugin: PluginOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Export a run's model for TF Serving, phones and edge devices (TFLite), ONNX runtimes, or Keras code.

    saved_model, tflite and onnx take raw inputs (uint8 images) and return probabilities and the class.

    tflite and onnx files are run in their own runtime on the test split and checked against Keras first.

    Example: tftrain export runs/mnist-dense-20260101-120000 --format tflite --quantize int8
    """
    _check_checkpoint(checkpoint)
    from tftrain.commands.export import export_run, signature_text

    _start(err_console(), f"exporting {run_dir}", verbose=False)
    _run_plugins(run_dir, plugin)

    exported = export_run(run_dir, format_, output, checkpoint, quantize=quantize, lora=lora)
    check = exported.verification
    if as_json:
        print(json.dumps({"path": str(exported.path), "verification": check.to_dict() if check else None}, indent=2))
        if check is not None and check.warning:
            err_console().print(f"warning: {check.warning}", markup=False, highlight=False, soft_wrap=True)
        return
    if format_ == "saved_model":
        err_console().print(signature_text(exported.path), markup=False, highlight=False, soft_wrap=True)
    if check is not None:
        from tftrain.commands.export_check import verification_heading, verification_table

        err_console().print(verification_heading(check), markup=False, highlight=False, soft_wrap=True)
        _print_table(verification_table(check), err_console())
        if check.warning:
            err_console().print(f"warning: {check.warning}", markup=False, highlight=False, soft_wrap=True)
    print(exported.path)


@app.command()
@_reports_errors
def convert(
    config: ConfigArg,
    to: Annotated[str, typer.Option("--to", help="The format to write: tfrecord (tf.train.Example records).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A new (or empty) folder for the shards.",
                                         show_default=False)],
    shards: Annotated[Optional[int], typer.Option("--shards", min=1, help="Files per split (default: about one "
                                                  "per 128 MB of data).")] = None,
    gzip: Annotated[bool, typer.Option("--gzip", help="Compress the shards (smaller, slower to read).")] = False,
    set_: SetOpt = [],  # noqa: B006
    debug: DebugOpt = False,
) -> None:
    """Write the data a config reads (any dataset) as TFRecord shards, and print the data: block that reads them.

    Example: tftrain convert configs/mnist_dense.yaml --to tfrecord --shards 8 --output data/mnist-tfrecord
    """
    from tftrain.errors import UserError
    from tftrain.spec.loading import load_config

    if to != "tfrecord":
        raise UserError(f"--to: expected tfrecord, got {to!r}")
    cfg = load_config(config, set_)
    _start(err_console(), f"converting the data of {config}", verbose=False)
    from tftrain.commands.convert import convert as convert_data
    from tftrain.commands.convert import data_block

    block = convert_data(cfg, output, shards, gzip)
    err_console().print(f"wrote {output}; read it back with:", markup=False, highlight=False, soft_wrap=True)
    sys.stdout.write(data_block(block))


def main(argv: list[str] | None = None, callbacks: list | tuple = ()) -> None:
    """Entry point for `python -m tftrain`. `callbacks`: Keras callbacks that every run (or
    resume) of this invocation adds to its own (tests inject pauses, signals and faults here)."""
    app(args=argv, prog_name="tftrain", obj={"callbacks": list(callbacks)})
