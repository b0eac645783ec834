"""docs/ holds the tables the code generates; the README links it and names CI's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paircurate.pipeline.docs import PAGES, TABLES

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run python -m paircurate.pipeline.docs --write"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_docs_table_matches_the_code(name):
    page = (ROOT / PAGES[name]).read_text()
    found = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", page, re.S)
    assert found, f"{PAGES[name]} has no {name} table; {REGENERATE}"
    assert found.group(1) == TABLES[name](), REGENERATE


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert pages, "docs/ has no pages"
    assert [p for p in pages if f"]({p})" not in readme] == []
