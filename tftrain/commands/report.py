"""`tftrain report RUN... [--output FILE.html]`: one self-contained HTML page to look at (and for
a CI job to upload): per run a summary (what was trained, on what, how long, the result; all of
summary.json folded under it), its layers, curves (metrics, with one legend under the panels, and
the learning rate), evaluation table, confusion matrix, the other evaluation plots and its config; for several runs first their comparison (config differences, metrics
side by side, curves overlaid).

Images are inlined as data: URIs and the styles sit in the page, so the file opens anywhere, alone.
Only run files are read (summary.json, config.yaml, history.csv, eval.json, plots/): no TensorFlow.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from tftrain import __version__
from tftrain.commands.evaluation_report import binary_line, confusion_line
from tftrain.commands.plot import learning_rate_figure, overlay_figure
from tftrain.commands.runs import cell_text, compare_runs, duration
from tftrain.errors import UserError
from tftrain.labels import flatten
from tftrain.runs import CONFIG, EVAL, REPORT, RunDir, atomic_write, check_output
from tftrain.runs.plots import png_bytes, read_curves

# Summary keys shown as times, and keys left out: the process id says nothing after the run,
# and the class names head the evaluation tables instead.
_TIMES = {"started", "finished", "evaluated"}
_HIDDEN = {"pid", "data.class_names", "layers"}
# What eval.json's `plots` hold, in the order and with the headings the page shows them.
_EVALUATION_PLOTS = {"roc": "ROC curve", "precision_recall": "Precision-recall curve",
                     "predicted_vs_true": "Predicted vs true", "residuals": "Residuals"}
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1180px; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .85rem; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; margin: .4rem 0; }
.muted { color: #656d76; } .status-completed { color: #1a7f37; } .status-failed, .status-diverged { color: #cf222e; }
nav a { margin-right: 1rem; } .gallery { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; align-items: start; }
.columns table { width: 100%; } .columns td:first-child { white-space: nowrap; }
.columns td:last-child { overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #656d76; }
table.overview th { text-align: left; background: #f6f8fa; white-space: nowrap; vertical-align: top; }
table.overview td { text-align: left; }
"""


def write_report(run_dirs: list[str | Path], output: str | Path | None = None, force: bool = False) -> Path:
    """Write the report of `run_dirs` (default: RUN/report.html for one run, ./report.html for
    several); an existing file is replaced only with `force`."""
    if not run_dirs:
        raise UserError("report: give at least one run directory")
    runs = [RunDir.open(path) for path in run_dirs]
    target = Path(output) if output is not None else (runs[0].file(REPORT) if len(runs) == 1 else Path(REPORT))
    if target.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--output: expected an .html file name, got {str(target)!r}")
    if output is None or target.resolve() == runs[0].file(REPORT).resolve():
        if target.exists() and not force:  # the run's own report, made again
            raise UserError(f"{target}: already exists; pass --force to replace it, or choose another --output")
    else:
        check_output(target, force)  # never over another of a run's files, nor an existing file without --force
    atomic_write(target, render(runs))
    return target


def render(runs: list[RunDir]) -> str:
    """The whole page."""
    names = [run.path.name for run in runs]
    title = f"tftrain report: {names[0]}" if len(runs) == 1 else f"tftrain report: {len(runs)} runs"
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="muted">made {_e(_time(time.time()))} by tftrain {_e(__version__)}</p>', _nav(runs)]
    if len(runs) > 1:
        body.append(_comparison(runs))
    body += [_run_section(run, i) for i, run in enumerate(runs)]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_e(title)}</title>\n"
            f"<style>{_STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _nav(runs: list[RunDir]) -> str:
    links = ['<a href="#comparison">comparison</a>'] if len(runs) > 1 else []
    links += [f'<a href="#run-{i}">{_e(run.path.name)}</a>' for i, run in enumerate(runs)]
    return f"<nav>{''.join(links)}</nav>"


