"""`tftrain evaluate`: rebuild the data from a run's own config, load its model, report metrics.

Besides the compiled metrics (eval.json `metrics`, as before), the model's predictions on the
split are analysed for the run's task (tftrain.commands.evaluation_report): per-class table,
confusion matrix and top confusions for classifiers, ROC and precision-recall curves for one-unit
binary and score models, MAE/RMSE/R² for regression; the figures go to plots/, and `--mistakes N`
draws the N most confident misclassified images.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from tftrain.commands import evaluation_plots as figures
from tftrain.commands.evaluation_data import check_same_kind, default_checkpoint, other_data, tagged
from tftrain.commands.evaluation_report import (
    THRESHOLDS,
    Predictions,
    binary_line,
    binary_summary,
    classification_summary,
    confusion_line,
    read_predictions,
    regression_summary,
    worst_mistakes,
)
from tftrain.data import load_data
from tftrain.data.pipeline.batches import evaluation_batches
from tftrain.errors import UserError
from tftrain.runs import (
    CONFUSION_MATRIX_PLOT,
    EVAL,
    MISTAKES_PLOT,
    PRECISION_RECALL_PLOT,
    PREDICTED_VS_TRUE_PLOT,
    RESIDUALS_PLOT,
    ROC_PLOT,
    RunDir,
)
from tftrain.runs.evaluation import evaluate_model
from tftrain.runs.model import model_path
from tftrain.runs.plots import save_png
from tftrain.security import load_model
from tftrain.spec.checks import RunFacts
from tftrain.spec.outputs import SEVERAL

CONSOLE_MATRIX_UP_TO = 20  # classes: a wider confusion matrix is read in the PNG and eval.json


def check_mistakes(config, task: str) -> None:
    """--mistakes needs misclassified examples: a classifier's run."""
    if task == SEVERAL:
        raise UserError("--mistakes: this run's model has several outputs; its evaluation shows each one's "
                        "confusions")
    if task == "regression":
        raise UserError(f"--mistakes: this run is a regression (loss {config.loss.canonical}), so nothing is "
                        f"misclassified; {PREDICTED_VS_TRUE_PLOT} and {RESIDUALS_PLOT} show where it is wrong")


def _check_images(shape: tuple[int, ...], split: str) -> None:
    """--mistakes draws the inputs, so they must be images: (H, W) or (H, W, 1|3|4)."""
    shape = tuple(shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))):
        raise UserError(f"--mistakes: draws the misclassified inputs as images, but this run's {split} examples "
                        f"have shape {shape}, not (height, width[, channels])")


def evaluate_run(run_dir: str | Path, checkpoint: str | None = None, unsafe: bool = False,
                 mistakes: int | None = None, data: str | None = None) -> dict:
    """Evaluate a run's model (`checkpoint`: best, last or a model file; None: best where the run
    tracked a monitor, else last) on the run's test split (else validation, else train), or on
    `data` (a config's data: block, or the run's dataset at another path); writes eval.json (for
    `data`: eval-NAME.json) and the evaluation plots (and, with `mistakes`, a grid of the worst
    misclassified images). Models load in Keras safe mode unless `unsafe`."""
    run = RunDir.open(run_dir)
    config = run.config()
    task = RunFacts.of(config).read_as
    if mistakes is not None:
        check_mistakes(config, task)
    checkpoint = checkpoint or default_checkpoint(run)
    path = model_path(run, checkpoint)
    config, tag = (config, None) if data is None else other_data(config, data)
    loaded = load_data(config, config.seed)
    model = load_model(path, unsafe=unsafe)
    if data is not None:
        loaded = _as_trained(loaded, model, run.summary().get("data") or {}, data)
    split = evaluation_batches(loaded, config, config.seed)
    if mistakes is not None:
        _check_images(loaded.input_shape, split.name)
    metrics = evaluate_model(model, config, split.batches)
    if task == SEVERAL:  # each output on its own (tftrain.commands.evaluation_outputs)
        result = _several(run, model, config, split, loaded, checkpoint, path, metrics, data, tag)
        run.write_json(tagged(EVAL, tag), result)
        return result
    outputs, labels = _predict(model, split.batches)
    predictions = read_predictions(outputs, labels, task, config.model.output_activation_name(), loaded.class_names)
    title = f"{run.path.name} ({split.name}{f' of {data}' if data else ''})"
    result = {
        "checkpoint": checkpoint,
        "model": str(path.relative_to(run.path)) if isinstance(path, Path) else path,
        **({"data": data} if data is not None else {}),
        "split": split.name,
        "examples": split.examples,
        "metrics": metrics,
        "evaluated": time.time(),
        "task": task,
        **analyse(run, predictions, title, tag),
    }
    if task == "regression":  # a forecast: MASE against the last value, the forecast over time
        from tftrain.commands.evaluation_forecast import forecast_section

        forecast = forecast_section(run, loaded, config, predictions.predicted, title)
        if forecast is not None:
            result["forecast"] = forecast
            result["plots"]["forecast"] = forecast["plot"]
    if mistakes is not None:
        result["mistakes"] = draw_mistakes(run, predictions, lambda rows: _rows(split.batches, rows), mistakes, title,
                                           tag)
    run.write_json(tagged(EVAL, tag), result)
    return result


