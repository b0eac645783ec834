"""The caption stage and text-only mode, end to end on the synthetic web."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
from conftest import PAIRS, read_ledger, run_job_on

pytestmark = pytest.mark.slow

CAPTION_REASONS = {
    "caption_missing", "caption_junk", "caption_filename", "caption_url", "caption_too_short",
    "caption_too_few_words", "caption_nonletter",
}  # fmt: skip


def test_every_row_gets_a_language_and_junk_captions_are_dropped(first_run):
    output, _ = first_run
    ledger = read_ledger(output)
    assert all(row["language"] and row["language_score"] is not None for row in ledger)
    junk = [row for row in ledger if row["truth_label"] == "junk_caption"]
    assert junk and all(row["reason"] in CAPTION_REASONS for row in junk), junk
    clean = [row for row in ledger if row["truth_label"] == "clean"]
    # A clean original may lose to a copy of it as near_duplicate (test_dedup.py).
    assert all(row["reason"] in (None, "near_duplicate") for row in clean)
    assert Counter(row["language"] for row in clean)["en"] >= 0.95 * len(clean)


def test_languages_option_keeps_only_those(manifest, tmp_path):
    output = tmp_path / "en"
    run_job_on(manifest, output, "--languages", "en", keep="truth_label,truth_language")
    ledger = read_ledger(output)
    assert len(ledger) == PAIRS
    foreign = [row for row in ledger if row["truth_language"] in ("de", "fr", "es")]
    assert foreign
    assert all(row["reason"] == "language" for row in foreign if row["language"] != "en")
    assert sum(row["reason"] == "language" for row in foreign) >= 0.9 * len(foreign)
    kept = [row for row in ledger if row["status"] == "kept"]
    assert kept and all(row["language"] == "en" for row in kept)


def test_text_only_writes_ledger_and_metadata_without_downloading(manifest, server, tmp_path):
    output = tmp_path / "text"
    served = server.requests_served
    stats = run_job_on(manifest, output, "--text-only")
    assert server.requests_served == served
    assert not (output / "shards").exists()
    assert not list((output / "fetch").glob("*/*.tar"))  # chunks committed, nothing fetched
    ledger = read_ledger(output)
    assert len(ledger) == PAIRS == stats["rows_in"]
    metadata = pq.read_table(output / "metadata").to_pylist()
    kept = {row["uid"] for row in ledger if row["status"] == "kept"}
    assert {row["uid"] for row in metadata} == kept and len(metadata) == stats["kept"]
    reasons = Counter(row["reason"] for row in ledger)
    assert reasons["url_duplicate"] >= 1
    assert set(reasons) - {None} <= CAPTION_REASONS | {"url_duplicate", "language"}
    assert json.loads((output / "stats.json").read_text())["kept"] == len(kept)