def _comparison(runs: list[RunDir]) -> str:
    """Config differences, metrics side by side, and every run's curves in one figure."""
    result = compare_runs([run.path for run in runs])
    header = ["", *result["runs"]]
    config = [[key, *map(cell_text, values)] for key, values in result["config"].items()]
    metrics = [[key, *map(cell_text, values)] for key, values in result["metrics"].items()]
    parts = ['<section id="comparison">', "<h2>Comparison</h2>", "<h3>Config differences</h3>",
             _table(header, config) if config else '<p class="muted">none: the configs are identical</p>',
             "<h3>Metrics</h3>", _table(header, metrics), "<h3>Curves</h3>"]
    parts.append(_curves([run for run in runs if run.history()], f"{len(runs)} runs"))
    return "\n".join(parts + ["</section>"])


def _run_section(run: RunDir, index: int) -> str:
    summary = run.summary()
    status = run.status()
    evaluation = _read_eval(run)
    parts = [f'<section id="run-{index}" class="run">', f"<h2>{_e(run.path.name)}</h2>",
             f'<p>status <b class="status-{_e(status)}">{_e(status)}</b> · '
             f'<span class="muted">{_e(run.path)}</span></p>',
             f'<section id="run-{index}-summary" class="summary"><h3>Summary</h3>{_overview(run, summary, evaluation)}'
             f"<details><summary>all of summary.json</summary>{_summary_table(summary)}</details></section>",
             f'<section id="run-{index}-layers" class="layers"><h3>Layers</h3>{_layers(summary)}</section>',
             f'<section id="run-{index}-curves" class="curves"><h3>Curves</h3>'
             f"{_curves([run] if run.history() else [], run.path.name)}</section>",
             f'<section id="run-{index}-evaluation" class="evaluation"><h3>Evaluation</h3>'
             f"{_evaluation(run, evaluation)}</section>"]
    if evaluation and "classification" in evaluation:
        parts.append(f'<section id="run-{index}-confusion-matrix" class="confusion-matrix"><h3>Confusion matrix</h3>'
                     f"{_confusion(run, evaluation)}</section>")
    plots = [_figure(run, evaluation["plots"].get(key), heading) for key, heading in _EVALUATION_PLOTS.items()
             if evaluation and key in evaluation.get("plots", {})]
    if plots:
        parts.append(f'<section id="run-{index}-plots" class="evaluation-plots"><h3>Evaluation plots</h3>'
                     f'<div class="gallery">{"".join(plots)}</div></section>')
    if evaluation and "plot" in evaluation.get("mistakes", {}):
        mistakes = evaluation["mistakes"]
        parts.append(f'<section id="run-{index}-mistakes" class="mistakes"><h3>Mistakes</h3>'
                     f"<p>the {mistakes['shown']} most confident of {mistakes['misclassified']} misclassified "
                     f"examples</p>{_figure(run, mistakes['plot'], '')}</section>")
    parts.append(f'<section id="run-{index}-config" class="config"><h3>Config</h3>'
                 f"<pre>{_e(run.file(CONFIG).read_text(encoding='utf-8'))}</pre></section>")
    return "\n".join(parts + ["</section>"])


