"""How fast `tftrain validate` checks a 200-layer model config, against the floor of any typer
CLI: `python -c "import typer"` (an interpreter start plus typer's import).

    python bench/validate_speed.py [--repeats 15]

Each command is its own process, alternated with the baseline (A B A B ...); the medians and
their ratio are printed. Issue 15's target: under 0.3 s for the 200-layer config, i.e. within
the CLI start-up budget of `tftrain --help`.
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

import yaml

REPO = Path(__file__).resolve().parent.parent


def big_config(layers: int) -> dict:
    """A sequential model of `layers` layers: dense with regularizers and initializers, dropout."""
    stack = []
    for i in range(layers // 2):
        stack.append({"dense": {"units": 8 + i % 8, "activation": "relu", "kernel_regularizer": {"l2": 1e-4},
                                "kernel_initializer": {"he_normal": {"seed": i}}}})
        stack.append({"dropout": 0.1})
    return {"name": "big", "data": {"dataset": "npz", "path": "x.npz"}, "loss": "sparse_categorical_crossentropy",
            "model": {"type": "sequential", "layers": stack}}


def wall(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--layers", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "big.yaml"
        config.write_text(yaml.safe_dump(big_config(args.layers)))
        commands = {"python -c 'import typer'": [sys.executable, "-c", "import typer"],
                    f"tftrain validate ({args.layers} layers)": [sys.executable, "-m", "tftrain", "validate", str(config)],
                    "tftrain --help": [sys.executable, "-m", "tftrain", "--help"]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                times[name].append(wall(argv))
    base = statistics.median(times["python -c 'import typer'"])
    print(f"median of {args.repeats} alternating runs, load {os.getloadavg()[0]:.2f}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<32} {median:.3f} s (min {min(values):.3f})  {median / base:.2f}x import typer")


if __name__ == "__main__":
    main()
