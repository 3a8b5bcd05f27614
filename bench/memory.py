"""Peak memory of a full MNIST-sized run: `tftrain run` against the hand-written Keras script.

Both train the same dense model (Flatten -> Dense(128, relu) -> Dense(10, softmax), SGD, batch
32, 1 epoch, validating on the test split) on the same Keras-format .npz of 60,000 + 10,000
random uint8 28x28 images. The hand-written script is the TensorFlow beginner quickstart's
`x / 255.0`, which makes float64 copies; tftrain keeps uint8 arrays and rescales in the model.
Each program runs in its own child process; its peak resident set size comes from
os.wait4's rusage (ru_maxrss), so nothing of this script's own memory is counted. A third child
that only imports TensorFlow and Keras gives the floor both share.

Run: python bench/memory.py [--examples 60000] [--json]   (about a minute on 2 CPU cores)
Not a test: it takes too long and its figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

HAND_WRITTEN = textwrap.dedent("""\
    import sys
    import keras
    import numpy as np

    with np.load(sys.argv[1]) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    x_train, x_test = x_train / 255.0, x_test / 255.0

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=32, validation_data=(x_test, y_test), verbose=0)
    """)

IMPORT_ONLY = "import keras, tensorflow, numpy"

CONFIG = textwrap.dedent("""\
    name: memory-bench
    seed: 0
    data: {{dataset: npz, path: {path}, batch_size: 32, validation: test}}
    model: {{type: dense, hidden: [128], activation: relu, output_activation: softmax}}
    loss: sparse_categorical_crossentropy
    optimizer: {{name: sgd, learning_rate: 0.01}}
    metrics: [accuracy]
    training: {{loop: fit, epochs: 1}}
    """)


def write_mnist_like(path: Path, n_train: int, n_test: int) -> None:
    """A Keras-format mnist.npz of random uint8 images and uint8 labels."""
    rng = np.random.default_rng(0)
    np.savez(path,
             x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
             x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, n_test, dtype=np.uint8))


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `command`; return (peak RSS in MiB, seconds). Raises if it fails."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty child cannot block on it
        started = time.time()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        seconds = time.time() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
        if child.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{tail}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports ru_maxrss in KiB


def main() -> None:
    """Measure and print the three peaks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60_000, help="training images (MNIST: 60000)")
    parser.add_argument("--test-examples", type=int, default=10_000, help="test images (MNIST: 10000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "mnist.npz"
        write_mnist_like(data, args.examples, args.test_examples)
        (tmp / "config.yaml").write_text(CONFIG.format(path=data))
        (tmp / "hand_written.py").write_text(HAND_WRITTEN)
        runs = {
            "import tensorflow+keras only": [sys.executable, "-c", IMPORT_ONLY],
            "hand-written Keras (x / 255.0)": [sys.executable, str(tmp / "hand_written.py"), str(data)],
            "tftrain run (uint8 + Rescaling)": [sys.executable, "-m", "tftrain", "run", str(tmp / "config.yaml"),
                                                "--runs-dir", str(tmp / "runs")],
        }
        results = {}
        for label, command in runs.items():
            mib, seconds = peak_rss(command, env)
            results[label] = {"peak_rss_mib": round(mib, 1), "seconds": round(seconds, 1)}
    if args.json:
        print(json.dumps({"examples": args.examples, "test_examples": args.test_examples, "results": results}, indent=2))
        return
    print(f"{args.examples:,} train + {args.test_examples:,} test uint8 28x28 images, dense 128, 1 epoch, batch 32")
    for label, r in results.items():
        print(f"  {label:34s} peak RSS {r['peak_rss_mib']:8.1f} MiB   {r['seconds']:6.1f} s")


if __name__ == "__main__":
    main()
