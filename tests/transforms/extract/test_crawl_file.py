"""A synthetic crawl read back against its ground truth, in both views (WARC pages and WAT JSON).

Every usable pair found with its page, language and title; every unusable
candidate dropped with its reason; every damaged record failed with its
reason and the records after it still read; every pair's (offset, length)
re-reads the record it came from.
"""

from __future__ import annotations

import gzip
import io
import os

import pyarrow.parquet as pq
import pytest
from fastwarc.warc import WarcRecord

from paircurate.schemas.config import ExtractConfig
from paircurate.synthweb import SyntheticWeb, WebMix
from paircurate.synthweb.crawl import Crawl, CrawlMix, write_crawl
from paircurate.transforms.extract.crawl_file import extract_file
from paircurate.transforms.extract.summary import FileSummary

BASE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> Crawl:
    web = SyntheticWeb(240, seed=5, mix=WebMix())
    return write_crawl(web, BASE, str(tmp_path_factory.mktemp("crawl")), files=2, seed=5)


def extract_all(files, view: str, config: ExtractConfig | None = None):
    config = config or ExtractConfig()
    summary, rows = FileSummary(), []
    for path in files:
        with open(path, "rb") as stream:
            rows += list(extract_file(stream, os.path.basename(path), view, config, summary))
    return rows, summary


def truth_of(crawl: Crawl, view: str) -> list[dict]:
    return [row for row in pq.read_table(crawl.truth).to_pylist() if row["view"] == view]


def key(row: dict) -> tuple:
    return row["crawl_file"], row["record_offset"], row["image_index"]


@pytest.mark.parametrize("view", ["warc", "wat"])
def test_every_candidate_and_failed_record_as_the_truth_says(crawl, view):
    files = crawl.warc_files if view == "warc" else crawl.wat_files
    rows, summary = extract_all(files, view)
    truth = truth_of(crawl, view)
    expected = [t for t in truth if t["record_reason"] is None or t["image_index"] is None]
    found = {key(row): row for row in rows}
    assert len(found) == len(rows) == len(expected)
    for wanted in expected:
        row = found[key(wanted)]
        assert row["reason"] == wanted["reason"], (wanted["kind"], row["reason_detail"])
        if wanted["image_index"] is None:
            continue
        assert row["page_url"] == wanted["page_url"]
        assert row["page_language"] == wanted["page_language"]
        assert row["title"] == wanted["title"]
        if wanted["reason"] is None:
            assert (row["url"], row["caption"]) == (wanted["url"], wanted["caption"])
            assert row["status"] == "kept"
    usable = [t for t in expected if t["reason"] is None and t["image_index"] is not None]
    assert summary.pairs == len(usable) > 100
    assert len({row["uid"] for row in rows}) == len(rows)


def test_every_fault_and_rule_is_exercised(crawl):
    reasons = {(t["view"], t["reason"]) for t in pq.read_table(crawl.truth).to_pylist()}
    for code in (
        "extract_no_src", "extract_data_uri", "extract_unsupported_scheme", "extract_invalid_url",
        "extract_no_alt", "extract_spacer", "extract_spacer_name", "extract_page_repeat",
        "extract_record_truncated", "extract_record_corrupt",
    ):  # fmt: skip
        assert ("warc", code) in reasons, code
    assert ("wat", "extract_wat_json") in reasons


def test_the_warc_view_finds_what_the_wat_view_cannot(crawl):
    """Lazy-loaded images: the real source in a WARC page, a placeholder or data: URI in WAT."""
    warc_rows, _ = extract_all(crawl.warc_files, "warc")
    wat_rows, _ = extract_all(crawl.wat_files, "wat")
    warc_found, wat_found = {key(r): r for r in warc_rows}, {key(r): r for r in wat_rows}
    wat_truth = {
        (t["page_url"], t["entry"], t["kind"]): t
        for t in truth_of(crawl, "wat")
        if t["record_reason"] is None and t["image_index"] is not None
    }
    compared = 0
    for wanted in truth_of(crawl, "warc"):
        if wanted["kind"] not in ("lazy", "lazy_placeholder") or wanted["record_reason"]:
            continue
        assert warc_found[key(wanted)]["reason"] is None
        listed = wat_truth.get((wanted["page_url"], wanted["entry"], wanted["kind"]))
        if listed is not None:
            reason = wat_found[key(listed)]["reason"]
            assert reason in ("extract_data_uri", "extract_spacer_name")
            compared += 1
    assert compared > 5


@pytest.mark.parametrize("view", ["warc", "wat"])
def test_offset_and_length_re_read_the_record_of_every_pair(crawl, view):
    files = crawl.warc_files if view == "warc" else crawl.wat_files
    rows, _ = extract_all(files, view)
    data = {os.path.basename(path): open(path, "rb").read() for path in files}  # noqa: SIM115
    kept = [row for row in rows if row["reason"] is None]
    for row in kept:
        member = data[row["crawl_file"]][
            row["record_offset"] : row["record_offset"] + row["record_length"]
        ]
        record = WarcRecord.from_reader(io.BytesIO(gzip.decompress(member)))
        assert record.headers.get("WARC-Target-URI") == row["page_url"]
        linked = record.record_id if view == "warc" else record.headers.get("WARC-Refers-To")
        assert linked == row["record_id"]


def test_a_page_of_megabytes_with_thousands_of_images(tmp_path):
    web = SyntheticWeb(16, seed=2, mix=WebMix.clean_only())
    mix = CrawlMix(faults=False, big_page_images=3000)
    crawl = write_crawl(web, BASE, str(tmp_path), files=1, seed=2, mix=mix)
    with open(crawl.warc_files[0], "rb") as stream:
        assert len(gzip.decompress(stream.read())) > 4_000_000
    rows, summary = extract_all(crawl.warc_files, "warc")
    icons = [r for r in rows if r["reason"] is None and "/static/icons/" in r["url"]]
    assert len(icons) >= 3000 and summary.notes["page_cut"] == 0
    cut_rows, cut = extract_all(crawl.warc_files, "warc", ExtractConfig(max_record_bytes=1 << 20))
    assert cut.notes["page_cut"] == 1 and 0 < len(cut_rows) < len(rows)
    _, wat = extract_all(crawl.wat_files, "wat", ExtractConfig(max_record_bytes=1 << 17))
    assert wat.reason["extract_record_too_large"] == 1


def test_a_record_that_is_no_warc_record_fails_alone():
    good = gzip.compress(
        b"WARC/1.1\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n", mtime=0
    )
    bad = gzip.compress(b"WARC/1.1\r\nno header end", mtime=0)
    summary = FileSummary()
    rows = list(extract_file(io.BytesIO(good + bad + good), "f", "warc", ExtractConfig(), summary))
    assert [(row["record_offset"], row["reason"]) for row in rows] == [
        (len(good), "extract_record_corrupt")
    ]
    assert summary.records == {"other_record": 2, "failed": 1}
