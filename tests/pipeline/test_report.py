"""The quality report end to end: written by the CLI, opened in headless Chromium.

The browser checks are what a reader sees: the page loads from disk with no
console errors and no network, every section is there, every chart has drawn
marks, and the funnel's numbers are the ledger's counts. A screenshot of the
demo's report is kept in out/test-artifacts/ (git-ignored) for CI to archive.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import job_args, read_ledger

from paircurate.pipeline import cli
from paircurate.pipeline.output.write_report import REPORT_NAME
from paircurate.report.page import SECTIONS
from paircurate.schemas.records import ledger_schema, rows_to_table

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "out" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = (
    "apt-get install -y --no-install-recommends chromium chromium-driver "
    "(`make test` does it where they are missing)"
)
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1440,900",
)  # fmt: skip
DEMO_PAIRS = 300
# Marks plotly draws for data: bars and funnel segments, line and marker paths, heatmap images.
MARKS_JS = """
return Array.from(document.querySelectorAll('.chart')).map(chart => [
  chart.dataset.chart,
  chart.classList.contains('empty'),
  chart.querySelectorAll('g.trace g.point path, g.trace path.js-line, g.hm image').length,
]);
"""
# Per chart: its name, the box plotly drew (its SVG), its plot area, its section's box and
# its own box (the page's cell for it).
BOXES_JS = """
const box = el => {
  const r = el.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom];
};
return Array.from(document.querySelectorAll('.chart:not(.empty)')).map(chart => [
  chart.dataset.chart,
  box(chart.querySelector('svg.main-svg')),
  box(chart.querySelector('g.draglayer .nsewdrag')),
  box(chart.closest('section')),
  box(chart),
]);
"""
LAYOUT_WIDTHS = (1000, 1400, 1920)
# A window short enough that the page scrolls from its first chart on, and the 1,200 px one in
# which a scroll bar that came after the charts were drawn made them spill out of their boxes.
WINDOW_HEIGHTS = (700, 1200)
# Narrow every chart's box, and call back once each chart has been laid out again (plotly's
# relayout event), so that the check needs no waiting of its own; a chart that does not follow
# its box never calls back, and the script times out.
NARROW_JS = """
const done = arguments[arguments.length - 1];
const plots = Array.from(document.querySelectorAll('.chart:not(.empty) .js-plotly-plot'));
const laidOut = new Set();
plots.forEach(plot => plot.once('plotly_relayout', () => {
  laidOut.add(plot);
  if (laidOut.size === plots.length) done(laidOut.size);
}));
document.querySelector('main').style.maxWidth = arguments[0] + 'px';
"""
FUNNEL_JS = """
const counts = {};
const count = row => Number(row.querySelector('[data-count]').dataset.count);
document.querySelectorAll('#funnel-table tr[data-reason]').forEach(tr => {
  counts['reason:' + tr.dataset.reason] = count(tr);
});
document.querySelectorAll('#funnel-table tr[data-status-total]').forEach(tr => {
  counts['status:' + tr.dataset.statusTotal] = count(tr);
});
counts.rows = count(document.querySelector('#funnel-table tr[data-row=rows]'));
return counts;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium through its Debian driver; Selenium Manager never reaches the network."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: .venv/bin/pip install -e '.[dev]' (make test does it)")

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install them with {INSTALL}")
    profile = tempfile.mkdtemp(prefix="paircurate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_report(browser, path: Path) -> dict:
    """Load the page from disk; what it logged, its sections and charts, and what it fetched."""
    browser.get(path.as_uri())
    browser.execute_script("return document.readyState")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    return {
        "errors": errors,
        "sections": browser.execute_script(
            "return Array.from(document.querySelectorAll('main > section')).map(s => s.id)"
        ),
        "charts": browser.execute_script(MARKS_JS),
        "fetched": browser.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
        ),
    }


def ledger_counts(output: Path) -> dict:
    rows = read_ledger(output)
    counts = {f"reason:{code}": n for code, n in Counter(r["reason"] for r in rows).items() if code}
    statuses = Counter(r["status"] for r in rows)
    counts.update({f"status:{s}": statuses.get(s, 0) for s in ("kept", "dropped", "failed")})
    counts["rows"] = len(rows)
    return counts


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> Path:
    """One demo through the CLI: the job, then its report, as a user runs it."""
    output = tmp_path_factory.mktemp("report-demo") / "demo"
    assert cli.main(["demo", "--output", str(output), "--pairs", str(DEMO_PAIRS)]) == 0
    return output


@pytest.mark.slow
def test_demo_writes_its_report(demo_output):
    page = (demo_output / REPORT_NAME).read_text()
    assert page.startswith("<!doctype html>")
    assert str(demo_output) in page


@pytest.mark.slow
def test_demo_report_in_chromium(browser, demo_output, capsys):
    seen = open_report(browser, demo_output / REPORT_NAME)
    assert seen["errors"] == []
    assert seen["fetched"] == []  # everything is inline: no request at all
    assert seen["sections"] == [section for section, _ in SECTIONS]
    for name, empty, marks in seen["charts"]:
        assert not empty and marks > 0, f"chart {name} drew nothing"
    assert browser.execute_script(FUNNEL_JS) == ledger_counts(demo_output)
    thumbnails = browser.execute_script(
        "return document.querySelectorAll('#samples img[src^=\"data:image/\"]').length"
    )
    assert thumbnails > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1440, min(height, 12000))
    shot = ARTIFACTS / "report-demo.png"
    assert browser.save_screenshot(str(shot))
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")


def overlap(a: list[float], b: list[float]) -> bool:
    """Whether two (left, top, right, bottom) boxes share more than a pixel's edge."""
    return min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1