def _several(run, model, config, split, loaded, checkpoint, path, metrics, data, tag) -> dict:
    """evaluate_run's result for a model with several outputs: a section per output."""
    from tftrain.commands.evaluation_outputs import evaluate_outputs, output_classes
    from tftrain.spec.checks import head_reads

    title = f"{run.path.name} ({split.name}{f' of {data}' if data else ''})"
    classes = output_classes(loaded.extra)  # the data as read give each output's class names
    outputs = evaluate_outputs(run, model, split.batches, head_reads(config), classes, title, tag, analyse)
    return {"checkpoint": checkpoint, "model": str(path.relative_to(run.path)) if isinstance(path, Path) else path,
            **({"data": data} if data is not None else {}), "split": split.name, "examples": split.examples,
            "metrics": metrics, "evaluated": time.time(), "task": SEVERAL,
            "outputs": outputs,
            "plots": {f"{name}.{key}": plot for name, one in outputs.items() for key, plot in one["plots"].items()}}


def _as_trained(data, model, trained_on: dict, given: str):
    """Other data checked against the model, with the run's class count (a test set that lacks the
    last class still gets labels one-hot encoded as wide as the model's output)."""
    check_same_kind(tuple(model.inputs[0].shape[1:]), data, trained_on, given)
    classes = trained_on.get("num_classes")
    if isinstance(classes, int) and data.num_classes is not None and data.num_classes < classes:
        data = dataclasses.replace(data, num_classes=classes)
    return data


def analyse(run: RunDir, p: Predictions, title: str, tag: str | None = None) -> dict:
    """The task's eval.json sections and their plots (paths relative to the run directory; in
    plots/TAG/ for an evaluation on other data)."""
    plots: dict[str, str] = {}

    def save(figure, name: str, key: str) -> None:
        name = tagged(name, tag)
        run.file(name).parent.mkdir(parents=True, exist_ok=True)
        save_png(figure, run.file(name))
        plots[key] = name

    sections: dict = {}
    if p.task == "regression":
        sections["regression"] = regression_summary(p)
        save(figures.predicted_vs_true_figure(p.true, p.predicted, title), PREDICTED_VS_TRUE_PLOT, "predicted_vs_true")
        save(figures.residuals_figure(p.true, p.predicted, title), RESIDUALS_PLOT, "residuals")
        return {**sections, "plots": plots}
    sections["classes"] = list(p.class_names)
    sections["classification"] = classification_summary(p)
    counts = np.array(sections["classification"]["confusion_matrix"]["counts"])
    save(figures.confusion_matrix_figure(counts, p.class_names, title), CONFUSION_MATRIX_PLOT, "confusion_matrix")
    if p.task in THRESHOLDS:
        binary, roc, pr = binary_summary(p)
        sections["binary"] = binary
        point = binary["at_threshold"]
        label = f"threshold {binary['threshold']:g} on the {binary['threshold_on']}"
        if roc is not None:
            save(figures.roc_figure(roc, (point["false_positive_rate"], point["true_positive_rate"]), label, title),
                 ROC_PLOT, "roc")
        if pr is not None:
            at = (point["true_positive_rate"], point["precision"]) if point["precision"] is not None else None
            save(figures.precision_recall_figure(pr, at, label, float(p.true.mean()), title),
                 PRECISION_RECALL_PLOT, "precision_recall")
    return {**sections, "plots": plots}


