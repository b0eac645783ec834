"""Final decisions and the run summary built from ledger rows.

A row's status follows from its reason (``schemas.codes``): no reason means
kept. Summaries are plain dicts of counters so that Beam can merge them in a
combiner without the ledger ever being in one place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from paircurate.schemas.codes import Status, status_of


def with_status(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with ``status`` set from ``reason``: the one place the two are tied together."""
    reason = row.get("reason")
    return {**row, "status": Status.KEPT.value if reason is None else status_of(reason).value}


def drop(row: Mapping[str, Any], reason: str, detail: str | None = None, **extra: Any) -> dict:
    """The row marked as not kept, with its reason code; ``row`` itself is left as it was."""
    return with_status({**row, **extra, "reason": reason, "reason_detail": detail})


def empty_summary() -> dict[str, Any]:
    return {
        "rows": 0,
        "status": Counter(),
        "reason": Counter(),
        "languages": Counter(),
        "shards": {},
        "tar_bytes": {},
        "image_bytes": 0,
    }


def summarize_shard(
    shard: str, rows: Iterable[Mapping[str, Any]], image_bytes: int, tar_bytes: int | None = None
) -> dict:
    """Counts of one chunk's ledger rows (kept ones by language too), and the sizes of the
    shard written for it (``tar_bytes`` None: no tar, as in a text-only run)."""
    summary = empty_summary()
    kept = 0
    for row in rows:
        summary["rows"] += 1
        summary["status"][row["status"]] += 1
        if row.get("reason"):
            summary["reason"][row["reason"]] += 1
        if row["status"] == Status.KEPT.value:
            kept += 1
            summary["languages"][row.get("language") or "unknown"] += 1
    summary["shards"][shard] = kept
    if tar_bytes is not None:
        summary["tar_bytes"][shard] = tar_bytes
    summary["image_bytes"] = image_bytes
    return summary


def merge_summaries(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged = empty_summary()
    for summary in summaries:
        merged["rows"] += summary["rows"]
        merged["status"].update(summary["status"])
        merged["reason"].update(summary["reason"])
        merged["languages"].update(summary["languages"])
        merged["shards"].update(summary["shards"])
        merged["tar_bytes"].update(summary["tar_bytes"])
        merged["image_bytes"] += summary["image_bytes"]
    return merged


def with_shares(counts: Mapping[str, int], rows: int) -> dict[str, dict[str, Any]]:
    """stats.json's form of counts: each with its share of ``rows``, largest first."""
    return {
        key: {"count": n, "share": round(n / rows, 6) if rows else 0.0}
        for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    }
