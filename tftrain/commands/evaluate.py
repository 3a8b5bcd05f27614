"""`tftrain evaluate`: rebuild the data from a run's own config, load its model, report metrics."""

from __future__ import annotations

import time
from pathlib import Path

from tftrain.data import load_data
from tftrain.data.pipeline import evaluation_batches
from tftrain.errors import UserError
from tftrain.runs import EVAL, MODEL, SNAPSHOTS, RunDir
from tftrain.security import load_model, model_kind
from tftrain.training.components import build_loss, build_metrics


def model_path(run: RunDir, checkpoint: str) -> Path | str:
    """checkpoints/<best|last>.keras (`last` falls back to the final model.keras), or any other
    model file or URL given as `checkpoint`, to be evaluated on the run's data."""
    if checkpoint not in SNAPSHOTS:
        if model_kind(checkpoint) == "url" or Path(checkpoint).exists():
            return checkpoint
        raise UserError(f"--checkpoint: expected last, best or a model file, got {checkpoint!r} "
                        "(no such file)")
    candidates = [run.snapshot(checkpoint)]
    if checkpoint == "last":
        candidates.append(run.file(MODEL))
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(f"{run.path}: no {checkpoint} model (looked for "
                    f"{', '.join(str(p.relative_to(run.path)) for p in candidates)})")


def evaluate_run(run_dir: str | Path, checkpoint: str = "last", unsafe: bool = False) -> dict:
    """Evaluate a run's model (or the model file `checkpoint`) on the run's test split (else
    validation, else train); writes eval.json. Models load in Keras safe mode unless `unsafe`."""
    run = RunDir.open(run_dir)
    config = run.config()
    path = model_path(run, checkpoint)
    model = load_model(path, unsafe=unsafe)
    data = load_data(config, config.seed)
    split = evaluation_batches(data, config, config.seed)
    model.compile(loss=build_loss(config.loss), metrics=build_metrics(config))
    metrics = model.evaluate(split.batches, return_dict=True, verbose=0)
    result = {
        "checkpoint": checkpoint,
        "model": str(path.relative_to(run.path)) if isinstance(path, Path) else path,
        "split": split.name,
        "examples": split.examples,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "evaluated": time.time(),
    }
    run.write_json(EVAL, result)
    return result
