"""Exact URL deduplication, before anything is downloaded.

Rows are assigned to fetch chunks by the hash of their normalised URL, so every
copy of a URL lands in the same chunk and the repeats can be found there,
without a shuffle of their own. Rows that share a URL but stay (other captions,
with ``--url-dedup url_caption`` or ``off``) share one download too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from paircurate.schemas.records import working_caption
from paircurate.transforms.ingest.urls import normalize_url
from paircurate.transforms.output.ledger import drop


def url_digest(url: str) -> str:
    """Hex sha256 of the normalised URL: the same for every spelling of one resource."""
    return hashlib.sha256(normalize_url(url).encode("utf-8", "surrogatepass")).hexdigest()


def input_order(row: dict[str, Any]) -> tuple[str, int]:
    return (row["source"], row["row_number"])


_WHAT_MATCHED = {"url": "same normalised URL", "url_caption": "same normalised URL and caption"}


def _dedup_key(row: dict[str, Any], mode: str) -> Any:
    url = normalize_url(row["url"])
    if mode == "url":
        return url
    if mode == "url_caption":
        return (url, working_caption(row))
    return (row["source"], row["row_number"])  # "off": every row is its own key


def split_url_duplicates(
    rows: Iterable[dict[str, Any]], mode: str = "url"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(first row of each key in input order, the other rows marked url_duplicate).

    ``mode`` is ``--url-dedup``: the key is the normalised URL ("url"), the
    URL and the caption ("url_caption"), or nothing ("off").
    """
    firsts: dict[Any, dict[str, Any]] = {}
    duplicates = []
    for row in sorted(rows, key=input_order):
        keeper = firsts.setdefault(_dedup_key(row, mode), row)
        if keeper is not row:
            where = f"row {keeper['row_number']} of {keeper['source']}"
            detail = f"{_WHAT_MATCHED[mode]} as {where}"
            duplicates.append(drop(row, "url_duplicate", detail, duplicate_of=keeper["uid"]))
    return list(firsts.values()), duplicates


def by_url(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by normalised URL, each group in uid order: one download per group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["uid"]):
        groups.setdefault(normalize_url(row["url"]), []).append(row)
    return groups