def inside(inner: list[float], outer: list[float]) -> bool:
    return all(inner[i] >= outer[i] - 1 for i in (0, 1)) and all(
        inner[i] <= outer[i] + 1 for i in (2, 3)
    )


def assert_charts_fit(charts: list, where: str) -> None:
    """Every chart is drawn inside its own box and its section, with a plot area to see."""
    assert {name for name, *_ in charts} >= {"clip", "clip-language", "funnel", "reasons"}
    for name, drawn, plot, section, cell in charts:
        assert inside(drawn, cell), f"chart {name} {where} spills out of its box: {drawn} {cell}"
        assert inside(drawn, section), f"chart {name} {where} is drawn outside its section"
        assert inside(plot, section), f"chart {name} {where}: plot area outside its section"
        assert plot[2] - plot[0] > 100 and plot[3] - plot[1] > 100, f"chart {name}: no plot area"


@pytest.mark.slow
@pytest.mark.parametrize("height", WINDOW_HEIGHTS)
@pytest.mark.parametrize("width", LAYOUT_WIDTHS)
def test_demo_report_charts_can_be_seen_at_common_widths(browser, demo_output, width, height):
    browser.set_window_size(width, height)
    browser.get((demo_output / REPORT_NAME).as_uri())
    browser.execute_script("return document.readyState")
    charts = browser.execute_script(BOXES_JS)
    assert browser.execute_script(
        "return document.documentElement.scrollHeight > document.documentElement.clientHeight"
    )  # the page scrolls
    assert_charts_fit(charts, f"at {width} x {height} px")
    for index, (name, drawn, *_) in enumerate(charts):
        for other, other_drawn, *_ in charts[index + 1 :]:
            assert not overlap(drawn, other_drawn), f"{name} and {other} overlap at {width} px"
    # No page-wide horizontal scrolling: wide tables scroll inside their section.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    shot = ARTIFACTS / f"report-demo-{width}x{height}.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("document.getElementById('clip').scrollIntoView()")
    assert browser.save_screenshot(str(shot))


@pytest.mark.slow
def test_demo_report_charts_follow_their_boxes(browser, demo_output):
    """Boxes that narrow after the charts were drawn (what a late scroll bar does, by more):
    every chart is laid out again inside its box."""
    browser.set_window_size(1400, 1200)
    browser.get((demo_output / REPORT_NAME).as_uri())
    browser.execute_script("return document.readyState")
    before = {name: cell for name, _, _, _, cell in browser.execute_script(BOXES_JS)}
    drawn = len(before)
    # Twice: a resize the page began as it loaded may answer the first narrowing.
    assert browser.execute_async_script(NARROW_JS, 1200) == drawn
    assert browser.execute_async_script(NARROW_JS, 1000) == drawn
    charts = browser.execute_script(BOXES_JS)
    assert all(cell[2] - cell[0] < before[name][2] - before[name][0] for name, *_, cell in charts)
    assert_charts_fit(charts, "after their boxes narrowed")


@pytest.mark.slow
def test_a_run_that_keeps_nothing_reports_in_chromium(manifest, tmp_path, browser):
    """Every pair below an impossible threshold: kept is 0, and `run` still writes the report."""
    output = tmp_path / "out"
    assert cli.main(["run", *job_args(manifest, output, "--clip-threshold", "1")]) == 0
    seen = open_report(browser, output / REPORT_NAME)
    assert seen["errors"] == [] and seen["fetched"] == []
    assert seen["sections"] == [section for section, _ in SECTIONS]
    assert browser.execute_script(FUNNEL_JS) == ledger_counts(output)
    assert ledger_counts(output)["status:kept"] == 0


def write_failed_run(folder: Path, rows: int = 6) -> Path:
    """A run folder where every row failed: no shards, no scores, no images."""
    ledger = [
        {"uid": f"{i:032x}", "url": f"http://127.0.0.1:9/{i}.jpg", "caption": f"caption {i}",
         "status": "failed", "reason": "download_connection_error", "chunk": 0}
        for i in range(rows)
    ]  # fmt: skip
    (folder / "ledger").mkdir(parents=True)
    table = rows_to_table(ledger, ledger_schema())
    pq.write_table(table, folder / "ledger" / "part-00000.parquet")
    stats = {"rows_in": rows, "kept": 0, "status": {"failed": {"count": rows, "share": 1.0}}}
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder


def test_report_command_on_a_run_where_every_row_failed(tmp_path, browser, capsys):
    output = write_failed_run(tmp_path / "run")
    assert cli.main(["report", str(output)]) == 0
    assert capsys.readouterr().out.strip().endswith(REPORT_NAME)
    seen = open_report(browser, output / REPORT_NAME)
    assert seen["errors"] == [] and seen["fetched"] == []
    assert seen["sections"] == [section for section, _ in SECTIONS]
    assert browser.execute_script(FUNNEL_JS) == ledger_counts(output)
    empty = {name for name, is_empty, _ in seen["charts"] if is_empty}
    assert {"clip", "image-size", "clusters"} <= empty


def test_report_command_without_outputs_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "no ledger" in error and str(tmp_path) in error


def test_a_failing_report_keeps_the_run_and_exits_1(tmp_path, monkeypatch, caplog):
    output = write_failed_run(tmp_path / "run")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("paircurate.pipeline.output.write_report.render", broken)
    assert cli.finish_with_report(str(output)) == 1
    assert "paircurate report" in caplog.text and "disk full" in caplog.text
    assert not (output / REPORT_NAME).exists()
    assert (output / "ledger" / "part-00000.parquet").exists()
