"""tftrain against the hand-written Keras code it replaces: speed, memory, results, overhead.

    python bench/compare.py            # full run (~10 min on 2 cores); rewrites the table in bench/RESULTS.md
    python bench/compare.py --quick    # shorter variant (~4 min); prints only, unless --output is given

Cases, each run as separate processes alternating baseline and tftrain (A B C A B C ...), so
load changes on a shared machine hit every variant alike; the tables show medians:

  dense     the beginner-quickstart script (model.fit on NumPy arrays / 255.0) against
            configs/mnist_dense.yaml with `loop: fit` and `loop: custom`, beside the hand-tuned
            Keras loop (bench/baselines/mnist_dense_tuned.py) and the raw-kernel limit
            (bench/baselines/raw_kernel.py: the same step in plain TensorFlow ops, in a tf.range
            loop over data in the graph) on one thread, one op at a time, and on two threads.
  cnn       the CIFAR CNN with a hand-written @tf.function GradientTape step on NumPy slices,
            against configs/cifar10_cnn.yaml (custom loop), the same with `loop: fit`, and
            with `training.precision: auto` (bfloat16 where the CPU has the units), beside the
            raw-kernel limit in float32 (one and two threads) and in bfloat16 (machines with
            the units; a line says it is skipped elsewhere).
  table     a small MLP over a numeric CSV (Dense64-Dense64-softmax over 100 standardized
            features, batch 32, Adam): `tftrain run` on the CSV with `loop: fit` and `loop:
            custom`, beside its raw-kernel limit (bench/baselines/raw_kernel.py --model table: the
            same step in plain TensorFlow ops on the same numbers), likewise. A
            step this small (~0.5M multiply-adds) is nearly all per-step overhead.
  resnet    configs/cifar10_resnet20.yaml (a 72-layer graph, 0.27M parameters, ~41M multiply-adds
            per image) against the tutorial CNN of configs/cifar10_cnn.yaml (~4.5M), both tftrain
            runs on the same CIFAR-shaped data: what a real residual network costs per example
            (not part of the default cases: --cases resnet).
  overhead  wall time of `tftrain run` on a one-step config against a script doing that step.
  cli       wall and CPU time of `tftrain --help`, `validate`, `show` and `schema` (on the smallest
            config and on one that reads the most of the schema), as ratios to `python -c "import
            typer"` run in the same rounds, beside what a typer + pydantic + PyYAML program pays to
            validate a file (bench/baselines/typer_validate.py); `--baseline OTHER_CHECKOUT` times
            that checkout's commands too. Written to its own block of bench/RESULTS.md.

examples/second is training only, measured by tftrain.training.callbacks.throughput for both sides (each
epoch from its start to its last step, so validation and checkpoints are left out; the first
compiled call, which traces and compiles, is left out too and reported as "1st call s").
tftrain's figure is read from the run's summary.json. Peak RSS is each process's own
(os.wait4); Linux counts the launching process's size at fork in it too, so this script stays
small (~20 MB: no NumPy here; the data are written by a child process). The data are random
arrays of the real shapes with a learnable class signal (MNIST: the Keras-cache mnist.npz
instead, when it exists), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CONFIGS = REPO / "configs"
BASELINES = BENCH / "baselines"
RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- compare.py: begin -->", "<!-- compare.py: end -->"
CLI_BEGIN, CLI_END = "<!-- compare.py --cases cli: begin -->", "<!-- compare.py --cases cli: end -->"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Sizes:
    """How much work each case does. Sizes are multiples of the batch sizes (32, 64), so no
    variant pays for an extra trace of a short last batch."""

    mnist_train: int
    mnist_test: int
    dense_epochs: int
    cifar_train: int
    cifar_test: int
    cnn_epochs: int
    dense_repeats: int
    cnn_repeats: int
    overhead_repeats: int
    cli_repeats: int
    table_train: int = 16000
    table_test: int = 2000
    table_epochs: int = 2


FULL = Sizes(mnist_train=60000, mnist_test=10000, dense_epochs=2, cifar_train=10240, cifar_test=2048,
             cnn_epochs=1, dense_repeats=5, cnn_repeats=5, overhead_repeats=5, cli_repeats=11, table_train=64000,
             table_test=8000)
QUICK = Sizes(mnist_train=19200, mnist_test=2000, dense_epochs=2, cifar_train=6400, cifar_test=640,
              cnn_epochs=1, dense_repeats=3, cnn_repeats=3, overhead_repeats=3, cli_repeats=7)


@dataclass(frozen=True)
class Variant:
    """One program of a case: a baseline script or a tftrain run."""

    name: str
    command: Callable[[Path, int], list[str]]  # (work folder, seed) -> argv
    read: Callable[[Path, str], dict]  # (work folder, stdout) -> measurements
    baseline: bool = False
    rounds: int | None = None  # run only in the first N rounds (None: every round)
    rate_only: bool = False  # a shorter run: its loss and accuracy are not comparable


# -- data -------------------------------------------------------------------------------------


def synthetic_npz(path: Path, n_train: int, n_test: int, shape: tuple, label_shape: tuple, seed: int,
                  signal: float) -> Path:
    """uint8 images of one of 10 class templates (weight `signal`) under noise: random, but
    learnable, so loss and accuracy move and the variants' results can be compared. Written by
    a child process, so NumPy's arrays never inflate this process (see the module docstring)."""
    spec = json.dumps([str(path), n_train, n_test, list(shape), list(label_shape), seed, signal])
    subprocess.run([sys.executable, __file__, "--write-data", spec], check=True)
    return path


