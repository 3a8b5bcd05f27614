"""Issue 32, item 6: the HTML report reads like a report: a curated summary (what was trained, on
what, how long, the result) above the folded summary.json, the layer table the run recorded,
curves with one legend under the panels, the learning rate, the evaluation."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.commands.test_report import _page


@pytest.fixture
def fashion(tiny_runs, tmp_path, cli):
    run = shutil.copytree(tiny_runs["fashion"], tmp_path / tiny_runs["fashion"].name)
    assert cli("evaluate", run).exit_code == 0
    return run


def test_the_summary_says_what_was_trained_on_what_how_long_and_the_result(cli, fashion):
    assert cli("report", fashion).exit_code == 0
    page = _page(fashion / "report.html")
    text = " ".join(page.text["run-0-summary"].split())
    summary = json.loads((fashion / "summary.json").read_text())
    best = summary["best"]
    assert f"dense [16], {summary['params']:,} parameters" in text
    assert "fashion_mnist, 300 training examples, validated on test, 10 classes (T-shirt/top, Trouser," in text
    assert "sparse_categorical_crossentropy, adam (learning rate 0.01), batch 32, 3 epochs, fit loop" in text
    assert f"completed; best val_loss {best['value']:.6g} at epoch {best['epoch']}" in text
    assert "on test (100 examples, checkpoints/best.keras)" in text and "accuracy " in text
    assert "all of summary.json" in text  # the full dump is still there, folded


def test_the_layer_table_and_the_learning_rate_curve(cli, fashion):
    assert cli("report", fashion).exit_code == 0
    page = _page(fashion / "report.html")
    layers = json.loads((fashion / "summary.json").read_text())["layers"]
    assert [layer["type"] for layer in layers][-1] == "Dense"
    text = page.text["run-0-layers"]
    for layer in layers:
        assert layer["name"] in text and f"{layer['params']:,}" in text
    assert "(None, 10)" in text and f"total{sum(layer['params'] for layer in layers):,}" in text.replace("\n", "")
    alts = [image["alt"] for image in page.images]
    assert f"learning rate of {fashion.name}" in alts and f"curves of {fashion.name}" in alts


def test_overlay_legends_sit_under_the_panels():
    """With legend_below, no panel has a legend of its own (long run labels squeeze no curve); the
    figure's single legend names every run's train and validation lines."""
    from tftrain.commands.plot import Curves, overlay_figure

    runs = [Curves(f"a-very-long-run-label-number-{i}", "epoch", [1.0, 2.0],
                   {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]},
                   {}, {}) for i in range(3)]
    figure = overlay_figure(runs, legend_below=True)
    assert all(ax.get_legend() is None for ax in figure.axes)
    (legend,) = figure.legends
    assert len(legend.get_texts()) == 6
    beside = overlay_figure(runs)
    assert all(ax.get_legend() is not None for ax in beside.axes)
