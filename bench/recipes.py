"""Training recipes (issue 16): what augmentation costs, and what a recipe reaches.

    nice python bench/recipes.py                       # both cases; rewrites its block in bench/RESULTS.md
    python bench/recipes.py --cases augmentation       # ~5 min on 2 cores
    python bench/recipes.py --cases fashion            # ~20-30 min on 2 cores: two full trainings

Cases (each variant is its own process, as in bench/compare.py, whose helpers this uses):

  augmentation  configs/cifar10_cnn.yaml on CIFAR-shaped data without augmentation, and with
                random_flip + random_translation (bilinear, Keras's default; and whole pixels,
                `interpolation: nearest`) in the tf.data pipeline, alternating rounds:
                examples/second of training, side by side (target: augmentation costs <= 10%).
  fashion       configs/fashion_mnist_cnn.yaml (BN CNN + augmentation + cosine schedule with
                warmup) on the real Fashion-MNIST (Debian's dataset-fashion-mnist package), and
                the same CNN without the recipe (constant learning rate, no augmentation): test
                accuracy and wall time (target: >= 0.92 in under 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (  # noqa: E402 (bench/ is not a package)
    CONFIGS,
    RESULTS,
    _num,
    machine,
    markdown_table,
    median,
    run_case,
    synthetic_npz,
    tftrain_variant,
    training_table,
    verdict,
)

BEGIN, END = "<!-- recipes.py: begin -->", "<!-- recipes.py: end -->"
FASHION = Path("/usr/share/datasets/fashion-mnist")
# (braces doubled: compare.tftrain_variant fills {work} into every --set)
AUGMENTATION = ("data.augmentation=[{{random_flip: {{mode: horizontal}}}}, "
                "{{random_translation: {{height_factor: 0.1, width_factor: 0.1}}}}]")
# Whole-pixel shifts, as configs/fashion_mnist_cnn.yaml's (and CIFAR's classic pad-and-crop) are.
WHOLE_PIXELS = ("data.augmentation=[{{random_flip: {{mode: horizontal}}}}, "
                "{{random_translation: {{height_factor: 0.1, width_factor: 0.1, interpolation: nearest}}}}]")


def augmentation_case(work: Path, repeats: int) -> tuple[str, list[str]]:
    images = synthetic_npz(work / "cifar.npz", 10240, 2048, (32, 32, 3), (1,), seed=1, signal=0.35)
    data = ["data.dataset=npz", f"data.path={images}", "training.epochs=1"]
    config = CONFIGS / "cifar10_cnn.yaml"
    variants = [tftrain_variant("no augmentation", config, data),
                tftrain_variant("flip + translation in the pipeline", config, [*data, AUGMENTATION]),
                tftrain_variant("flip + whole-pixel translation in the pipeline", config, [*data, WHOLE_PIXELS])]
    results = run_case("augmentation", variants, repeats, work)
    base, *augmented = [v.name for v in variants]
    checks = []
    for name, what in zip(augmented, ("flips and bilinear shifts", "flips and whole-pixel shifts"), strict=True):
        rate = median(results[name], "examples_per_second") / median(results[base], "examples_per_second")
        cpu = median(results[name], "cpu_us_per_example") / median(results[base], "cpu_us_per_example")
        checks.append(f"- pipeline augmentation ({what}) costs <= 10% of the CIFAR CNN's examples/second: "
                      f"{verdict(rate >= 0.9)} ({rate:.2f}x the rate without; CPU time per example {cpu:.2f}x)")
    text = ("### Augmentation in the pipeline, CIFAR CNN (configs/cifar10_cnn.yaml, custom loop, 10240 x "
            "32x32x3 uint8, batch 64, 1 epoch)\n\n" + training_table(variants, results))
    return text, checks


def fashion_case(work: Path) -> tuple[str, list[str]]:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        return "### Fashion-MNIST CNN\n\nnot run: " + f"{FASHION} is missing (apt-get install dataset-fashion-mnist)", []
    config = CONFIGS / "fashion_mnist_cnn.yaml"
    plain = ["optimizer.learning_rate=0.001", "data.augmentation=[]"]
    variants = [tftrain_variant("fashion_mnist_cnn.yaml (the recipe)", config, [f"data.path={FASHION}"]),
                tftrain_variant("same CNN, constant lr 0.001, no augmentation", config, [f"data.path={FASHION}", *plain])]
    rows, checks, runs = [], [], {}
    for variant in variants:
        load = os.getloadavg()[0]
        wall, cpu, stdout = run_timed(variant.command(work, 0), work)
        runs[variant.name] = run = {**variant.read(work, stdout), "wall": wall, "cpu": cpu, "load": load}
        print(f"  fashion {variant.name}: test accuracy {run['test_accuracy']:.4f}, {wall / 60:.1f} min "
              f"(CPU {cpu / 60:.1f} min), load {load:.2f}", file=sys.stderr, flush=True)
        rows.append([variant.name, f"{run['test_accuracy']:.4f}", f"{wall / 60:.1f}", f"{cpu / 60 / 2:.1f}",
                     _num(run.get("examples_per_second"), 0), f"{load:.2f}"])
    recipe = runs[variants[0].name]
    idle = recipe["cpu"] / 2  # what the run's CPU time fills on 2 otherwise idle cores
    checks.append(f"- configs/fashion_mnist_cnn.yaml >= 0.92 test accuracy in under 15 minutes on 2 cores: "
                  f"{verdict(recipe['test_accuracy'] >= 0.92 and min(recipe['wall'], idle) < 15 * 60)} "
                  f"({recipe['test_accuracy']:.4f}; {recipe['wall'] / 60:.1f} min wall at load {recipe['load']:.1f}, "
                  f"{idle / 60:.1f} min of 2 cores by CPU time)")
    text = ("### Fashion-MNIST CNN (real data, 60000 train / 10000 test, 15 epochs, batch 128, seed 0)\n\n"
            "*2-core min* is the process's CPU time over 2 cores: its wall time on an idle 2-core machine "
            "(the shared machine's load stretches the wall time).\n\n"
            + markdown_table(["run", "test accuracy", "wall min", "2-core min", "examples/s", "load at start"], rows))
    return text, checks


def run_timed(argv: list[str], work: Path) -> tuple[float, float, str]:
    """Run argv; (wall seconds, CPU seconds of the process, stdout)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TFTRAIN_OFFLINE": "1"}
    with open(work / "fashion.err", "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=work, text=True)
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n" + (work / "fashion.err").read_text()[-2000:])
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="augmentation,fashion", help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of the augmentation case")
    parser.add_argument("--output", default=str(RESULTS), help="markdown file whose recipes block is rewritten")
    args = parser.parse_args()
    info, started, load = machine(), time.time(), os.getloadavg()[0]
    sections, checks = [], []
    with tempfile.TemporaryDirectory(prefix="tftrain-recipes-") as tmp:
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            if case == "augmentation":
                text, found = augmentation_case(Path(tmp), args.repeats)
            elif case == "fashion":
                text, found = fashion_case(Path(tmp))
            else:
                raise SystemExit(f"--cases: unknown case {case!r}; expected augmentation, fashion")
            sections.append(text)
            checks += found
    report = "\n\n".join([
        f"Command: `python bench/recipes.py --cases {args.cases}`, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{(time.time() - started) / 60:.1f} min. Machine: {info['cpu']}, {info['cores']} cores; {info['versions']}. "
        f"Load average (1 min) {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
        "Targets:\n\n" + "\n".join(checks), *sections])
    print(report)
    write_recipes_block(Path(args.output), report)


def write_recipes_block(path: Path, report: str) -> None:
    """Replace this script's block of RESULTS.md (between its markers), keeping the rest."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        text = head + block + rest.partition(END)[2]
    else:
        text = text.rstrip() + "\n\n## Training recipes (bench/recipes.py)\n\n" + block + "\n"
    path.write_text(text)
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