def _write_synthetic_npz(path: str, n_train: int, n_test: int, shape: list, label_shape: list, seed: int,
                         signal: float) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, *shape)).astype(np.float32)

    def split(n: int):
        y = rng.integers(0, 10, n)
        x = signal * templates[y] + (1 - signal) * rng.integers(0, 256, (n, *shape))
        return x.astype(np.uint8), y.astype(np.uint8).reshape(n, *label_shape)

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def synthetic_table(folder: Path, n_train: int, n_test: int, seed: int) -> Path:
    """table.csv and table_test.csv (100 numeric features, a class label of 5), and the same
    numbers in table.npz for the raw kernel; written by a child process (see synthetic_npz)."""
    spec = json.dumps([str(folder), n_train, n_test, seed])
    subprocess.run([sys.executable, __file__, "--write-table", spec], check=True)
    return folder / "table.npz"


def _write_table(folder: str, n_train: int, n_test: int, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    scale, shift = rng.uniform(0.5, 20, 100), rng.normal(0, 50, 100)  # columns of other units: standardizing matters
    projection = rng.normal(0, 1, (100, 5))

    def split(n: int, name: str):
        z = rng.normal(0, 1, (n, 100))
        y = np.argmax(z @ projection + rng.normal(0, 4, (n, 5)), axis=1)  # learnable, not separable
        x = np.round(z * scale + shift, 3).astype(np.float32)
        header = ",".join([*(f"f{i}" for i in range(100)), "label"])
        np.savetxt(Path(folder) / name, np.column_stack([x, y]), fmt=["%.3f"] * 100 + ["%d"], delimiter=",",
                   header=header, comments="")
        return x, y.astype(np.int32)

    x_train, y_train = split(n_train, "table.csv")
    x_test, y_test = split(n_test, "table_test.csv")
    np.savez(Path(folder) / "table.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def real_mnist() -> Path | None:
    """The Keras-cache mnist.npz, if this machine has one."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = Path(home) / "datasets" / "mnist.npz"
    return path if path.is_file() else None


# -- running ----------------------------------------------------------------------------------


def run_process(argv: list[str], work: Path, log_name: str) -> tuple[int, float, float, str]:
    """Run argv; return (exit code, wall seconds, peak RSS in MiB, stdout). stderr goes to a log."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TFTRAIN_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    out_path, err_path = work / f"{log_name}.out", work / f"{log_name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=work)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage.ru_maxrss / 1024, out_path.read_text()


def tftrain_variant(name: str, config: Path, sets: list[str], **options) -> Variant:
    """`tftrain run config --set ...`; measurements from the run's summary.json."""

    def command(work: Path, seed: int) -> list[str]:
        argv = [sys.executable, "-m", "tftrain", "run", str(config), "--runs-dir", str(work / "runs"),
                "--set", f"seed={seed}"]
        for item in sets:
            argv += ["--set", item.format(work=work)]
        return argv

    def read(work: Path, stdout: str) -> dict:
        run_dir = Path(stdout.strip().splitlines()[-1])
        summary = json.loads((run_dir / "summary.json").read_text())
        final = summary["final"]
        shutil.rmtree(run_dir, ignore_errors=True)
        return {**summary["throughput"], "loss": final.get("loss"), "accuracy": final.get("accuracy"),
                "test_loss": final.get("val_loss"), "test_accuracy": final.get("val_accuracy"),
                "threads": summary.get("cpu_threads"), "precision": summary.get("precision")}

    return Variant(name, command, read, **options)


def baseline_variant(name: str, script: str, args: list[str]) -> Variant:
    """A script in bench/baselines that writes its measurements to result.json."""

    def command(work: Path, seed: int) -> list[str]:
        return [sys.executable, str(BASELINES / script), *[a.format(work=work) for a in args],
                "--seed", str(seed), "--result", str(work / "result.json")]

    def read(work: Path, stdout: str) -> dict:
        return json.loads((work / "result.json").read_text())

    return Variant(name, command, read, baseline=True)


def run_case(title: str, variants: list[Variant], repeats: int, work: Path) -> dict[str, list[dict]]:
    """Alternate the variants `repeats` times; every run's measurements, by variant.

    Round r trains every variant with seed r (so the spread of the results shows the seed noise)
    and starts at variant r (so no variant always runs right after the same other one)."""
    results: dict[str, list[dict]] = {v.name: [] for v in variants}
    for repeat in range(repeats):
        start = repeat % len(variants)
        for variant in variants[start:] + variants[:start]:
            if variant.rounds is not None and repeat >= variant.rounds:
                continue
            load = os.getloadavg()[0]
            code, wall, rss, stdout = run_process(variant.command(work, repeat), work, "last")
            if code != 0:
                err = (work / "last.err").read_text().strip().splitlines()[-5:]
                raise SystemExit(f"{title}/{variant.name} failed (exit {code}):\n  " + "\n  ".join(err))
            measured = {**variant.read(work, stdout), "wall": wall, "rss": rss, "load": load}
            results[variant.name].append(measured)
            print(f"  {title} {repeat + 1}/{repeats} {variant.name:<28} "
                  f"{_num(measured.get('examples_per_second'), 0):>8} ex/s  wall {wall:5.1f} s  "
                  f"rss {rss:5.0f} MiB  load {load:.2f}", file=sys.stderr, flush=True)
    return results


# -- reporting --------------------------------------------------------------------------------


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def training_table(variants: list[Variant], results: dict[str, list[dict]]) -> str:
    base_name = next(iter(results))
    base = median(results[base_name], "examples_per_second")
    rows = []
    for variant in variants:
        name, runs = variant.name, results[variant.name]
        rate = median(runs, "examples_per_second")
        value = (lambda key, digits: "-") if variant.rate_only else (lambda key, digits: _num(median(runs, key), digits))
        spread = [r["examples_per_second"] for r in runs]
        threads = {str(r["threads"]) if r.get("threads") not in (None, 0, "default") else "default" for r in runs}
        rows.append([
            name, ", ".join(sorted(threads)), _num(rate, 0), f"{min(spread):,.0f}-{max(spread):,.0f}",
            f"{rate / base:.2f}x" if rate and base else "-",
            _num(median(runs, "cpu_us_per_example"), 1),
            _num(median(runs, "examples_per_second_with_first_call"), 0),
            _num(median(runs, "first_call_seconds"), 2),
            value("loss", 4), value("accuracy", 4), "-" if variant.rate_only else spread_text(runs, "test_accuracy"),
            _num(median(runs, "rss"), 0), _num(median(runs, "wall"), 1), _num(median(runs, "load"), 2),
        ])
    return markdown_table(["variant", "threads", "examples/s", "range", "vs baseline", "CPU us/example", "incl. 1st call",
                           "1st call s", "loss", "accuracy", "test acc", "peak RSS MiB", "wall s",
                           "load"], rows)


def spread_text(runs: list[dict], key: str) -> str:
    """`median (min-max)` over the rounds (each round has its own seed)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.median(values):.4f} ({min(values):.3f}-{max(values):.3f})"


def same_results(results: dict[str, list[dict]], variants: list[Variant]) -> str:
    """Whether each tftrain variant's median test accuracy is within the seed noise of the
    baseline's (its min-max over the rounds, at least +-0.02)."""
    base = [r["test_accuracy"] for r in results[variants[0].name]]
    low, high = min(base), max(base)
    margin = max(0.02, (high - low) / 2)
    parts, ok = [], True
    for variant in variants[1:]:
        if variant.rate_only:
            continue
        value = median(results[variant.name], "test_accuracy")
        inside = low - margin <= value <= high + margin
        ok &= inside
        parts.append(f"{variant.name} {value:.4f}")
    return (f"- same results within noise: {verdict(ok)} (test accuracy, median over seeds: baseline "
            f"{statistics.median(base):.4f}, range {low:.4f}-{high:.4f}; " + ", ".join(parts)
            + "; same model, optimizer, batch size and epochs)")


def ratio(results: dict, name: str, over: str) -> float | None:
    a, b = median(results[name], "examples_per_second"), median(results[over], "examples_per_second")
    return a / b if a and b else None


def ratio_notes(results: dict, name: str, over: str) -> str:
    """What to read beside `ratio`: `over`'s CPU time per example / `name`'s (the speed-up a
    machine without other load would show if both used the same number of cores; steadier than
    wall time on a busy one), then the range of the per-round ratios (each pairs two runs of the
    same minutes, so it shows how far the verdict would swing with this machine's drift)."""
    a, b = median(results[name], "cpu_us_per_example"), median(results[over], "cpu_us_per_example")
    text = f"{b / a:.2f}x by CPU time per example" if a and b else "no CPU figure"
    pairs = [x["examples_per_second"] / y["examples_per_second"] for x, y in zip(results[name], results[over])
             if x.get("examples_per_second") and y.get("examples_per_second")]
    return text + (f"; per round {min(pairs):.2f}-{max(pairs):.2f}x" if len(pairs) > 1 else "")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


# -- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, bf16 support, load, library versions."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": str(os.cpu_count())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
        info["cpu"] = model.group(1).strip() if model else info["cpu"]
        found = re.search(r"^Flags:\s*(.+)$", lscpu, re.M)
        flags = set(found.group(1).split()) if found else set()
    except (OSError, subprocess.CalledProcessError):
        flags = set()
    bf16 = [f for f in BF16_FLAGS if f in flags]
    info["bf16"] = ", ".join(bf16) if bf16 else f"none ({' / '.join(BF16_FLAGS)} absent)"
    info["avx512f"] = "yes" if "avx512f" in flags else "no"
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras, numpy; "
                               "print(tf.__version__, keras.__version__, numpy.__version__)"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.split()
    info["versions"] = (f"TensorFlow {versions[0]}, Keras {versions[1]}, NumPy {versions[2]}, "
                        f"Python {platform.python_version()}") if len(versions) == 3 else "unknown"
    return info


def has_bf16() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in text.split() for flag in BF16_FLAGS)


# -- cases ------------------------------------------------------------------------------------


def dense_case(sizes: Sizes, work: Path, mnist: Path, limit: int | None,
               explore: bool = False) -> tuple[str, list[str]]:
    epochs = str(sizes.dense_epochs)
    data = [f"data.path={mnist}", f"training.epochs={epochs}"] + ([f"data.limit={limit}"] if limit else [])
    config = CONFIGS / "mnist_dense.yaml"
    variants = [
        baseline_variant("baseline: quickstart fit", "mnist_dense.py",
                         ["--data", str(mnist), "--epochs", epochs] + (["--limit", str(limit)] if limit else [])),
        tftrain_variant("tftrain loop: fit", config, [*data, "training.loop=fit"]),
        tftrain_variant("tftrain loop: custom", config, [*data, "training.loop=custom"]),
        baseline_variant("hand-tuned Keras fit", "mnist_dense_tuned.py",
                         ["--data", str(mnist), "--epochs", epochs] + (["--limit", str(limit)] if limit else [])),
        *raw_variants("dense", mnist, epochs, limit),
        tftrain_variant("tftrain loop: fit, in_graph: false", config, [*data, "training.loop=fit", "training.in_graph=false"]),
        tftrain_variant("tftrain loop: custom, in_graph: false", config,
                        [*data, "training.loop=custom", "training.in_graph=false"]),
    ]
    if explore:  # what `steps_per_execution: auto` (128 here) and XLA are worth
        for loop in ("fit", "custom"):
            for spe in (1, 8, 32):
                variants.append(tftrain_variant(f"tftrain {loop}, steps_per_execution={spe}", config,
                                                [*data, f"training.loop={loop}", f"training.steps_per_execution={spe}"]))
            variants.append(tftrain_variant(f"tftrain {loop}, jit_compile=true", config,
                                            [*data, f"training.loop={loop}", "training.jit_compile=true"]))
    results = run_case("dense", variants, sizes.dense_repeats, work)
    fit, custom = ratio(results, variants[1].name, variants[0].name), ratio(results, variants[2].name, variants[0].name)
    checks = [
        f"- tftrain `loop: fit` >= 3x baseline: {verdict(fit >= 3)} ({fit:.2f}x; "
        f"{ratio_notes(results, variants[1].name, variants[0].name)})",
        f"- tftrain `loop: custom` >= 3x baseline: {verdict(custom >= 3)} ({custom:.2f}x; "
        f"{ratio_notes(results, variants[2].name, variants[0].name)})",
        same_results(results, variants[:3]),
        *limit_checks(results, [variants[1].name, variants[2].name], [v.name for v in variants[4:6]], 0.7),
    ]
    for name in (variants[1].name, variants[2].name):
        tuned = ratio(results, name, variants[3].name)
        checks.append(f"- {name} >= 1.0x the hand-tuned Keras fit: {verdict(tuned >= 1.0)} ({tuned:.2f}x; "
                      f"{ratio_notes(results, name, variants[3].name)})")
    steps = (limit or sizes.mnist_train) // 32
    text = (f"### Dense, MNIST-shaped ({limit or sizes.mnist_train} x 28x28 uint8 train, "
            f"{sizes.mnist_test} test, batch 32, SGD, {epochs} epochs = {steps * sizes.dense_epochs} steps)\n\n"
            + training_table(variants, results))
    return text, checks


def raw_variants(model: str, data: Path, epochs: str, limit: int | None = None,
                 precision: str = "float32") -> list[Variant]:
    """The raw-kernel limit (bench/baselines/raw_kernel.py) on one intra-op thread, one op at a time
    (one inter-op thread, as tftrain's cpu_threads: auto runs small steps; TensorFlow's default
    inter-op pool hands each small op between threads, which costs the table MLP ~2x its CPU
    time), and on two intra-op threads with TensorFlow's default inter-op pool."""
    extra = (["--limit", str(limit)] if limit else []) + (["--precision", precision] if precision != "float32" else [])
    label = "" if precision == "float32" else f" {precision}"
    common = ["--model", model, "--data", str(data), "--epochs", epochs, *extra]
    return [baseline_variant(f"raw kernel{label}, 1 thread", "raw_kernel.py",
                             [*common, "--threads", "1", "--one-op-at-a-time"]),
            baseline_variant(f"raw kernel{label}, 2 threads", "raw_kernel.py", [*common, "--threads", "2"])]


def limit_checks(results: dict, names: list[str], limits: list[str], target: float) -> list[str]:
    """Each of `names` as a ratio of the fastest of `limits` (the raw-kernel runs), by wall time
    and by CPU time per example."""
    fastest = max(limits, key=lambda limit: median(results[limit], "examples_per_second") or 0)
    lines = []
    for name in names:
        share = ratio(results, name, fastest)
        lines.append(f"- {name} >= {target}x the raw-kernel limit ({fastest}): {verdict(share >= target)} "
                     f"({share:.2f}x; {ratio_notes(results, name, fastest)})")
    return lines


def cnn_case(sizes: Sizes, work: Path, images: Path, explore: bool = False) -> tuple[str, list[str]]:
    epochs = str(sizes.cnn_epochs)
    data = ["data.dataset=npz", f"data.path={images}", f"training.epochs={epochs}"]
    config = CONFIGS / "cifar10_cnn.yaml"
    variants = [
        baseline_variant("baseline: GradientTape loop", "cifar10_cnn.py", ["--data", str(images), "--epochs", epochs]),
        tftrain_variant("tftrain loop: custom", config, [*data, "training.loop=custom"]),
        tftrain_variant("tftrain loop: fit", config, [*data, "training.loop=fit"]),
    ]
    bf16_units = has_bf16()
    variants.append(tftrain_variant("tftrain custom precision: auto", config,
                                    [*data, "training.loop=custom", "training.precision=auto"]))
    variants += raw_variants("cnn", images, epochs)
    if bf16_units:
        variants.append(raw_variants("cnn", images, epochs, precision="bfloat16")[1])
    if explore:
        for loop in ("fit", "custom"):
            variants.append(tftrain_variant(f"tftrain {loop}, jit_compile=true", config,
                                            [*data, f"training.loop={loop}", "training.jit_compile=true"]))
    results = run_case("cnn", variants, sizes.cnn_repeats, work)
    names = [v.name for v in variants]
    f32, vs_fit, bf16 = ratio(results, names[1], names[0]), ratio(results, names[1], names[2]), ratio(results, names[3], names[0])
    checks = [
        f"- tftrain float32 >= 1.0x baseline: {verdict(f32 >= 1.0)} ({f32:.2f}x; "
        f"{ratio_notes(results, names[1], names[0])})",
        f"- `loop: custom` >= 0.95x `loop: fit`: {verdict(vs_fit >= 0.95)} ({vs_fit:.2f}x; "
        f"{ratio_notes(results, names[1], names[2])})",
        (f"- precision: auto >= 1.5x baseline (float32 GradientTape loop): {verdict(bf16 >= 1.5)} ({bf16:.2f}x; "
         f"{ratio_notes(results, names[3], names[0])}; chose {results[names[3]][0].get('precision')})" if bf16_units else
         f"- precision: auto >= 1.5x baseline: n/a, this CPU has no bfloat16 units "
         f"({' / '.join(BF16_FLAGS)} absent; auto chose {results[names[3]][0].get('precision')}): measured {bf16:.2f}x"),
        same_results(results, variants[:4]),
        *limit_checks(results, [names[1]], names[4:6], 0.7),
    ]
    if bf16_units:
        checks += limit_checks(results, [names[3]], names[6:7], 0.7)
    else:
        checks.append("- raw-kernel bfloat16 limit: skipped, this CPU has no bfloat16 units")
    steps = sizes.cifar_train // 64
    text = (f"### CNN, CIFAR-shaped ({sizes.cifar_train} x 32x32x3 uint8 train, {sizes.cifar_test} test, "
            f"batch 64, Adam, {epochs} epochs = {steps * sizes.cnn_epochs} steps)\n\n" + training_table(variants, results))
    return text, checks


TABLE_CONFIG = """\
name: table-mlp
data:
  dataset: csv
  path: {folder}/table.csv
  options: {{label: label, test_path: {folder}/table_test.csv}}
  batch_size: 32
  validation: test
  normalize: per_channel
model: {{type: dense, hidden: [64, 64], activation: relu, output_activation: softmax}}
loss: sparse_categorical_crossentropy
optimizer: {{name: adam, learning_rate: 0.001}}
metrics: [accuracy]
training: {{epochs: {epochs}}}
"""


def table_case(sizes: Sizes, work: Path) -> tuple[str, list[str]]:
    """The table MLP: tftrain's two loops as ratios of the raw-kernel limit of the same step."""
    data = synthetic_table(work, sizes.table_train, sizes.table_test, seed=2)
    epochs = str(sizes.table_epochs)
    config = work / "table.yaml"
    config.write_text(TABLE_CONFIG.format(folder=work, epochs=epochs))
    raw = raw_variants("table", data, epochs)
    variants = [*raw, tftrain_variant("tftrain loop: fit", config, ["training.loop=fit"]),
                tftrain_variant("tftrain loop: custom", config, ["training.loop=custom"])]
    results = run_case("table", variants, sizes.dense_repeats, work)
    names = [v.name for v in variants]
    checks = [*limit_checks(results, names[2:], names[:2], 0.7),
              same_results(results, variants).replace("baseline", "raw kernel, 1 thread", 1)]
    steps = sizes.table_train // 32
    text = (f"### Table MLP, numeric CSV ({sizes.table_train} x 100 float features train, {sizes.table_test} "
            f"test, Dense64-Dense64-Dense5, batch 32, Adam, {epochs} epochs = {steps * sizes.table_epochs} steps)\n\n"
            + training_table(variants, results))
    return text, checks


def resnet_case(sizes: Sizes, work: Path, images: Path) -> tuple[str, list[str]]:
    """ResNet-20 beside the tutorial CNN: examples/second of each and their ratio (no target:
    the residual network does ~9x the multiply-adds per image)."""
    limit = min(sizes.cifar_train, 2560)  # one epoch of 20 batches of 128: the rate settles within it
    data = ["data.dataset=npz", f"data.path={images}", f"data.limit={limit}", "training.epochs=1"]
    variants = [
        tftrain_variant("tutorial CNN (cifar10_cnn.yaml, custom)", CONFIGS / "cifar10_cnn.yaml",
                        [*data, "data.batch_size=128"]),
        tftrain_variant("ResNet-20 (cifar10_resnet20.yaml, fit)", CONFIGS / "cifar10_resnet20.yaml", data),
        tftrain_variant("ResNet-20, loop: custom", CONFIGS / "cifar10_resnet20.yaml", [*data, "training.loop=custom"]),
    ]
    results = run_case("resnet", variants, sizes.cnn_repeats, work)
    names = [v.name for v in variants]
    fit, custom = ratio(results, names[1], names[0]), ratio(results, names[2], names[0])
    checks = [f"- ResNet-20 examples/s: {_num(median(results[names[1]], 'examples_per_second'), 0)} (fit), "
              f"{_num(median(results[names[2]], 'examples_per_second'), 0)} (custom): {fit:.2f}x and {custom:.2f}x "
              "the tutorial CNN's at batch 128 (no target: ~9x its multiply-adds per image)"]
    text = (f"### ResNet-20 beside the tutorial CNN, CIFAR-shaped ({limit} x 32x32x3 uint8 train, batch 128, "
            "1 epoch)\n\n" + training_table(variants, results))
    return text, checks


def overhead_case(sizes: Sizes, work: Path, mnist: Path) -> tuple[str, list[str]]:
    def read_nothing(work: Path, stdout: str) -> dict:
        return {}

    base = Variant("hand-written one-step script",
                   lambda w, seed: [sys.executable, str(BASELINES / "one_step.py"), "--data", str(mnist),
                              "--save", str(w / "model.keras")], read_nothing, baseline=True)
    tft = Variant("tftrain run, training.steps=1",
                  lambda w, seed: [sys.executable, "-m", "tftrain", "run", str(CONFIGS / "mnist_dense.yaml"),
                             "--set", f"data.path={mnist}", "--set", "training.steps=1",
                             "--set", "data.validation=none", "--runs-dir", str(w / "runs")],
                  read_nothing)
    results = run_case("overhead", [base, tft], sizes.overhead_repeats, work)
    rows = [[name, _num(median(runs, "wall"), 2), f"{min(r['wall'] for r in runs):.2f}",
             _num(median(runs, "rss"), 0), _num(median(runs, "load"), 2)] for name, runs in results.items()]
    extra = median(results[tft.name], "wall") - median(results[base.name], "wall")
    text = ("### Fixed overhead: one training step of 32 examples, start-up included\n\n"
            + markdown_table(["program", "wall s (median)", "wall s (min)", "peak RSS MiB", "load"], rows))
    return text, [f"- `tftrain run` one-step overhead <= 1.5 s: {verdict(extra <= 1.5)} ({extra:+.2f} s)"]


# The issue-21 promise: under 0.3 s on a machine where `python -c "import typer"` takes 0.169 s
# (a slow 2-core machine), as a ratio to that figure measured in the same rounds.
CLI_TARGET_S, CLI_TYPER_S = 0.3, 0.169
FLOOR = 'python -c "import typer"'
# A config that reads as much of the schema as main has: the largest dataset options
# (image_folder), the cnn model, a loss, an optimizer and metrics with Keras parameters, early
# stopping and checkpoint blocks, two recipes extended and an ${env:...} value.
LARGEST = """\
extends: [{configs}/recipes/adamw.yaml, {configs}/recipes/early_stopping.yaml]
name: largest
seed: 1
deterministic: true
data:
  dataset: image_folder
  path: ${{env:BENCH_IMAGES,/data/images}}
  batch_size: 64
  validation: 0.2
  limit: 1000
  options: {{image_size: [64, 64], color_mode: rgb, interpolation: bilinear, crop_to_aspect_ratio: true}}
model: {{type: cnn, conv: [32, 64, 128], kernel_size: 3, pool_size: 2, dense: [128, 64], output_activation: null,
        dropout: 0.2}}
loss: {{name: sparse_categorical_crossentropy, from_logits: true}}
optimizer: {{name: adamw, learning_rate: 0.001, weight_decay: 0.004, beta_1: 0.9, clipnorm: 1.0}}
metrics: [accuracy, {{name: sparse_top_k_categorical_accuracy, k: 3}}]
training:
  loop: custom
  checkpoint: {{monitor: val_accuracy, mode: max, every_steps: 500}}
  steps_per_execution: 8
  cpu_threads: 2
"""


def cli_commands(tree: Path, largest: Path, suffix: str = "") -> dict[str, tuple[list[str], Path]]:
    """The light commands of `tree` (a checkout): label -> (argv, the tree put on PYTHONPATH)."""
    tftrain = [sys.executable, "-m", "tftrain"]
    small = str(tree / "configs" / "mnist_dense.yaml")
    todo = {
        "tftrain --help": ["--help"],
        "tftrain validate configs/mnist_dense.yaml": ["validate", small],
        "tftrain validate (largest config)": ["validate", str(largest)],
        "tftrain show configs/mnist_dense.yaml": ["show", small],
        "tftrain show --sources (largest config)": ["show", "--sources", str(largest)],
        "tftrain schema": ["schema"],
    }
    return {label + suffix: ([*tftrain, *args], tree) for label, args in todo.items()}


def cli_process(argv: list[str], tree: Path) -> tuple[int, float, float]:
    """Run argv with `tree` first on the path: (exit code, wall seconds, CPU seconds). Python
    may write .pyc files, as an installed package has them (PYTHONDONTWRITEBYTECODE, set in
    some shells, would make every run compile tftrain's modules anew)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="2", TFTRAIN_OFFLINE="1")
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time
    wall = time.perf_counter() - started
    return os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime


def cli_case(sizes: Sizes, work: Path, baseline: Path | None = None) -> tuple[str, list[str]]:
    """The light commands as whole processes, each round in a rotated order (round 0 only warms
    up), beside `import typer` and the least a typer + pydantic + PyYAML program does to validate
    a YAML file; with `baseline`, the same commands of another checkout in the same rounds."""
    largest = work / "largest.yaml"
    largest.write_text(LARGEST.format(configs=CONFIGS))
    todo = {'python -c "pass"': ([sys.executable, "-c", "pass"], REPO),
            FLOOR: ([sys.executable, "-c", "import typer"], REPO),
            "typer + pydantic + PyYAML validate (bench/baselines/typer_validate.py)": (
                [sys.executable, str(BASELINES / "typer_validate.py"), "validate",
                 str(CONFIGS / "mnist_dense.yaml")], REPO),
            **cli_commands(REPO, largest)}
    if baseline is not None:
        todo.update(cli_commands(baseline, largest, f" [{baseline.name}]"))
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in todo}
    labels = list(todo)
    for repeat in range(sizes.cli_repeats + 1):
        for label in labels[repeat % len(labels):] + labels[:repeat % len(labels)]:
            code, wall, cpu = cli_process(*todo[label])
            if code != 0:
                raise SystemExit(f"{label} failed (exit {code})")
            if repeat:
                times[label].append((wall, cpu))
        print(f"  cli {repeat}/{sizes.cli_repeats}{' (warm-up)' if not repeat else ''}", file=sys.stderr, flush=True)
    return cli_table(times), cli_checks(times)


def cli_table(times: dict[str, list[tuple[float, float]]]) -> str:
    """Medians and minimum per command, and the medians as ratios to `import typer`'s."""
    floor_wall, floor_cpu = (statistics.median(t[i] for t in times[FLOOR]) for i in (0, 1))
    rows = []
    for label, runs in times.items():
        wall, cpu = statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs)
        rows.append([label, f"{wall:.3f}", f"{min(t[0] for t in runs):.3f}", f"{wall / floor_wall:.2f}x",
                     f"{cpu:.3f}", f"{cpu / floor_cpu:.2f}x"])
    header = ["command", "wall s (median)", "wall s (min)", "/ import typer", "CPU s (median)",
              "CPU / import typer"]
    return "### CLI start-up\n\n" + markdown_table(header, rows)