def _predict(model, batches) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs and the labels of every batch, in order (streamed data is read once
    more, never held whole: only the outputs and labels are kept)."""
    outputs, labels = [], []
    for x, y in batches:
        outputs.append(np.asarray(model.predict_on_batch(x)))
        labels.append(y.numpy())
    return np.concatenate(outputs), np.concatenate(labels)


def _rows(batches, indices: np.ndarray) -> np.ndarray:
    """The inputs of examples `indices` (positions in the split), in that order, read batch by batch."""
    wanted, found, start = {int(i) for i in indices}, {}, 0
    for x, _ in batches:
        x = x.numpy()
        for i in range(start, start + len(x)):
            if i in wanted:
                found[i] = x[i - start]
        start += len(x)
        if len(found) == len(wanted):
            break
    return np.stack([found[int(i)] for i in indices])


def draw_mistakes(run: RunDir, p: Predictions, images, limit: int, title: str, tag: str | None = None) -> dict:
    """eval.json's `mistakes`: the `limit` most confident misclassified examples, drawn in a grid
    (`images(indices)`: their inputs)."""
    indices = worst_mistakes(p, limit)
    examples = []
    for i in indices:
        sure = p.confidence[i] if p.confidence is not None else p.score[i]
        examples.append({"index": int(i), "true": p.class_names[p.true[i]],
                         "predicted": p.class_names[p.predicted[i]],
                         "probability" if p.confidence is not None else "score": float(sure)})
    found = {"misclassified": int(np.sum(p.predicted != p.true)), "shown": len(examples), "examples": examples}
    if examples:
        captions = [f"#{e['index']}\ntrue: {e['true']}\npredicted: {e['predicted']}\n"
                    f"{'p' if 'probability' in e else 'score'} = {e.get('probability', e.get('score')):.3f}"
                    for e in examples]
        heading = f"{title}: the {len(examples)} most confident of {found['misclassified']} mistakes"
        run.file(tagged(MISTAKES_PLOT, tag)).parent.mkdir(parents=True, exist_ok=True)
        save_png(figures.mistakes_figure(images(indices), captions, heading), run.file(tagged(MISTAKES_PLOT, tag)))
        found["plot"] = tagged(MISTAKES_PLOT, tag)
    return found


def evaluation_tables(result: dict) -> list:
    """What the console shows of an evaluation, in order: rich tables and plain lines."""
    from tftrain.console import metrics_table

    shown: list = [metrics_table("metrics", result["metrics"])]
    if "outputs" in result:  # several outputs: each one's tables under its name
        from tftrain.commands.evaluation_outputs import output_tables

        return shown + output_tables(result, evaluation_tables)
    if "regression" in result:
        stats = result["regression"]
        shown.append(metrics_table("regression", {"MAE": stats["mae"], "RMSE": stats["rmse"],
                                                  "R²": "n/a" if stats["r2"] is None else stats["r2"]}))
    if "forecast" in result:
        stats = result["forecast"]
        shown.append(metrics_table("forecast", {"MAE": stats["mae"], "RMSE": stats["rmse"],
                                                "naive MAE (last value)": stats["naive_mae"],
                                                "MASE": "n/a" if stats["mase"] is None else stats["mase"]}))
    if "classification" in result:
        report = result["classification"]
        shown.append(per_class_table(report))
        matrix = report["confusion_matrix"]
        if len(matrix["labels"]) <= CONSOLE_MATRIX_UP_TO:
            shown += [confusion_table(matrix, normalized=False), confusion_table(matrix, normalized=True)]
        else:
            shown.append(f"confusion matrix: {len(matrix['labels'])} classes; see eval.json and "
                         f"{CONFUSION_MATRIX_PLOT}")
        if report["top_confusions"]:
            shown.append("top confusions:\n" + "\n".join(f"  {confusion_line(c)}" for c in report["top_confusions"]))
    if "binary" in result:
        shown.append(binary_line(result["binary"]))
    return shown


def per_class_table(report: dict):
    """Precision, recall, F1 and support per class, then the macro and weighted averages."""
    from tftrain.console import Table

    table = Table(title=f"per class (accuracy {report['accuracy']:.4f})", title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")

    def row(name, values):
        table.add_row(name, *(f"{values[c]:.4f}" for c in ("precision", "recall", "f1")), str(values["support"]))

    for values in report["per_class"]:
        row(values["class"], values)
    table.add_section()
    row("macro avg", report["macro_avg"])
    row("weighted avg", report["weighted_avg"])
    return table


def confusion_table(matrix: dict, normalized: bool):
    """The confusion matrix: a row per true class, a column per prediction."""
    from tftrain.console import Table

    title = "confusion matrix, share of each true class" if normalized else "confusion matrix"
    table = Table(title=title, title_justify="left", min_width=len(title))  # a title never wraps
    table.add_column("true \\ predicted")
    for name in matrix["labels"]:
        table.add_column(name, justify="right")
    cells = matrix["normalized"] if normalized else matrix["counts"]
    for name, row in zip(matrix["labels"], cells):
        table.add_row(name, *((f"{v:.1%}" if normalized else str(v)) for v in row))
    return table
