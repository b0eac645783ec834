"""`paircurate report --compare RUN_A RUN_B`, opened in headless Chromium at two widths.

Run A is the session's first run; run B the same run decided again with a
CLIP threshold, over its committed raw shards. The page must load from disk
with no error and no request, draw every chart inside its section without
overlap or page-wide scrolling, and list exactly the changes the two ledgers
hold, row by row.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import read_ledger, run_job_on
from test_report import BOXES_JS, MARKS_JS, browser, inside, overlap  # noqa: F401 - a fixture

from paircurate.pipeline import cli
from paircurate.report.compare_page import SECTIONS

CHANGES_JS = """
return Array.from(document.querySelectorAll('#changes-table tr[data-change]')).map(tr =>
  [tr.dataset.change, Number(tr.querySelector('[data-count]').dataset.count)]);
"""


@pytest.fixture(scope="module")
def compared(first_run, manifest, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(run A, run B, the page)."""
    folder = tmp_path_factory.mktemp("compare")
    a, b = folder / "a", folder / "b"
    shutil.copytree(first_run[0], a)
    shutil.copytree(first_run[0], b)
    run_job_on(manifest, b, "--clip-threshold", "0.7")
    assert cli.main(["report", "--compare", str(a), str(b)]) == 0
    return a, b, b / "compare.html"


def expected_changes(a: Path, b: Path) -> dict[str, int]:
    before = {row["uid"]: (row["status"], row["reason"]) for row in read_ledger(a)}
    moved = Counter()
    for row in read_ledger(b):
        after = (row["status"], row["reason"])
        if before[row["uid"]] != after:
            moved["-".join(part or "kept" for part in (*before[row["uid"]], *after))] += 1
    return dict(moved)


@pytest.mark.slow
@pytest.mark.parametrize("width", (1000, 1920))
def test_the_comparison_page_in_chromium(browser, compared, width):  # noqa: F811 - the fixture
    a, b, page = compared
    browser.set_window_size(width, 900)
    browser.get(page.as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    fetched = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert fetched == 0  # everything is inline
    sections = browser.execute_script(
        "return Array.from(document.querySelectorAll('main > section')).map(s => s.id)"
    )
    assert sections == [section for section, _ in SECTIONS]
    for name, empty, marks in browser.execute_script(MARKS_JS):
        assert not empty and marks > 0, f"chart {name} drew nothing"
    charts = browser.execute_script(BOXES_JS)
    assert len(charts) == 4
    for name, drawn, plot, section, cell in charts:
        assert inside(drawn, cell), f"chart {name} at {width} px spills out of its box"
        assert inside(drawn, section), f"chart {name} at {width} px is drawn outside its section"
        assert inside(plot, section), f"chart {name} at {width} px: plot area outside its section"
        assert plot[2] - plot[0] > 100 and plot[3] - plot[1] > 100, f"chart {name}: no plot area"
    for index, (name, drawn, *_) in enumerate(charts):
        for other, other_drawn, *_ in charts[index + 1 :]:
            assert not overlap(drawn, other_drawn), f"{name} and {other} overlap at {width} px"
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert dict(browser.execute_script(CHANGES_JS)) == expected_changes(a, b)
    thumbnails = browser.execute_script(
        "return document.querySelectorAll('#changes img[src^=\"data:image/\"]').length"
    )
    assert thumbnails > 0


def test_compare_needs_two_runs(tmp_path, capsys):
    assert cli.main(["report", "--compare", str(tmp_path), str(tmp_path)]) == 2
    assert "has no ledger" in capsys.readouterr().err
