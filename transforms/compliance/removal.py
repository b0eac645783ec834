"""What ``paircurate remove`` changes in a finished run, and the diff it publishes.

A row that a list entry matches leaves the dataset when its image is in the
run: kept (its sample is in a shard) or fetched and dropped later (its image
is in the raw shard). It becomes ``excluded``, as a run with the list would
have made it, with the entry in ``reason_detail`` and ``compliance_match``.
A row that never had an image (a caption rule, a 404) keeps its reason, and so
does one a removal list or evaluation set already took out.

Each changed row is one record of the diff, ``removed.parquet``: its uid, the
shard and key it had (null if it was not kept), which list, entry and kind
matched, at what distance, and the version of the run the removal made. The
matched content itself (hash, URL, caption) is never in it. Applying the same
records to a copy of the run (``--diff``) changes the same rows the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from paircurate.schemas.codes import REASONS, Status
from paircurate.transforms.compliance.rules import COMPLIANCE_REASONS, list_match_detail
from paircurate.transforms.output.compliance import compliance_summary
from paircurate.transforms.output.ledger import drop, with_shares

PUBLISHED = pa.schema([
    ("uid", pa.string()), ("shard", pa.string()), ("key", pa.string()), ("kind", pa.string()),
    ("list", pa.string()), ("line", pa.int64()), ("distance", pa.int32()),
    ("version", pa.int32()),
])  # fmt: skip
"""removed.parquet: one row per row a removal changed."""
RECORDED = pa.schema([
    *PUBLISHED, ("image_format", pa.string()), ("old_status", pa.string()),
    ("old_reason", pa.string()), ("language", pa.string()), ("image_bytes", pa.int64()),
])  # fmt: skip
"""A removal's own record of each part: the diff, and what the run's counts need to change."""


@dataclass(frozen=True)
class ListMatch:
    """The list entry a row matched: its kind, the list, its line, the distance (0 if exact)."""

    kind: str
    list: str
    line: int
    distance: int = 0


def removable(row: Mapping[str, Any]) -> bool:
    """Whether a matched row leaves the dataset: its image is in the run and no removal list or
    evaluation set took it out already."""
    has_image = row.get("status") == Status.KEPT.value or row.get("image_format") is not None
    return has_image and row.get("reason") not in COMPLIANCE_REASONS


def record_of(row: Mapping[str, Any], match: ListMatch, version: int) -> dict[str, Any]:
    return {
        "uid": row["uid"],
        "shard": row.get("shard"),
        "key": row.get("key"),
        "kind": match.kind,
        "list": match.list,
        "line": match.line,
        "distance": match.distance,
        "version": version,
        "image_format": row.get("image_format"),
        "old_status": row.get("status"),
        "old_reason": row.get("reason"),
        "language": row.get("language"),
    }


def part_records(
    rows: Iterable[Mapping[str, Any]], matches: Mapping[str, ListMatch], version: int
) -> list[dict[str, Any]]:
    """The records of a ledger part's rows that ``matches`` (uid -> entry) take out, by uid."""
    found = [
        record_of(row, matches[row["uid"]], version)
        for row in rows
        if row["uid"] in matches and removable(row)
    ]
    return sorted(found, key=lambda record: record["uid"])


def match_of(record: Mapping[str, Any]) -> ListMatch:
    return ListMatch(record["kind"], record["list"], int(record["line"]),
                     int(record.get("distance") or 0))  # fmt: skip


def excluded_row(row: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger row after its removal: excluded, out of its shard, with the entry named."""
    match = match_of(record)
    detail, where = list_match_detail(match.kind, match.list, match.line, match.distance)
    return drop({**row, "shard": None, "key": None}, "excluded", detail, compliance_match=where)


def apply_records(
    rows: Iterable[Mapping[str, Any]], records: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A part's ledger rows with the recorded ones excluded; the others as they were."""
    by_uid = {record["uid"]: record for record in records}
    return [excluded_row(row, by_uid[row["uid"]]) if row["uid"] in by_uid else dict(row)
            for row in rows]  # fmt: skip


def removed_samples(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records of rows that were kept: samples that leave their shard."""
    return [record for record in records if record.get("old_status") == Status.KEPT.value]


def diff_matches(diff_rows: Iterable[Mapping[str, Any]], version: int) -> dict[str, ListMatch]:
    """uid -> entry of a published diff's rows of ``version``."""
    return {row["uid"]: match_of(row) for row in diff_rows if int(row["version"]) == version}


@dataclass(frozen=True)
class CountChanges:
    """What a removal changes in the run's counts."""

    status: Counter
    reason: Counter
    languages: Counter
    samples: int
    rows: int


def count_changes(records: Iterable[Mapping[str, Any]]) -> CountChanges:
    status, reason, languages = Counter(), Counter(), Counter()
    samples = rows = 0
    for record in records:
        rows += 1
        status[record["old_status"]] -= 1
        status[Status.DROPPED.value] += 1
        if record.get("old_reason"):
            reason[record["old_reason"]] -= 1
        reason["excluded"] += 1
        if record["old_status"] == Status.KEPT.value:
            samples += 1
            languages[record.get("language") or "unknown"] -= 1
    return CountChanges(status, reason, languages, samples, rows)


def _counts(section: Mapping[str, Any] | None) -> Counter:
    return Counter({key: int(entry["count"]) for key, entry in (section or {}).items()})


def stats_after(
    stats: Mapping[str, Any], changes: CountChanges, removal: Mapping[str, Any]
) -> dict[str, Any]:
    """stats.json after a removal: counts, shares and the compliance summary of the new ledger,
    ``version`` raised to the removal's, and the removal listed under ``removals``."""
    rows = int(stats["rows_in"])
    status = _counts(stats.get("status"))
    status.update(changes.status)
    reason = _counts(stats.get("reason"))
    reason.update(changes.reason)
    languages = Counter(stats.get("languages") or {})
    languages.update(changes.languages)
    options = stats.get("options") or {}
    compliance = compliance_summary(+reason, options)
    for entry in compliance["respected"]:
        if entry["name"] == REASONS["excluded"].respects:
            entry["honoured"] = True  # a removal applied lists, whatever the run's options
    return {
        **stats,
        "kept": status.get(Status.KEPT.value, 0),
        "status": with_shares(+status, rows),
        "reason": with_shares(+reason, rows),
        "languages": dict(sorted((+languages).items(), key=lambda i: (-i[1], i[0]))),
        "image_bytes_written": int(stats.get("image_bytes_written") or 0)
        - int(removal.get("image_bytes_removed", 0)),
        "compliance": compliance,
        "version": int(removal["version"]),
        "removals": [*(stats.get("removals") or ()), dict(removal)],
    }
