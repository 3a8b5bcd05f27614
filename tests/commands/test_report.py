"""`tftrain report`: one self-contained HTML page per run or comparison, read back here with
Python's html.parser (issue 20)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import REPO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a test needs of a report: section ids and their text, images, links, the confusion table."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []  # ids, in order
        self.text: dict[str, str] = defaultdict(str)
        self.images: list[dict[str, str]] = []
        self.references: list[str] = []  # every src and href
        self.confusion: list[list[str]] = []
        self._open: list[str | None] = []
        self._confusion_depth = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.references += [attrs[key] for key in ("src", "href") if key in attrs]
        if tag == "section":
            self._open.append(attrs.get("id"))
            self.sections.append(attrs.get("id"))
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "table" and attrs.get("class") == "confusion":
            self._confusion_depth = 1
        elif tag == "tr" and self._confusion_depth:
            self.confusion.append([])

    def handle_endtag(self, tag):
        if tag == "section":
            self._open.pop()
        elif tag == "table":
            self._confusion_depth = 0

    def handle_data(self, data):
        for section in self._open:
            self.text[section] += data
        if self._confusion_depth and self.confusion and data.strip():
            self.confusion[-1].append(data.strip())


def _page(path: Path) -> Page:
    page = Page(path.read_text(encoding="utf-8"))
    for image in page.images:  # every image inlined as a PNG, nothing fetched from elsewhere
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1])[:8] == PNG_MAGIC
        assert image.get("alt")
    assert all(ref.startswith(("data:", "#")) for ref in page.references), page.references
    return page


@pytest.fixture(scope="module")
def evaluated(tiny_runs, tmp_path_factory):
    """Copies of the tiny runs, evaluated (the classifier with --mistakes); regression copied but
    left unevaluated."""
    from typer.testing import CliRunner

    from tftrain.cli import app

    root = tmp_path_factory.mktemp("evaluated")
    runs = {key: Path(shutil.copytree(path, root / path.name)) for key, path in tiny_runs.items()}
    for key, extra in (("fashion", ["--mistakes", "4"]), ("binary", [])):
        result = CliRunner().invoke(app, ["evaluate", str(runs[key]), *extra])
        assert result.exit_code == 0, result.output
    return runs


def test_report_of_one_run_holds_every_section_inlined(cli, evaluated):
    run = evaluated["fashion"]
    result = cli("report", run)
    assert result.exit_code == 0, result.output
    target = run / "report.html"
    assert result.stdout.strip() == str(target)
    page = _page(target)
    assert page.sections == ["run-0", "run-0-summary", "run-0-layers", "run-0-curves", "run-0-evaluation",
                             "run-0-confusion-matrix", "run-0-mistakes", "run-0-config"]
    assert len(page.images) == 4  # curves, learning rate, confusion matrix, mistakes
    evaluation = json.loads((run / "eval.json").read_text())
    assert (run / "config.yaml").read_text() in page.text["run-0-config"]
    summary = page.text["run-0-summary"]
    assert "completed" in summary and "data.train.x_shape" in summary and "[300, 28, 28]" in summary
    text = page.text["run-0-evaluation"]
    assert f"accuracy {evaluation['classification']['accuracy']:.4f}" in text
    assert "Ankle boot" in text and "macro avg" in text and "weighted avg" in text
    # The confusion table holds eval.json's counts, a row per true class.
    matrix = evaluation["classification"]["confusion_matrix"]
    header, *rows = page.confusion
    assert header == ["true \\ predicted", *matrix["labels"]]
    assert [row[0] for row in rows] == matrix["labels"]
    assert [[int(v) for v in row[1:]] for row in rows] == matrix["counts"]
    assert "top confusions" in page.text["run-0-confusion-matrix"]
    assert f"of {evaluation['mistakes']['misclassified']} misclassified" in page.text["run-0-mistakes"]


def test_report_of_several_runs_compares_them_and_shows_each(cli, evaluated, tmp_path):
    runs = [evaluated["fashion"], evaluated["binary"], evaluated["regression"]]
    target = tmp_path / "ci" / "report.html"
    target.parent.mkdir()
    result = cli("report", *runs, "--output", target)
    assert result.exit_code == 0, result.output
    page = _page(target)
    assert page.sections[0] == "comparison"
    for i in range(3):
        assert {f"run-{i}", f"run-{i}-summary", f"run-{i}-curves", f"run-{i}-evaluation",
                f"run-{i}-config"} <= set(page.sections)
    comparison = page.text["comparison"]
    assert "Config differences" in comparison and "data.dataset" in comparison and "synthetic_binary" in comparison
    assert "final loss" in comparison and all(run.name in comparison for run in runs)
    assert "run-1-plots" in page.sections and "ROC AUC" in page.text["run-1-evaluation"]
    assert "run-1-confusion-matrix" in page.sections and "run-2-confusion-matrix" not in page.sections
    assert "not evaluated yet: tftrain evaluate" in page.text["run-2-evaluation"]
    # curves and learning rate: for the comparison and per run; confusion matrices of the two
    # classifiers; the mistakes; ROC and precision-recall of the binary run.
    assert len(page.images) == 2 * (1 + 3) + 2 + 1 + 2


def test_report_refuses_to_overwrite_and_other_bad_input(cli, evaluated, tmp_path):
    run = evaluated["binary"]
    target = tmp_path / "r.html"
    target.write_text("mine")
    result = cli("report", run, "--output", target)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --output {target}: already exists; pass --force to overwrite it"
    assert target.read_text() == "mine"
    assert cli("report", run, "--output", target, "--force").exit_code == 0
    _page(target)
    result = cli("report", run, "--output", tmp_path / "r.pdf")
    assert result.exit_code == 2 and "expected an .html file name" in result.stderr
    result = cli("report", tmp_path)
    assert result.exit_code == 2 and "not a tftrain run directory" in result.stderr


def test_report_needs_no_tensorflow(evaluated, tmp_path):
    code = ("import sys\nfrom tftrain.cli import app\ntry:\n    app(sys.argv[1:], prog_name='tftrain')\n"
            "except SystemExit as exit:\n    print('EXIT', exit.code)\n"
            "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'NO-TF')")
    result = subprocess.run([sys.executable, "-c", code, "report", str(evaluated["fashion"]), "--output",
                             str(tmp_path / "r.html")], capture_output=True, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert "EXIT 0" in result.stdout and "NO-TF" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "r.html").is_file()
