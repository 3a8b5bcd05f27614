"""The documentation: README keeps what a newcomer needs, the reference is a MkDocs site in docs/
whose strict build (every link and anchor resolved) runs here, so CI checks it (issue 32)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests.conftest import REPO


def _build(root, site) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=180)


def test_the_docs_site_builds_strictly(tmp_path):
    done = _build(REPO, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "configs" / "index.html").is_file()


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    """The strict build is a real check: a link to a page that does not exist, or to an anchor
    a page does not have, fails it."""
    for broken in ("[see](nowhere.md)", "[see](configs.md#no-such-section)"):
        root = tmp_path / broken[-12:].replace("#", "_").replace(".", "_").replace(")", "")
        shutil.copytree(REPO / "docs", root / "docs")
        shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
        with (root / "docs" / "index.md").open("a") as f:
            f.write(f"\n{broken}\n")
        done = _build(root, root / "site")
        assert done.returncode != 0, broken


def test_the_readme_is_short_links_every_page_and_keeps_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert "pip install -e '.[dev]' && .venv/bin/tftrain run configs/linear_regression.yaml" in readme
    assert ".venv/bin/python -m pytest" in readme
    nav = re.findall(r"^  - [^:]+: (\S+\.md)$", (REPO / "mkdocs.yml").read_text(), flags=re.M)
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert sorted(nav) == pages
    for page in pages:
        assert page == "index.md" or f"(docs/{page})" in readme, page
