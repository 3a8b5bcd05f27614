"""Look at `tftrain report` as a reader does (issue 32, item 6): render the page in headless
Chromium and save a full-page screenshot, to check by eye that the summary reads like a summary,
the layer table and the curves (legends under the panels, the learning rate) fit the page.

    python bench/report_screenshot.py RUN_DIR [RUN_DIR...] [--output report.png] [--width 1280]

Needs a Chromium (`apt install chromium`); not part of the test suite, which reads the page's
HTML instead (tests/commands/test_report.py, tests/commands/test_report_overview.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def browser() -> str:
    """The first Chromium on PATH; exits with what to install when there is none."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    sys.exit(f"no Chromium found ({', '.join(BROWSERS)}): apt install chromium")


def page_height(html: Path) -> int:
    """A generous height for a full-page shot: headless Chromium shoots the window, not the page."""
    text = html.read_text(encoding="utf-8")
    return min(30000, 900 + 700 * text.count("<img") + 28 * text.count("<tr"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("report.png"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tftrain-report-") as tmp:
        html = Path(tmp) / "report.html"
        subprocess.run([sys.executable, "-m", "tftrain", "report", *map(str, args.runs), "--output", str(html)],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={args.width},{page_height(html)}",
                        f"--screenshot={args.output.resolve()}", html.as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    print(args.output)


if __name__ == "__main__":
    main()