def _read_eval(run: RunDir) -> dict | None:
    try:
        return json.loads(run.file(EVAL).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _summary_table(summary: dict) -> str:
    if not summary:
        return '<p class="muted">no summary.json yet</p>'
    rows = []
    for key, value in flatten(summary).items():
        if key in _HIDDEN:
            continue
        if key in _TIMES and isinstance(value, (int, float)):
            value = _time(value)
        elif key == "seconds" and isinstance(value, (int, float)):
            value = f"{duration(value)} ({value:.1f} s)"
        rows.append([key, cell_text(value)])
    half = (len(rows) + 1) // 2  # two tables side by side: the summary is long and narrow
    return f'<div class="columns">{_table(["key", "value"], rows[:half])}{_table(["key", "value"], rows[half:])}</div>'



def _curves(runs: list[RunDir], label: str) -> str:
    """The metrics' curves (one legend under the panels), then the learning rate's."""
    if not runs:
        return '<p class="muted">no history.csv rows yet</p>'
    curves = [read_curves(run) for run in runs]
    parts = [_image(png_bytes(overlay_figure(curves, legend_below=True)), f"curves of {label}")]
    rate = learning_rate_figure(curves)
    if rate is not None:
        parts.append(f"<h4>Learning rate</h4>{_image(png_bytes(rate), f'learning rate of {label}')}")
    return "\n".join(parts)


def _overview(run: RunDir, summary: dict, evaluation: dict | None) -> str:
    """What was trained, on what, how, how long, and the result, in a few lines."""
    if not summary:
        return '<p class="muted">no summary.json yet</p>'
    config = run.config()
    rows = [["model", _model_line(config, summary)], ["data", _data_line(config, summary)],
            ["training", _training_line(config)], ["time", _time_line(summary)],
            ["result", _result_line(summary)]]
    if evaluation is not None:
        metrics = ", ".join(f"{k} {cell_text(v)}" for k, v in evaluation.get("metrics", {}).items())
        rows.append(["evaluation", f"{metrics} on {evaluation.get('split', '?')} "
                                   f"({evaluation.get('examples', '?')} examples, {evaluation.get('model', '?')})"])
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v)
    return f'<table class="overview"><tbody>{body}</tbody></table>'


def _model_line(config, summary: dict) -> str:
    model = config.model
    kind = {"application": f"application {getattr(model, 'name', '')}", "dense": f"dense {getattr(model, 'hidden', '')}",
            "cnn": f"cnn conv {getattr(model, 'conv', '')}"}.get(model.type, model.type)
    params = summary.get("params")
    return f"{kind}, {params:,} parameters" if isinstance(params, int) else kind


def _data_line(config, summary: dict) -> str:
    data = summary.get("data") if isinstance(summary.get("data"), dict) else {}
    parts = [config.data.dataset]
    if isinstance(data.get("train_examples"), int):
        parts.append(f"{data['train_examples']:,} training examples")
    if data.get("validation"):
        parts.append(f"validated on {data['validation']}")
    names = data.get("class_names")
    if isinstance(data.get("num_classes"), int):
        shown = f" ({', '.join(map(str, names[:6]))}{', ...' if len(names) > 6 else ''})" if names else ""
        parts.append(f"{data['num_classes']} classes{shown}")
    return ", ".join(parts)


def _training_line(config) -> str:
    rate = config.optimizer.learning_rate
    rate_text = rate.schedule if hasattr(rate, "schedule") else cell_text(rate)
    length = f"{config.training.steps} steps" if config.training.steps else f"{config.training.epochs} epochs"
    loss = config.loss.canonical if not isinstance(config.loss, dict) else ", ".join(  # several outputs: each one's
        f"{name}: {one.canonical}" for name, one in config.loss.items())
    return (f"{loss}, {config.optimizer.name} (learning rate {rate_text}), batch "
            f"{config.data.batch_size}, {length}, {config.training.loop} loop")


def _time_line(summary: dict) -> str:
    parts = []
    if isinstance(summary.get("seconds"), (int, float)):
        parts.append(duration(summary["seconds"]))
    if isinstance(summary.get("epochs_done"), int):
        parts.append(f"{summary['epochs_done']} epochs, {summary.get('steps_done', '?')} steps")
    if isinstance(summary.get("examples_per_second"), (int, float)):
        parts.append(f"{summary['examples_per_second']:,.0f} examples/s")
    if isinstance(summary.get("started"), (int, float)):
        parts.append(f"started {_time(summary['started'])}")
    return ", ".join(parts)


def _result_line(summary: dict) -> str:
    parts = [summary.get("status", "?")]
    best = summary.get("best") if isinstance(summary.get("best"), dict) else {}
    if best.get("value") is not None:
        parts.append(f"best {best['monitor']} {cell_text(best['value'])} at epoch {best.get('epoch')}")
    final = summary.get("final") if isinstance(summary.get("final"), dict) else {}
    shown = {k: v for k, v in final.items() if k != "lr"}
    if shown:
        parts.append("final " + ", ".join(f"{k} {cell_text(v)}" for k, v in shown.items()))
    return "; ".join(parts)


