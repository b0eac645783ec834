"""What the extract step counted, merged over files and shaped for stats.json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RECORD_OUTCOMES = {
    "page": "an HTML page (WARC response) or its WAT metadata: its <img> were judged",
    "other_record": "warcinfo, request and metadata records, and WAT records of them",
    "not_http": "a response record without an HTTP message",
    "not_ok": "an HTTP status other than 2xx",
    "not_html": "a response that is not HTML (images, PDF, JSON, ...)",
    "failed": "a record that could not be read: one failed row in the extract ledger",
}
NOTES = {
    "page_cut": "pages longer than --max-record-bytes, parsed up to there",
    "length_mismatch": "records whose Content-Length disagreed with their gzip member",
    "charset_mismatch": "pages whose declared charset was wrong (another one decoded them)",
    "charset_undeclared": "pages with no charset declared that were not UTF-8 (detected)",
}


@dataclass
class FileSummary:
    """Counts of one or more crawl files: records by outcome, candidates, reasons, notes."""

    files: int = 0
    records: Counter = field(default_factory=Counter)
    candidates: int = 0
    pairs: int = 0
    reason: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)

    def add(self, other: FileSummary) -> FileSummary:
        self.files += other.files
        self.records.update(other.records)
        self.candidates += other.candidates
        self.pairs += other.pairs
        self.reason.update(other.reason)
        self.notes.update(other.notes)
        return self

    def count(self, row: Mapping[str, Any]) -> None:
        if row.get("image_index") is not None:
            self.candidates += 1
            self.pairs += row["reason"] is None
        if row["reason"] is not None:
            self.reason[row["reason"]] += 1


def merge_summaries(summaries: Iterable[FileSummary]) -> FileSummary:
    merged = FileSummary()
    for summary in summaries:
        merged.add(summary)
    return merged


def _with_shares(counts: Mapping[str, int], total: int) -> dict[str, dict[str, float]]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        key: {"count": n, "share": round(n / total, 6) if total else 0.0} for key, n in ordered if n
    }


def stats_section(summary: FileSummary) -> dict[str, Any]:
    """stats.json's "extract" section: records by outcome, candidates, pairs, reasons, notes.

    Shares of reasons are over the extract ledger's rows (candidates plus
    failed records).
    """
    rows = summary.candidates + summary.records.get("failed", 0)
    return {
        "files": summary.files,
        "records": sum(summary.records.values()),
        "record_outcomes": {key: summary.records.get(key, 0) for key in RECORD_OUTCOMES},
        "candidates": summary.candidates,
        "pairs": summary.pairs,
        "ledger_rows": rows,
        "reason": _with_shares(summary.reason, rows),
        "notes": {key: summary.notes.get(key, 0) for key in NOTES},
    }
