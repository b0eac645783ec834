"""The balancing rules: which pairs an entry over its cap keeps, and the run's entry counts.

MetaCLIP keeps at most ``cap`` pairs per entry: an entry matched by ``count``
pairs keeps each with probability cap / count, and a pair survives if any of
its entries keeps it. Here an entry over its cap keeps exactly the ``cap``
pairs with the smallest ``matching.sample_key``: each pair's chance is still
cap / count, the choice is the same on every run and worker count, and no
pair needs to see any other but through one threshold per entry.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from paircurate.transforms.output.ledger import drop

UNMATCHED_CHOICES = ("drop", "keep")
DETAIL_ENTRIES = 5


def smallest_keys(keys: Iterable[int], cap: int) -> list[int]:
    """The ``cap`` smallest keys, sorted: a combiner's state, bounded by ``cap``."""
    return heapq.nsmallest(cap, keys)


def threshold_of(keys: Sequence[int], cap: int) -> int | None:
    """The largest key an entry keeps, from its smallest keys; None when it is not over its cap."""
    return keys[cap - 1] if len(keys) >= cap else None


def _entry_list(entries: Sequence[str]) -> str:
    shown = ", ".join(repr(entry) for entry in entries[:DETAIL_ENTRIES])
    more = len(entries) - DETAIL_ENTRIES
    return shown + (f" and {more} more" if more > 0 else "")


def survives(keyed: Sequence[tuple[str, int]], thresholds: Mapping[str, int]) -> bool:
    """Whether any of the pair's (entry, key) keeps it: under its cap, or key among its smallest."""
    for entry, key in keyed:
        threshold = thresholds.get(entry)
        if threshold is None or key <= threshold:
            return True
    return False


def decide(
    row: dict[str, Any],
    keyed: Sequence[tuple[str, int]],
    thresholds: Mapping[str, int],
    cap: int,
    unmatched: str,
) -> dict[str, Any]:
    """The row, or a new one dropped as balance_cap or balance_unmatched.

    ``keyed`` holds the (entry, sample key) of every entry the caption matches;
    ``thresholds`` the largest key each entry over ``cap`` keeps.
    """
    if not keyed:
        if unmatched == "keep":
            return row
        return drop(row, "balance_unmatched", "the caption matches no entry of --balance-entries")
    if survives(keyed, thresholds):
        return row
    entries = [entry for entry, _ in keyed]
    detail = f"every entry it matches is over --balance-cap {cap}: {_entry_list(entries)}"
    return drop(row, "balance_cap", detail)


# The run's balancing summary, merged like the ledger summary: plain dicts of counters.


def empty_summary(head: int) -> dict[str, Any]:
    return {"head": head, "before": Counter(), "after": Counter(), "top": [], "bottom": []}


def _trim(items: Iterable[Sequence], head: int) -> tuple[list, list]:
    """The ``head`` entries with most pairs before balancing, and the ``head`` with fewest.

    Items are (entry, before, after); ties go by entry, so merges in any order agree.
    """
    items = {tuple(item) for item in items}
    top = heapq.nsmallest(head, items, key=lambda item: (-item[1], item[0]))
    bottom = heapq.nsmallest(head, items, key=lambda item: (item[1], item[0]))
    return [list(item) for item in top], [list(item) for item in bottom]


def add_entry(summary: dict[str, Any], entry: str, before: int, after: int) -> dict[str, Any]:
    """Count one entry's pairs before and after balancing into ``summary`` (changed in place)."""
    summary["before"][before] += 1
    summary["after"][after] += 1
    summary["top"].append([entry, before, after])
    summary["bottom"].append([entry, before, after])
    if len(summary["top"]) > 8 * summary["head"]:
        both = summary["top"] + summary["bottom"]
        summary["top"], summary["bottom"] = _trim(both, summary["head"])
    return summary


def merge_summaries(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    summaries = list(summaries)
    head = max(summary["head"] for summary in summaries)
    merged = empty_summary(head)
    for summary in summaries:
        merged["before"].update(summary["before"])
        merged["after"].update(summary["after"])
    items = [item for summary in summaries for item in summary["top"] + summary["bottom"]]
    merged["top"], merged["bottom"] = _trim(items, head)
    return merged


def rank_curve(histogram: Mapping[int, int], points: int = 60) -> list[list[int]]:
    """[rank, pairs] at log-spaced ranks of the entries sorted by pairs, most first.

    ``histogram`` maps a pair count to how many entries have it.
    """
    runs = sorted(((count, n) for count, n in histogram.items() if count > 0), reverse=True)
    total = sum(n for _, n in runs)
    if total == 0:
        return []
    ranks = sorted(
        {round(math.exp(i * math.log(total) / max(points - 1, 1))) for i in range(points)}
    )
    curve, run, upto = [], 0, runs[0][1]
    for rank in ranks:
        while rank > upto:
            run += 1
            upto += runs[run][1]
        curve.append([rank, runs[run][0]])
    return curve


def summary_document(
    summary: Mapping[str, Any], outcomes: Mapping[str, int], entries: int, cap: int, unmatched: str
) -> dict[str, Any]:
    """stats.json's "balance" section: counts of pairs and entries, head, tail and rank curves.

    Counts are over the pairs that reached balancing: those the caption and
    language rules kept, before URL dedup and before any download.
    """
    before, after = summary["before"], summary["after"]
    matched_entries = sum(before.values())
    return {
        "entries": entries,
        "cap": cap,
        "unmatched": unmatched,
        "pairs": sum(outcomes.values()),
        "pairs_matched": outcomes.get("matched_kept", 0) + outcomes.get("balance_cap", 0),
        "pairs_unmatched": outcomes.get("unmatched_kept", 0) + outcomes.get("balance_unmatched", 0),
        "pairs_capped": outcomes.get("balance_cap", 0),
        "pairs_kept": outcomes.get("matched_kept", 0) + outcomes.get("unmatched_kept", 0),
        "entries_matched": matched_entries,
        "entries_unmatched": entries - matched_entries,
        "entries_over_cap": sum(n for count, n in before.items() if count > cap),
        "head": [{"entry": e, "before": b, "after": a} for e, b, a in summary["top"]],
        "tail": [{"entry": e, "before": b, "after": a} for e, b, a in summary["bottom"]],
        "curve_before": rank_curve(before),
        "curve_after": rank_curve(after),
    }


def outcome_of(row: Mapping[str, Any], matched: bool) -> str:
    """How balancing ended for a row: its reason, or matched_kept / unmatched_kept."""
    reason = row.get("reason")
    if reason in ("balance_cap", "balance_unmatched"):
        return reason
    return "matched_kept" if matched else "unmatched_kept"
