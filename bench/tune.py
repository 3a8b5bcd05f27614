"""`tftrain tune`: trials per hour with --jobs 2 against --jobs 1, and what pruning saves.

    python bench/tune.py            # both cases (~15-25 min on a loaded 2-core machine); rewrites its block in bench/RESULTS.md
    python bench/tune.py --quick    # fewer trials and rounds; prints only, unless --output is given

Cases, each study its own `tftrain tune` process, side by side:

  parallel  the same 24-trial study (a small dense Fashion-MNIST model, random sampler with a
            fixed seed, so both variants train the same 24 configurations, no pruning) with
            --jobs 1 and --jobs 2, alternating (1 2 2 1 ...). Trials per hour: trials over the
            study's wall time, start-up included; and over the span from the first trial's start
            to the last trial's end, from the storage (the workers' TensorFlow import left out).
            Trials per hour is the rate of a long study; each worker imports TensorFlow once
            (10-15 s), which is a few seconds of a real study's hour but half of an 8-trial
            study of 4-second trials (1.54x with 8 trials, 2026-12-02), so the study has 24.
  pruning   a 20-trial study over a space with bad regions (SGD learning rates from 1e-5, which
            barely moves, to 3, which is unstable; 5 epochs each) with a median pruner (from
            the 4th trial on) and with `pruner: none`, the same seed, so the same 20
            configurations are sampled: trained epochs (the sum of every trial's epochs_done)
            and the best value of each.

Data: Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist, `apt-get install
dataset-fashion-mnist`), the first `--examples` training images, a fifth held out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- tune.py: begin -->", "<!-- tune.py: end -->"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def base_config(examples: int, epochs: int) -> dict:
    """A small dense model (784-64-10, Adam) on the first `examples` Fashion-MNIST images."""
    return {
        "name": "fashion", "seed": 0,
        "data": {"dataset": "fashion_mnist", "path": str(FASHION), "limit": examples, "batch_size": 64,
                 "validation": 0.2},
        "model": {"type": "dense", "hidden": [64]}, "loss": "sparse_categorical_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": 0.001}, "metrics": ["accuracy"],
        "training": {"epochs": epochs},
    }


def run_study(folder: Path, config: dict, spec: dict, jobs: int, name: str) -> dict:
    """One `tftrain tune` process; its study.json, wall time and load."""
    import yaml

    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**config, "tune": spec}, sort_keys=False))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tftrain", "tune", str(path), "--jobs", str(jobs), "--study", name,
                           "--runs-dir", str(folder / "runs"), "--quiet"], capture_output=True, text=True,
                          cwd=folder, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tftrain tune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    study = json.loads((folder / "runs" / name / "study.json").read_text())
    return {"study": study, "wall": wall, "load": load, "folder": folder / "runs" / name}


def span(study: dict) -> float:
    """From the first trial's start to the last trial's end, as the storage recorded them."""
    trials = study["trials"]
    return max(t["finished"] for t in trials) - min(t["started"] for t in trials)


def parallel(folder: Path, trials: int, rounds: int, examples: int) -> tuple[list[str], list[str]]:
    """--jobs 1 against --jobs 2 on the same study: trials per hour."""
    spec = {"objective": {"metric": "val_accuracy"}, "space": {"optimizer.learning_rate": {"loguniform": [3e-4, 3e-3]}},
            "sampler": "random", "pruner": "none", "trials": trials, "seed": 1}
    config = base_config(examples, epochs=2)
    results: dict[int, list[dict]] = {1: [], 2: []}
    order = [1, 2] * rounds
    for i in range(rounds):  # 1 2 | 2 1 | 1 2 ...: drifting load hits both alike
        order[2 * i: 2 * i + 2] = [1, 2] if i % 2 == 0 else [2, 1]
    for n, jobs in enumerate(order):
        result = run_study(folder, config, spec, jobs, f"parallel-{n}-jobs{jobs}")
        results[jobs].append(result)
        print(f"  jobs {jobs}: {result['wall']:.1f} s wall, trials span {span(result['study']):.1f} s, "
              f"load {result['load']:.2f}", file=sys.stderr)
    rows, ratio = [], {}
    for jobs in (1, 2):
        per_hour = [trials / r["wall"] * 3600 for r in results[jobs]]
        per_hour_span = [trials / span(r["study"]) * 3600 for r in results[jobs]]
        ratio[jobs] = (statistics.median(per_hour), statistics.median(per_hour_span))
        loads = ", ".join(f"{r['load']:.1f}" for r in results[jobs])
        wall = statistics.median(r["wall"] for r in results[jobs])
        rows.append(f"| --jobs {jobs} | {statistics.median(per_hour):,.0f} | {min(per_hour):,.0f}-{max(per_hour):,.0f} "
                    f"| {statistics.median(per_hour_span):,.0f} | {wall:.1f} | {loads} |")
    wall_x, span_x = ratio[2][0] / ratio[1][0], ratio[2][1] / ratio[1][1]
    target = [f"- `--jobs 2` >= 1.6x the trials per hour of `--jobs 1`: {'met' if wall_x >= 1.6 else 'not met'} "
              f"({wall_x:.2f}x over the whole study, start-up included; {span_x:.2f}x from the first trial's "
              "start to the last one's end)"]
    table = [f"### Parallel trials: {trials}-trial study, {rounds} rounds of each, alternating",
             "", "| variant | trials/hour (median) | range | trials/hour, trials' span | wall s (median) | load at start |",
             "|---|---|---|---|---|---|", *rows]
    return target, table


def pruning(folder: Path, trials: int, examples: int) -> tuple[list[str], list[str]]:
    """median pruning against none, the same sampled configurations: epochs trained, best value."""
    space = {"optimizer.learning_rate": {"loguniform": [1e-5, 3.0]}, "data.batch_size": {"choice": [32, 128]}}
    config = {**base_config(examples, epochs=5), "optimizer": {"name": "sgd", "learning_rate": 0.01}}
    results = {}
    for pruner in ("median", "none"):
        # Median pruning from the 4th trial on (Optuna's default waits for 5 finished trials, a
        # quarter of this study); `none` gets the same configurations, in the same order.
        spec = {"objective": {"metric": "val_accuracy"}, "space": space, "sampler": "random",
                "pruner": {"name": "median", "n_startup_trials": 3} if pruner == "median" else "none",
                "trials": trials, "seed": 2}
        results[pruner] = result = run_study(folder, config, spec, 2, f"pruning-{pruner}")
        epochs = trained_epochs(result["folder"], result["study"])
        print(f"  pruner {pruner}: {epochs} epochs, best {result['study']['best']['value']:.4f}, "
              f"{result['wall']:.1f} s", file=sys.stderr)
    epochs = {p: trained_epochs(r["folder"], r["study"]) for p, r in results.items()}
    best = {p: r["study"]["best"] for p, r in results.items()}
    saved = 1 - epochs["median"] / epochs["none"]
    same_best = best["median"]["values"] == best["none"]["values"]
    delta = best["median"]["value"] - best["none"]["value"]
    target = [f"- pruning trains >= 40% fewer epochs than no pruning: {'met' if saved >= 0.4 else 'not met'} "
              f"({epochs['median']} vs {epochs['none']} epochs: {saved:.0%} fewer)",
              f"- best value within noise of no pruning: {'met' if same_best or abs(delta) < 0.01 else 'not met'} "
              f"(val_accuracy {best['median']['value']:.4f} vs {best['none']['value']:.4f}; "
              f"{'the same trial is best in both' if same_best else f'difference {delta:+.4f}'})"]
    rows = [f"| {p} | {epochs[p]} | {results[p]['study']['counts']['completed']} | {results[p]['study']['counts']['pruned']} "
            f"| {results[p]['study']['counts']['failed']} | {best[p]['value']:.4f} | trial {best[p]['number']}: "
            f"{best[p]['label'].split(': ', 1)[1]} | {results[p]['wall']:.0f} | {results[p]['load']:.1f} |"
            for p in ("median", "none")]
    table = [f"### Pruning: {trials}-trial study, SGD learning rate 1e-5 to 3 (log), 5 epochs a trial, --jobs 2",
             "", "| pruner | epochs trained | completed | pruned | failed | best val_accuracy | best trial | wall s | load |",
             "|---|---|---|---|---|---|---|---|---|", *rows]
    return target, table


def trained_epochs(folder: Path, study: dict) -> int:
    """Every trial's epochs_done, from its summary.json."""
    total = 0
    for trial in study["trials"]:
        if trial["run_dir"]:
            total += json.loads((Path(trial["run_dir"]) / "summary.json").read_text()).get("epochs_done") or 0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8-trial parallel study, 1 round; 10-trial pruning study")
    parser.add_argument("--cases", default="parallel,pruning")
    parser.add_argument("--examples", type=int, default=6000, help="Fashion-MNIST training images used")
    parser.add_argument("--output", type=Path, help="write the report here (default: bench/RESULTS.md unless --quick)")
    args = parser.parse_args()
    if not FASHION.is_dir():
        raise SystemExit(f"{FASHION}: not found (apt-get install dataset-fashion-mnist)")
    started, load = time.time(), os.getloadavg()[0]
    targets, tables = [], []
    with tempfile.TemporaryDirectory(prefix="tftrain-bench-tune-") as tmp:
        if "parallel" in args.cases:
            t, table = parallel(Path(tmp), trials=8 if args.quick else 24, rounds=1 if args.quick else 2,
                                examples=args.examples)
            targets += t
            tables += table + [""]
        if "pruning" in args.cases:
            t, table = pruning(Path(tmp), trials=10 if args.quick else 20, examples=args.examples)
            targets += t
            tables += table + [""]
    command = "python bench/tune.py" + (" --quick" if args.quick else "")
    report = "\n".join([
        f"Command: `{command}`, {time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - started) / 60:.1f} min; "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average (1 min) {load:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after.", "", "Targets:", "", *targets, "", *tables]).rstrip()
    print(report)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        write_block(output, report)


def write_block(path: Path, report: str) -> None:
    """Replace this script's block in `path` (or append it)."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## tftrain tune (bench/tune.py)\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
