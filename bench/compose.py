"""Start-up cost of the config commands, and what `extends` composition adds to it.

    python bench/compose.py                 # 7 rounds; prints the table
    python bench/compose.py --rounds 11 --output bench/RESULTS.md   # also rewrites its block there
    python bench/compose.py --baseline /path/to/main                # and another tree's, side by side

Every figure is one whole process (`python -m tftrain ...`), as a user starts it. A round runs
each command once, in a rotated order, so load changes on a shared machine hit all alike; the
table gives medians and each median as a ratio to `python -c "import typer"`, the floor any
typer CLI pays, so the figures travel between machines of different speed. The 5-file chain is
written to a temporary folder: four fragments (data, model, loss + metrics, optimizer, training)
extended in a chain by the file that is validated, each with a `${env:...}` value.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- compose.py: begin -->", "<!-- compose.py: end -->"

# file name -> text; each extends the next, the last extends nothing: a chain of 5 files.
CHAIN = {
    "experiment.yaml": "extends: training.yaml\nname: chain\ntraining: {epochs: 2}\n",
    "training.yaml": "extends: optimizer.yaml\ntraining: {loop: fit, epochs: 5, checkpoint: {monitor: val_loss}}\n",
    "optimizer.yaml": "extends: model.yaml\noptimizer: {name: adam, learning_rate: 0.001}\n",
    "model.yaml": "extends: data.yaml\nmodel: {type: dense, hidden: [128], dropout: 0.1}\n"
                  "loss: sparse_categorical_crossentropy\nmetrics: [accuracy]\n",
    "data.yaml": "data: {dataset: mnist, path: '${env:BENCH_DATA_DIR,/data}/mnist.npz', batch_size: 32}\n",
}


def commands(repo: Path, chain: Path, suffix: str = "") -> dict[str, tuple[list[str], Path]]:
    """What is timed: label -> (argv, the tree on PYTHONPATH)."""
    tftrain = [sys.executable, "-m", "tftrain"]
    single = str(repo / "configs" / "mnist_dense.yaml")
    todo = {
        "tftrain --help": [*tftrain, "--help"],
        "tftrain validate configs/mnist_dense.yaml": [*tftrain, "validate", single],
        "tftrain validate (chain of 5 files)": [*tftrain, "validate", str(chain)],
        "tftrain show (chain of 5 files)": [*tftrain, "show", str(chain)],
        "tftrain show --sources (chain of 5 files)": [*tftrain, "show", "--sources", str(chain)],
        "tftrain schema": [*tftrain, "schema"],
    }
    return {label + suffix: (argv, repo) for label, argv in todo.items()}


def time_once(argv: list[str], repo: Path) -> float | None:
    """Wall seconds of one process, or None when it failed (a command this tree lacks)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    return elapsed if done.returncode == 0 else None


FLOOR = 'python -c "import typer"'


def measure(repo: Path, baseline: Path | None, rounds: int) -> dict[str, list[float | None]]:
    """Every command `rounds` times (on both trees), order rotated each round."""
    with tempfile.TemporaryDirectory() as folder:
        for name, text in CHAIN.items():
            (Path(folder) / name).write_text(text)
        chain = Path(folder) / "experiment.yaml"
        todo = {FLOOR: ([sys.executable, "-c", "import typer"], repo), **commands(repo, chain)}
        if baseline is not None:
            todo.update(commands(baseline, chain, f" [{baseline.name}]"))
        times: dict[str, list[float | None]] = {label: [] for label in todo}
        labels = list(todo)
        for r in range(rounds):
            for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                argv, tree = todo[label]
                times[label].append(time_once(argv, tree))
    return times


IN_PROCESS = """
import statistics, sys, time
from tftrain.spec.loading import load_config
def median_ms(path, n=200):
    load_config(path)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        load_config(path)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)
print(median_ms(sys.argv[1]), median_ms(sys.argv[2]))
"""


def in_process(repo: Path) -> str:
    """load_config of one file against a chain of 5, in one process (no start-up in the figure)."""
    with tempfile.TemporaryDirectory() as folder:
        for name, text in CHAIN.items():
            (Path(folder) / name).write_text(text)
        single = Path(folder) / "single.yaml"
        single.write_text((repo / "configs" / "mnist_dense.yaml").read_text())
        out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(single), str(Path(folder) / "experiment.yaml")],
                             cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True,
                             check=True).stdout.split()
    one, chain = (float(v) for v in out)
    return (f"In one process, `load_config` (read, compose, validate; median of 200 calls): one file "
            f"{one:.2f} ms, a chain of 5 files {chain:.2f} ms (+{chain - one:.2f} ms for composing 4 more files).")


def table(times: dict[str, list[float | None]]) -> str:
    """Markdown: median, min and ratio to `import typer` per command."""
    floor = statistics.median(t for t in times[FLOOR] if t is not None)
    rows = ["| command | wall s (median) | wall s (min) | / import typer |", "|---|---|---|---|"]
    for label, values in times.items():
        ok = [t for t in values if t is not None]
        if len(ok) < len(values):
            rows.append(f"| {label} | failed ({len(values) - len(ok)} of {len(values)} runs: "
                        "not in that tree) | | |")
            continue
        median = statistics.median(ok)
        rows.append(f"| {label} | {median:.3f} | {min(ok):.3f} | {median / floor:.2f}x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repo", type=Path, default=BENCH.parent, help="the checkout whose tftrain is timed")
    parser.add_argument("--baseline", type=Path, help="another checkout, timed in the same rounds")
    parser.add_argument("--output", type=Path, help="rewrite the compose.py block of this Markdown file")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    baseline = args.baseline.resolve() if args.baseline else None
    text = table(measure(args.repo.resolve(), baseline, args.rounds)) + "\n\n" + in_process(args.repo.resolve())
    flags = f" --baseline {args.baseline}" if args.baseline else ""
    header = (f"Command: `python bench/compose.py --rounds {args.rounds}{flags}`, {time.strftime('%Y-%m-%d %H:%M')}, "
              f"Python {sys.version.split()[0]}, load average {load:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after; medians of {args.rounds} whole-process runs.")
    print(header + "\n\n" + text)
    if args.output:
        old = args.output.read_text() if args.output.exists() else ""
        block = f"{BEGIN}\n{header}\n\n{text}\n{END}"
        if BEGIN in old and END in old:
            new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
        else:
            new = old.rstrip("\n") + "\n\n## Config commands: start-up and composition\n\n" + block + "\n"
        args.output.write_text(new)


if __name__ == "__main__":
    main()