def _layers(summary: dict) -> str:
    """The model's layers as the run recorded them (older runs did not)."""
    layers = summary.get("layers")
    if not isinstance(layers, list) or not layers:
        return '<p class="muted">not recorded by this run (tftrain show CONFIG lists the configured layers)</p>'
    rows = [[str(layer.get("name")), str(layer.get("type")),
             "(" + ", ".join("None" if d is None else str(d) for d in layer.get("output_shape") or []) + ")",
             f"{layer.get('params', 0):,}"] for layer in layers]
    total = sum(layer.get("params", 0) for layer in layers)
    return _table(["layer", "type", "output shape", "params"], rows + [["total", "", "", f"{total:,}"]])


def _evaluation(run: RunDir, evaluation: dict | None) -> str:
    if evaluation is None:
        return f'<p class="muted">not evaluated yet: tftrain evaluate {_e(run.path)}</p>'
    when = _time(evaluation["evaluated"]) if isinstance(evaluation.get("evaluated"), (int, float)) else "?"
    parts = [f"<p>{_e(evaluation.get('model', '?'))} on {_e(evaluation.get('split', '?'))} "
             f"({_e(evaluation.get('examples', '?'))} examples), evaluated {_e(when)}</p>",
             _table(["metric", "value"], [[k, cell_text(v)] for k, v in evaluation.get("metrics", {}).items()])]
    if "regression" in evaluation:
        stats = evaluation["regression"]
        parts.append(_table(["regression", "value"], [["MAE", cell_text(stats["mae"])], ["RMSE", cell_text(stats["rmse"])],
                                                      ["R²", cell_text(stats["r2"])]]))
    if "classification" in evaluation:
        report = evaluation["classification"]
        rows = [[r["class"], *(cell_text(r[c]) for c in ("precision", "recall", "f1")), str(r["support"])]
                for r in report["per_class"]]
        rows += [[name, *(cell_text(report[key][c]) for c in ("precision", "recall", "f1")), str(report[key]["support"])]
                 for name, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg"))]
        parts += [f"<p>accuracy {report['accuracy']:.4f}</p>",
                  _table(["class", "precision", "recall", "f1", "support"], rows)]
    if "binary" in evaluation:
        parts.append(f"<p>{_e(binary_line(evaluation['binary']))}</p>")
    return "\n".join(parts)


def _confusion(run: RunDir, evaluation: dict) -> str:
    """The matrix as a table (counts, shaded by the share of the true class), the top confusions
    and the PNG that `tftrain evaluate` drew."""
    report = evaluation["classification"]
    matrix = report["confusion_matrix"]
    rows = []
    for name, counts, shares in zip(matrix["labels"], matrix["counts"], matrix["normalized"]):
        cells = "".join(f'<td style="background: rgba(9, 105, 218, {0.85 * share:.3f})" '
                        f'title="{share:.1%} of {_e(name)}">{count}</td>' for count, share in zip(counts, shares))
        rows.append(f"<tr><th>{_e(name)}</th>{cells}</tr>")
    head = "".join(f"<th>{_e(label)}</th>" for label in matrix["labels"])
    table = (f'<table class="confusion"><thead><tr><th>true \\ predicted</th>{head}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    confusions = "".join(f"<li>{_e(confusion_line(c))}</li>" for c in report["top_confusions"])
    parts = [table, f"<p>top confusions</p><ul>{confusions}</ul>" if confusions else ""]
    drawn = evaluation.get("plots", {}).get("confusion_matrix")
    parts.append(f"<details><summary>as drawn in {_e(drawn)}</summary>{_figure(run, drawn, '')}</details>")
    return "\n".join(parts)


def _figure(run: RunDir, name: str | None, heading: str) -> str:
    """A plot of the run inlined, under its heading; a note where the file is gone."""
    title = f"<h4>{_e(heading)}</h4>" if heading else ""
    if name is None or not run.file(name).is_file():
        return f'{title}<p class="muted">{_e(name or "plot")} is missing: run tftrain evaluate again</p>'
    return f"<figure>{title}{_image(run.file(name).read_bytes(), heading or name)}</figure>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