def cli_checks(times: dict[str, list[tuple[float, float]]]) -> list[str]:
    """Each command of this tree against the target, as a ratio to `import typer` (wall time)."""
    floor = statistics.median(t[0] for t in times[FLOOR])
    limit = CLI_TARGET_S / CLI_TYPER_S
    checks = []
    for label, runs in times.items():
        if not label.startswith("tftrain") or label.endswith("]"):
            continue
        ratio = statistics.median(t[0] for t in runs) / floor
        checks.append(f"- `{label}` < {CLI_TARGET_S} s where import typer takes {CLI_TYPER_S} s "
                      f"(< {limit:.2f}x import typer): {verdict(ratio < limit)} ({ratio:.2f}x, "
                      f"{ratio * CLI_TYPER_S:.2f} s there)")
    return checks


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:2] == ["--write-data"]:  # the child process of synthetic_npz
        _write_synthetic_npz(*json.loads(sys.argv[2]))
        return
    if sys.argv[1:2] == ["--write-table"]:  # the child process of synthetic_table
        _write_table(*json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and repeats (~4 minutes)")
    parser.add_argument("--cases", default="dense,cnn,table,overhead,cli", help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=None, help="alternating rounds per case")
    parser.add_argument("--explore", action="store_true",
                        help="also run tftrain with other steps_per_execution and jit_compile values")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="cli case: also time the light commands of this other checkout, in the same rounds")
    parser.add_argument("--output", default=None,
                        help=f"markdown file to update (default: {RESULTS.relative_to(REPO)} for a full run)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = Sizes(**{**sizes.__dict__, "dense_repeats": args.repeats, "cnn_repeats": args.repeats,
                         "overhead_repeats": args.repeats})
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    output = Path(args.output) if args.output else (None if args.quick else RESULTS)

    info = machine()
    load_before = os.getloadavg()
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['versions']}; "
          f"load {load_before[0]:.2f}", file=sys.stderr)
    training = [case for case in cases if case != "cli"]
    sections, checks = [], []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tftrain-bench-") as tmp:
        work = Path(tmp)
        if training:
            mnist = real_mnist()
            limit = sizes.mnist_train if mnist is not None and sizes.mnist_train < 60000 else None
            mnist = mnist or synthetic_npz(work / "mnist.npz", sizes.mnist_train, sizes.mnist_test, (28, 28), (),
                                           seed=0, signal=0.1)  # weak: the dense model reaches ~60-80% accuracy
        for case in training:
            if case == "dense":
                section = dense_case(sizes, work, mnist, limit, args.explore)
            elif case == "cnn":
                images = synthetic_npz(work / "cifar.npz", sizes.cifar_train, sizes.cifar_test, (32, 32, 3), (1,), seed=1,
                                       signal=0.35)  # a CNN needs more to learn in a few hundred steps
                section = cnn_case(sizes, work, images, args.explore)
            elif case == "table":
                section = table_case(sizes, work)
            elif case == "resnet":
                images = synthetic_npz(work / "cifar.npz", sizes.cifar_train, sizes.cifar_test, (32, 32, 3), (1,), seed=1,
                                       signal=0.35)
                section = resnet_case(sizes, work, images)
            elif case == "overhead":
                section = overhead_case(sizes, work, mnist)
            else:
                raise SystemExit(f"--cases: unknown case {case!r}; expected dense, cnn, table, resnet, overhead, cli")
            sections.append(section[0])
            checks += section[1]
        training_minutes = (time.time() - started) / 60
        cli = cli_case(sizes, work, args.baseline) if "cli" in cases else None
    load_after = os.getloadavg()

    if training:
        report = "\n\n".join([
            f"Command: `python bench/compare.py{' --quick' if args.quick else ''}`"
            f"{'' if cases == ['dense', 'cnn', 'table', 'overhead', 'cli'] else ' --cases ' + ','.join(cases)}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}, {training_minutes:.1f} min, "
            f"medians of alternating rounds ({sizes.dense_repeats} dense and table, {sizes.cnn_repeats} cnn, "
            f"{sizes.overhead_repeats} overhead).",
            f"Machine: {info['cpu']}, {info['cores']} cores, bfloat16 units: {info['bf16']}, "
            f"AVX-512: {info['avx512f']}; {info['versions']}. Load average (1 min) {load_before[0]:.2f} "
            f"before, {load_after[0]:.2f} after; the `load` column is the load when each run started. "
            f"Peak RSS includes this launcher's {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
            "(Linux counts the parent's size at fork).",
            "Targets:\n\n" + "\n".join(checks),
            *sections,
        ])
        print(report)
        if output is not None:
            write_report(output, report)
    if cli is not None:
        report = cli_report(cli, sizes, args, info, load_before[0], load_after[0])
        print(report)
        if output is not None:
            write_report(output, report, CLI_BEGIN, CLI_END)
    if output is not None:
        print(f"\nwrote {output}", file=sys.stderr)


def cli_report(cli: tuple[str, list[str]], sizes: Sizes, args: argparse.Namespace, info: dict[str, str],
               load_before: float, load_after: float) -> str:
    """The CLI case's block: command, machine and library versions, targets, table."""
    from importlib import metadata

    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("typer", "pydantic", "PyYAML", "rich"))
    flags = (" --quick" if args.quick else "") + (f" --baseline {args.baseline}" if args.baseline else "")
    return "\n\n".join([
        f"Command: `python bench/compare.py --cases cli{flags}`, {time.strftime('%Y-%m-%d %H:%M')}, medians of "
        f"{sizes.cli_repeats} rounds after one warm-up round (each round runs every command once, in a rotated "
        f"order). Machine: {info['cpu']}, {info['cores']} cores; Python {platform.python_version()}, {versions}. "
        f"Load average (1 min) {load_before:.2f} before, {load_after:.2f} after.",
        "Targets:\n\n" + "\n".join(cli[1]),
        cli[0],
    ])


def write_report(path: Path, report: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated block of `path` (between the markers), keeping the notes around it."""
    block = f"{begin}\n{report}\n{end}"
    text = path.read_text() if path.is_file() else f"# Benchmark results\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
