"""The README's reference tables are the ones the code generates, and its test command is CI's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paircurate.pipeline.docs import TABLES

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run python -m paircurate.pipeline.docs --write README.md"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_readme_table_matches_the_code(name):
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", readme, re.S)
    assert found, f"README has no {name} table; {REGENERATE}"
    assert found.group(1) == TABLES[name](), REGENERATE


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
