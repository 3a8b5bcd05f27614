"""Data at scale (issue 18): streamed TFRecord shards and image folders against the in-memory path.

    nice -n 19 python bench/streaming.py           # full (~15-20 min on 2 loaded cores); rewrites its block in bench/RESULTS.md
    nice -n 19 python bench/streaming.py --quick   # tiny sizes (~3 min); prints only, unless --output is given

Cases (each variant its own process, alternating rounds side by side, with bench/compare.py's helpers):

  dense    configs/mnist_dense.yaml on MNIST-shaped synthetic data (60000 x 28x28 uint8 + 10000
           test): the in-memory npz path against the same data written by `tftrain convert
           --to tfrecord --shards 8` and read back with `dataset: tfrecord`,
           `in_memory_max_mb: 0` (always stream): examples/second, CPU us/example, peak RSS
           (target: streaming >= 0.9x the in-memory rate).
  memory   the same dense model, streamed with `in_memory_max_mb: 0` and a bounded
           `training.steps`, on a generated ~2 GB (uncompressed uint8) TFRecord dataset (shards
           written directly with tf.io.TFRecordWriter, no sidecar: the run checks every record
           before training, which is read in that peak too) and on a folder of small JPEGs:
           peak RSS (target: < 1 GB) beside the decoded size the in-memory path would need, and
           a process that only imports TensorFlow and Keras (the floor).
  decode   one pass over the JPEG folder, same batch size and image size: tftrain's streamed
           image_folder pipeline (load_data + build_pipelines with `in_memory_max_mb: 0`, as
           `tftrain run` builds it) against keras.utils.image_dataset_from_directory: images/second
           of the pass (target: >= 1.0x Keras's); listing (and for tftrain, reading every header)
           is timed apart.

The generated data lives under /work/scratch/bench18 (--scratch) and is deleted at the end.
Peak RSS is each process's own (os.wait4); this launcher stays small (no NumPy or TensorFlow:
the data are written by child processes of this script).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (  # noqa: E402 (bench/ is not a package)
    CONFIGS,
    REPO,
    RESULTS,
    Variant,
    _num,
    machine,
    markdown_table,
    median,
    ratio,
    ratio_notes,
    run_case,
    run_process,
    synthetic_npz,
    tftrain_variant,
    training_table,
    verdict,
    write_report,
)

BEGIN, END = "<!-- streaming.py: begin -->", "<!-- streaming.py: end -->"
SCRATCH = Path("/work/scratch/bench18")
DENSE = CONFIGS / "mnist_dense.yaml"
RECORD_SHARD_BYTES = 128 << 20  # shards of the generated dataset: TensorFlow's guide says 100 MB+
MEMORY_TARGET_MIB = 1024


@dataclass(frozen=True)
class Sizes:
    """How much work each case does (sizes are multiples of the batch size, 32)."""

    mnist_train: int
    mnist_test: int
    dense_epochs: int
    dense_repeats: int
    records_bytes: int  # the generated TFRecord dataset's decoded size
    record_shape: tuple
    memory_steps: int
    jpegs: int  # at most this many files...
    jpeg_seconds: float  # ...or as many as this long a generation makes
    jpeg_side: int
    decode_repeats: int


FULL = Sizes(mnist_train=60000, mnist_test=10000, dense_epochs=2, dense_repeats=3, records_bytes=2_000_000_000,
             record_shape=(32, 32, 3), memory_steps=2000, jpegs=100_000, jpeg_seconds=180, jpeg_side=32,
             decode_repeats=3)
QUICK = Sizes(mnist_train=6400, mnist_test=1024, dense_epochs=1, dense_repeats=2, records_bytes=64_000_000,
              record_shape=(32, 32, 3), memory_steps=100, jpegs=3000, jpeg_seconds=30, jpeg_side=32,
              decode_repeats=2)


# -- children: data writers and the decode passes (each its own process) ---------------------


def _write_records(folder: str, count: int, shape: list, shards: int, seed: int) -> None:
    """`count` tf.train.Example records (input: random uint8 bytes of `shape`, label: int64 0-9)
    in `shards` files, a chunk at a time: the dataset is never in memory whole."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    writers = [tf.io.TFRecordWriter(f"{folder}/train-{i:05d}-of-{shards:05d}.tfrecord") for i in range(shards)]
    written = 0
    try:
        while written < count:
            n = min(4096, count - written)
            y = rng.integers(0, 10, n)
            x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)  # noise: only the memory is measured
            for i in range(n):
                feature = {"input": tf.train.Feature(bytes_list=tf.train.BytesList(value=[x[i].tobytes()])),
                           "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y[i])]))}
                record = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
                writers[(written + i) % shards].write(record)
            written += n
    finally:
        for writer in writers:
            writer.close()


def _write_jpegs(folder: str, count: int, seconds: float, side: int, seed: int, result: str) -> None:
    """Up to `count` side x side RGB JPEGs in 10 class folders (class template + noise), or as
    many as `seconds` of writing make; the count goes to `result`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, side, side, 3)).astype(np.float32)
    for c in range(10):
        os.makedirs(f"{folder}/class_{c}", exist_ok=True)
    deadline, written = time.monotonic() + seconds, 0
    while written < count and time.monotonic() < deadline:
        y = rng.integers(0, 10, 256)
        x = (0.35 * templates[y] + 0.65 * rng.integers(0, 256, (256, side, side, 3))).astype(np.uint8)
        for i in range(min(256, count - written)):
            Image.fromarray(x[i]).save(f"{folder}/class_{y[i]}/{written:07d}.jpg", quality=90)
            written += 1
    Path(result).write_text(json.dumps({"images": written}))


def _decode_tftrain(config_path: str, result: str) -> None:
    """One epoch of tftrain's training pipeline (as `tftrain run` builds it), timed."""
    from tftrain.data import load_data
    from tftrain.data.pipeline.batches import build_pipelines
    from tftrain.spec.loading import load_config

    started = time.perf_counter()
    config = load_config(config_path)
    data = load_data(config, config.seed)
    batches = build_pipelines(data, config, config.seed).train(0)
    _time_pass(batches, time.perf_counter() - started, result)


def _decode_keras(folder: str, side: int, batch_size: int, seed: int, result: str) -> None:
    """One pass of keras.utils.image_dataset_from_directory over the folder, timed."""
    import keras

    started = time.perf_counter()
    batches = keras.utils.image_dataset_from_directory(folder, batch_size=batch_size, image_size=(side, side),
                                                       shuffle=True, seed=seed, verbose=False)
    _time_pass(batches, time.perf_counter() - started, result)


def _time_pass(batches, setup: float, result: str) -> None:
    """Iterate `batches` once: images/second and CPU us/image of the pass (from asking for the
    first batch to the last), beside the setup time."""
    cpu = time.process_time()
    started, images = time.perf_counter(), 0
    for x, _ in batches:
        images += int(x.shape[0])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    Path(result).write_text(json.dumps({"images": images, "pass_seconds": seconds, "setup_seconds": setup,
                                        "images_per_second": images / seconds,
                                        "cpu_us_per_image": 1e6 * cpu / images}))


CHILDREN = {"write-records": _write_records, "write-jpegs": _write_jpegs, "decode-tftrain": _decode_tftrain,
            "decode-keras": _decode_keras}


def child(name: str, *args, log: Path) -> None:
    """Run one of CHILDREN in its own process (at this process's niceness)."""
    argv = [sys.executable, __file__, "--child", name, json.dumps(args)]
    code, wall, rss, _ = run_process(argv, log.parent, log.name)
    if code != 0:
        tail = (log.parent / f"{log.name}.err").read_text().strip().splitlines()[-5:]
        raise SystemExit(f"{name} failed (exit {code}):\n  " + "\n  ".join(tail))
    print(f"  {name}: {wall:.1f} s", file=sys.stderr, flush=True)


# -- configs ----------------------------------------------------------------------------------


def write_config(path: Path, data: dict, training: dict | None = None) -> Path:
    """configs/mnist_dense.yaml with its data block replaced (and training keys added)."""
    config = yaml.safe_load(DENSE.read_text())
    config["data"] = {"batch_size": config["data"]["batch_size"], **data}
    config["training"] = {**config["training"], **(training or {})}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def record_block(folder: Path, shape: tuple) -> dict:
    """The data block of the generated records (what `tftrain convert` would print for them)."""
    return {"dataset": "tfrecord", "path": str(folder / "train-*.tfrecord"), "validation": "none",
            "in_memory_max_mb": 0,
            "options": {"label": "label", "features": {
                "input": {"type": "bytes", "decode": "raw", "shape": list(shape), "dtype": "uint8"},
                "label": {"type": "int64"}}}}


def folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under `folder`."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def read_result(work: Path, stdout: str) -> dict:
    return json.loads((work / "result.json").read_text())


# -- cases ------------------------------------------------------------------------------------


def dense_case(sizes: Sizes, work: Path) -> tuple[str, list[str]]:
    npz = synthetic_npz(work / "mnist.npz", sizes.mnist_train, sizes.mnist_test, (28, 28), (), seed=0, signal=0.1)
    in_memory = write_config(work / "npz.yaml", {"dataset": "npz", "path": str(npz), "validation": "test"})
    shards = work / "mnist-tfrecord"
    argv = [sys.executable, "-m", "tftrain", "convert", str(in_memory), "--to", "tfrecord", "--shards", "8",
            "--output", str(shards)]
    code, wall, convert_rss, stdout = run_process(argv, work, "convert")
    if code != 0:
        raise SystemExit("tftrain convert failed:\n" + (work / "convert.err").read_text()[-2000:])
    block = yaml.safe_load(stdout)["data"]
    streamed = write_config(work / "tfrecord.yaml", {**block, "validation": "test", "in_memory_max_mb": 0})
    n_files, n_bytes = folder_size(shards)
    print(f"  tftrain convert: {wall:.1f} s, {n_files} files, {n_bytes / 2**20:.0f} MiB", file=sys.stderr)
    epochs = [f"training.epochs={sizes.dense_epochs}"]
    variants = [tftrain_variant("in memory: npz", in_memory, epochs),
                tftrain_variant("streamed: tfrecord, 8 shards, in_memory_max_mb: 0", streamed, epochs)]
    results = run_case("dense", variants, sizes.dense_repeats, work)
    names = [v.name for v in variants]
    rate = ratio(results, names[1], names[0])
    rss = [median(results[n], "rss") for n in names]
    checks = [f"- TFRecord streaming >= 0.9x the in-memory path's examples/second (dense, MNIST-shaped): "
              f"{verdict(rate >= 0.9)} ({rate:.2f}x; {ratio_notes(results, names[1], names[0])}; peak RSS "
              f"{rss[1]:,.0f} vs {rss[0]:,.0f} MiB)"]
    steps = sizes.dense_epochs * sizes.mnist_train // 32
    text = (f"### Dense, MNIST-shaped: in memory vs TFRecord shards ({sizes.mnist_train} x 28x28 uint8 train, "
            f"{sizes.mnist_test} test, batch 32, SGD, {sizes.dense_epochs} epochs = {steps} steps)\n\n"
            f"`tftrain convert` wrote {len(list(shards.glob('train-*')))} train + {len(list(shards.glob('test-*')))} test "
            f"shards and tftrain-dataset.json ({n_bytes / 2**20:.0f} MiB) in "
            f"{wall:.1f} s (peak RSS {convert_rss:,.0f} MiB).\n\n" + training_table(variants, results))
    return text, checks


def memory_case(sizes: Sizes, work: Path, jpegs: Path, n_jpegs: int) -> tuple[str, list[str]]:
    record_bytes = math.prod(sizes.record_shape)
    count = sizes.records_bytes // record_bytes // 32 * 32
    shards = max(8, round(count * record_bytes / RECORD_SHARD_BYTES))
    records = work / "records"
    records.mkdir()
    child("write-records", str(records), count, list(sizes.record_shape), shards, 0, log=work / "write-records")
    n_files, on_disk = folder_size(records)
    steps = {"steps": sizes.memory_steps, "epochs": 1}
    big = write_config(work / "big.yaml", record_block(records, sizes.record_shape), steps)
    side = sizes.jpeg_side
    folder = write_config(work / "jpegs.yaml", {"dataset": "image_folder", "path": str(jpegs), "validation": "none",
                                                "in_memory_max_mb": 0, "options": {"image_size": [side, side]}}, steps)
    floor = Variant("import tensorflow + keras only",
                    lambda w, seed: [sys.executable, "-c", "import keras, tensorflow, numpy"], lambda w, out: {})
    variants = [floor, tftrain_variant(f"{count * record_bytes / 1e9:.2g} GB TFRecord, streamed", big, []),
                tftrain_variant("JPEG folder, streamed", folder, [])]
    results = run_case("memory", variants, 1, work)
    jpeg_files, jpeg_bytes = folder_size(jpegs)
    decoded = {variants[1].name: (count, count * record_bytes, n_files, on_disk),
               variants[2].name: (n_jpegs, n_jpegs * side * side * 3, jpeg_files, jpeg_bytes)}
    rows, checks = [], []
    for variant in variants:
        run = results[variant.name][0]
        examples, need, files, size = decoded.get(variant.name, (None, None, None, None))
        rows.append([variant.name, f"{examples:,}" if examples else "-", f"{files:,}" if files else "-",
                     f"{size / 2**20:,.0f}" if size else "-", f"{need / 2**20:,.0f}" if need else "-",
                     f"{run['rss']:,.0f}", _num(run.get("examples_per_second"), 0), f"{run['wall']:.1f}",
                     f"{run['load']:.2f}"])
        if need:
            checks.append(f"- {variant.name} trains with peak RSS < 1 GB: {verdict(run['rss'] < MEMORY_TARGET_MIB)} "
                          f"({run['rss']:,.0f} MiB; in memory the arrays alone would be {need / 2**20:,.0f} MiB)")
    text = (f"### Memory: streamed data far larger than the run (dense model, batch 32, training.steps = "
            f"{sizes.memory_steps}, in_memory_max_mb: 0)\n\n"
            f"TFRecord: {count:,} records of {'x'.join(map(str, sizes.record_shape))} uint8 in {shards} shards "
            "written directly (no tftrain-dataset.json: the run parses every record once before training). "
            f"JPEG folder: {n_jpegs:,} {side}x{side} RGB JPEGs in 10 class folders (as many as "
            f"{sizes.jpeg_seconds:.0f} s of PIL writing made, at most {sizes.jpegs:,}); `image_size: [{side}, {side}]`, "
            "every header read before training. *in-memory arrays MiB* is the decoded uint8 size the in-memory "
            "path would hold.\n\n"
            + markdown_table(["run", "examples", "files", "on disk MiB", "in-memory arrays MiB", "peak RSS MiB",
                              "examples/s", "wall s", "load"], rows))
    shutil.rmtree(records, ignore_errors=True)
    return text, checks


def decode_case(sizes: Sizes, work: Path, jpegs: Path, n_jpegs: int) -> tuple[str, list[str]]:
    side, batch = sizes.jpeg_side, 32
    config = write_config(work / "decode.yaml", {"dataset": "image_folder", "path": str(jpegs), "validation": "none",
                                                 "in_memory_max_mb": 0, "options": {"image_size": [side, side]}},
                          {"epochs": 1})
    result = str(work / "result.json")
    variants = [
        Variant("keras.utils.image_dataset_from_directory",
                lambda w, seed: [sys.executable, __file__, "--child", "decode-keras",
                                 json.dumps([str(jpegs), side, batch, seed, result])], read_result, baseline=True),
        Variant("tftrain image_folder, streamed",
                lambda w, seed: [sys.executable, __file__, "--child", "decode-tftrain",
                                 json.dumps([str(config), result])], read_result),
    ]
    results = run_case("decode", variants, sizes.decode_repeats, work)
    base = median(results[variants[0].name], "images_per_second")
    rows = []
    for variant in variants:
        runs = results[variant.name]
        rate, spread = median(runs, "images_per_second"), [r["images_per_second"] for r in runs]
        rows.append([variant.name, f"{runs[0]['images']:,}", _num(rate, 0), f"{min(spread):,.0f}-{max(spread):,.0f}",
                     f"{rate / base:.2f}x", _num(median(runs, "cpu_us_per_image"), 1),
                     _num(median(runs, "pass_seconds"), 1), _num(median(runs, "setup_seconds"), 1),
                     _num(median(runs, "rss"), 0), _num(median(runs, "load"), 2)])
    names = [v.name for v in variants]
    rate = median(results[names[1]], "images_per_second") / base
    cpu = median(results[names[0]], "cpu_us_per_image") / median(results[names[1]], "cpu_us_per_image")
    checks = [f"- JPEG folder decode throughput >= keras.utils.image_dataset_from_directory's: {verdict(rate >= 1.0)} "
              f"({rate:.2f}x; {cpu:.2f}x by CPU time per image)"]
    text = (f"### JPEG folder decode: one pass over {n_jpegs:,} {side}x{side} RGB JPEGs (batch {batch}, "
            f"image_size [{side}, {side}], shuffled)\n\n"
            "*setup s* is building the dataset: listing the files (tftrain: and reading every header, which "
            "a streamed folder does to refuse a non-image before training). *images/s* is the pass alone, "
            "from asking for the first batch to the last.\n\n"
            + markdown_table(["pipeline", "images", "images/s", "range", "vs Keras", "CPU us/image", "pass s",
                              "setup s", "peak RSS MiB", "load"], rows))
    return text, checks


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        CHILDREN[sys.argv[2]](*json.loads(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for trying the script out")
    parser.add_argument("--cases", default="dense,memory,decode", help="comma-separated subset")
    parser.add_argument("--scratch", type=Path, default=SCRATCH, help="where the generated data goes (deleted after)")
    parser.add_argument("--output", default=None,
                        help=f"markdown file to update (default: {RESULTS.relative_to(REPO)} for a full run)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ("dense", "memory", "decode")]
    if unknown:
        raise SystemExit(f"--cases: unknown case {unknown[0]!r}; expected dense, memory, decode")
    output = Path(args.output) if args.output else (None if args.quick else RESULTS)
    if args.scratch.exists():
        raise SystemExit(f"--scratch: {args.scratch} exists; remove it or give another folder")

    info, started, load_before = machine(), time.time(), os.getloadavg()
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['versions']}; load {load_before[0]:.2f}",
          file=sys.stderr)
    sections, checks, loads = [], [], []
    work = args.scratch
    work.mkdir(parents=True)
    try:
        jpegs, n_jpegs = work / "jpegs", 0
        if "memory" in cases or "decode" in cases:
            child("write-jpegs", str(jpegs), sizes.jpegs, sizes.jpeg_seconds, sizes.jpeg_side, 0,
                  str(work / "jpegs.json"), log=work / "write-jpegs")
            n_jpegs = json.loads((work / "jpegs.json").read_text())["images"]
        for case in cases:
            if case == "dense":
                text, found = dense_case(sizes, work)
            elif case == "memory":
                text, found = memory_case(sizes, work, jpegs, n_jpegs)
            else:
                text, found = decode_case(sizes, work, jpegs, n_jpegs)
            sections.append(text)
            checks += found
            loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    report = "\n\n".join([
        f"Command: `nice -n 19 python bench/streaming.py{' --quick' if args.quick else ''}"
        f"{'' if cases == ['dense', 'memory', 'decode'] else ' --cases ' + ','.join(cases)}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - started) / 60:.1f} min; dense and decode: medians of "
        f"{sizes.dense_repeats} and {sizes.decode_repeats} alternating rounds.",
        f"Machine: {info['cpu']}, {info['cores']} cores; {info['versions']}. Load average (1 min) "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (where other work shares the machine, the "
        "ratios of variants alternated side by side are the figures to read); the `load` columns are the load when each run started. Peak RSS includes this launcher's "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (Linux counts the parent's size at fork).",
        "Targets:\n\n" + "\n".join(checks),
        *sections,
    ])
    print(report)
    if output is not None:
        if not output.exists() or BEGIN not in output.read_text():
            output.touch()
            output.write_text(output.read_text().rstrip() + "\n\n## Data at scale (bench/streaming.py)\n")
        write_report(output, report, BEGIN, END)
        print(f"\nwrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
