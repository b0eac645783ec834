"""The report of a run from a crawl shows the Extract step's counts, before the funnel."""

from __future__ import annotations

import json

from test_data import collect_from, mixed_rows, write_outputs

from paircurate.report.page import render

EXTRACT = {
    "format": "warc", "files": 2, "records": 40, "candidates": 180, "pairs": 120,
    "ledger_rows": 182,
    "record_outcomes": {"page": 18, "other_record": 20, "not_http": 0, "not_ok": 0,
                        "not_html": 0, "failed": 2},
    "reason": {"extract_no_alt": {"count": 40, "share": 0.22},
               "extract_record_truncated": {"count": 2, "share": 0.011}},
    "notes": {"page_cut": 1, "length_mismatch": 0, "charset_mismatch": 3, "charset_undeclared": 0},
}  # fmt: skip


def test_the_extract_section_lists_its_reasons_with_their_meaning(tmp_path):
    folder = write_outputs(tmp_path / "run", mixed_rows())
    stats = json.loads((folder / "stats.json").read_text())
    (folder / "stats.json").write_text(json.dumps({**stats, "extract": EXTRACT}))
    page = render(collect_from(str(folder)))
    assert page.index('id="extract"') < page.index('id="funnel"')
    row = '<tr data-extract-reason="extract_no_alt"><td><code>extract_no_alt</code></td>'
    assert row + '<td class="num" data-count="40">' in page
    assert "the &lt;img&gt; has no alt text" in page
    assert "180 candidate &lt;img&gt;; 120 became the pairs" in page


def test_a_run_from_lists_has_no_extract_section(tmp_path):
    page = render(collect_from(str(write_outputs(tmp_path / "run", mixed_rows()))))
    assert 'id="extract"' not in page
