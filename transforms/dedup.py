"""Exact URL deduplication, before anything is downloaded.

Rows are assigned to fetch chunks by the hash of their normalised URL, so every
copy of a URL lands in the same chunk and the repeats can be found there,
without a shuffle of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from paircurate.transforms.ledger import drop
from paircurate.transforms.urls import normalize_url


def url_digest(url: str) -> str:
    """Hex sha256 of the normalised URL: the same for every spelling of one resource."""
    return hashlib.sha256(normalize_url(url).encode("utf-8", "surrogatepass")).hexdigest()


def input_order(row: dict[str, Any]) -> tuple[str, int]:
    return (row["source"], row["row_number"])


def split_url_duplicates(
    rows: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(first row of each normalised URL in input order, the other rows marked url_duplicate)."""
    firsts: dict[str, dict[str, Any]] = {}
    duplicates = []
    for row in sorted(rows, key=input_order):
        key = normalize_url(row["url"])
        keeper = firsts.setdefault(key, row)
        if keeper is not row:
            detail = f"same normalised URL as row {keeper['row_number']} of {keeper['source']}"
            duplicates.append(drop(row, "url_duplicate", detail, duplicate_of=keeper["uid"]))
    return list(firsts.values()), duplicates
