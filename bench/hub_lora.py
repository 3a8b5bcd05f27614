"""LoRA vs full fine-tuning of one keras-hub preset, through tftrain and through a hand-written
keras-hub script (issue 29): examples/second of training, side by side.

    nice python bench/hub_lora.py              # ~5 min on 2 cores; prints a markdown table
    python bench/hub_lora.py --epochs 3 --examples 4096

The preset is a random BERT (4 layers, hidden 128, 4 heads, a 2,000-word vocabulary,
sequences of 64 tokens) written with keras-hub's save_to_preset; the data are 2,048 random
sentences with 0/1 labels in an .npz. Each variant runs in its own process and is timed by the
same callback: the examples of the epochs after the first (tracing excluded) over their time.

  tftrain       `model.type: hub` with `lora: {rank: 4}` or without (full fine-tuning), fit loop
  script        keras_hub.models.TextClassifier.from_preset + backbone.enable_lora(4) (or not)
                + classifier.fit(strings, labels, batch_size=32), keras-hub's own pipeline
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BATCH, SEQUENCE, RANK = 32, 64, 4


def make_timer(batch: int):
    """A Keras callback: examples/second over every epoch but the first (tracing excluded)."""
    import keras

    class Timer(keras.callbacks.Callback):
        seconds, cpu, steps = 0.0, 0.0, 0

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            if epoch:
                self.seconds += time.perf_counter() - self.started
                self.cpu += time.process_time() - self.cpu_started  # every thread of the process
                self.steps += self.params["steps"]

        def rate(self) -> dict:
            examples = self.steps * batch
            return {"examples_per_second": examples / self.seconds, "cpu_ms_per_example": 1000 * self.cpu / examples}

    return Timer()


def write_inputs(work: Path, examples: int) -> tuple[Path, Path]:
    """The random BERT preset and an .npz of random sentences."""
    import keras_hub
    import numpy as np

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(1995)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    preset = work / "bert_small"
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), num_layers=4, num_heads=4, hidden_dim=128,
                                             intermediate_dim=512, max_sequence_length=128)
    for part in (backbone, tokenizer, keras_hub.models.BertTextClassifierPreprocessor(tokenizer, SEQUENCE)):
        part.save_to_preset(str(preset))
    x = np.array([" ".join(rng.choice(words, rng.integers(20, 80))) for _ in range(examples)])
    data = work / "sentences.npz"
    np.savez(data, x_train=x, y_train=rng.integers(0, 2, examples))
    return preset, data


def run_tftrain(preset: Path, data: Path, lora: bool, epochs: int, work: Path) -> dict:
    from tftrain.spec.loading import validate
    from tftrain.training.session import run_training

    model = {"type": "hub", "preset": str(preset), "task": "text_classifier", "sequence_length": SEQUENCE}
    if lora:
        model["lora"] = {"rank": RANK}
    config = validate({"data": {"dataset": "npz", "path": str(data), "batch_size": BATCH, "validation": "none"},
                       "model": model, "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
                       "optimizer": {"name": "adam", "learning_rate": 5e-5}, "training": {"epochs": epochs}})
    timer = make_timer(BATCH)
    run_training(config, runs_dir=work / "runs", name="hub-lora" if lora else "hub-full", callbacks=[timer])
    return timer.rate()


def run_script(preset: Path, data: Path, lora: bool, epochs: int) -> dict:
    """What a user writes with keras-hub alone."""
    import keras
    import keras_hub
    import numpy as np

    keras.utils.set_random_seed(0)
    arrays = np.load(data)
    classifier = keras_hub.models.TextClassifier.from_preset(str(preset), num_classes=2)
    classifier.preprocessor.sequence_length = SEQUENCE
    if lora:
        classifier.backbone.enable_lora(RANK)
    classifier.compile(optimizer=keras.optimizers.Adam(5e-5),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = make_timer(BATCH)
    classifier.fit(arrays["x_train"], arrays["y_train"], batch_size=BATCH, epochs=epochs, callbacks=[timer], verbose=0)
    return timer.rate()


def variant(args) -> None:
    """One variant, in this process: prints {"examples_per_second": ...}."""
    preset, data, work = Path(args.preset), Path(args.data), Path(args.work)
    lora = args.variant.endswith("lora")
    if args.variant.startswith("tftrain"):
        rate = run_tftrain(preset, data, lora, args.epochs, work)
    else:
        rate = run_script(preset, data, lora, args.epochs)
    print(json.dumps(rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--variant")
    parser.add_argument("--preset")
    parser.add_argument("--data")
    parser.add_argument("--work")
    parser.add_argument("--kinds", default="lora,full", help="lora, full or both (lora,full)")
    parser.add_argument("--rounds", type=int, default=1, help="each variant this many times, interleaved")
    args = parser.parse_args()
    if args.variant:
        variant(args)
        return
    kinds = args.kinds.split(",")
    names = [f"{who} {kind}" for kind in kinds for who in ("tftrain", "script")]
    rates: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        preset, data = write_inputs(work, args.examples)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for round_ in range(args.rounds):
            for name in names:
                tag = f"{name.replace(' ', '-')}-{round_}"
                done = subprocess.run([sys.executable, __file__, "--variant", name.replace(" ", "-"), "--epochs",
                                       str(args.epochs), "--preset", str(preset), "--data", str(data), "--work",
                                       str(work / tag)], env=env, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
                rates[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                last = rates[name][-1]
                print(f"{name}: {last['examples_per_second']:.1f} examples/s, {last['cpu_ms_per_example']:.2f} "
                      "ms CPU/example", file=sys.stderr)
    _table(rates, kinds)


def _table(rates: dict[str, list[dict]], kinds: list[str]) -> None:
    """Medians over the rounds, side by side."""
    import statistics

    def median(name, key):
        return statistics.median(r[key] for r in rates[name])

    print("| fine-tuning | tftrain ex/s | script ex/s | tftrain / script | tftrain ms CPU/ex | script ms CPU/ex |")
    print("|---|---|---|---|---|---|")
    for kind in kinds:
        ours, theirs = median(f"tftrain {kind}", "examples_per_second"), median(f"script {kind}", "examples_per_second")
        print(f"| {kind} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | "
              f"{median(f'tftrain {kind}', 'cpu_ms_per_example'):.2f} | "
              f"{median(f'script {kind}', 'cpu_ms_per_example'):.2f} |")


if __name__ == "__main__":
    main()

# Measured 2026-12-06 on the shared 2-core Xeon (CPU only, load average 4-8 from other sessions).
# First measure (one round each): tftrain LoRA 60.2 ex/s vs script 67.8 (0.89x). Wall-clock rates
# under that load move by up to 1.5x between rounds of the same variant (script full: 95.8 then
# 63.2 ex/s), so this script now also reports CPU time per example (process_time over the same
# epochs), which the load barely moves, and the median of interleaved rounds:
#   --rounds 2 (2,048 sentences, 3 epochs):
#   | lora | 113.9 ex/s | 107.7 ex/s | 1.06x | 6.36 ms CPU/ex | 6.63 ms CPU/ex |
#   | full | 109.5 ex/s |  79.5 ex/s | 1.38x | 8.31 ms CPU/ex | 8.15 ms CPU/ex |
#   --kinds lora --rounds 2 --examples 1024: 159.0 vs 114.7 ex/s (1.39x), 6.75 vs 6.35 ms CPU/ex.
# No gap to close: per example tftrain spends the script's CPU time within +-6% either way
# (LoRA, both settings: no XLA on CPU, 1 step per call for this 1.6 GMAC step, TensorFlow's
# default threads), and its timed epochs include its per-epoch snapshots (last.keras, best.keras
# and their .lora.h5 adapters), which the script does not write. The 0.89x was one noisy round.
