"""The balancing rules without Beam: exact caps, the any-entry survival rule, the summary."""

from __future__ import annotations

from collections import Counter

from paircurate.transforms.balance import decide as rules
from paircurate.transforms.balance.matching import sample_key


def row(uid: str) -> dict:
    return {"uid": uid, "caption": "x", "status": None, "reason": None}


def balance(pairs: dict[str, list[str]], cap: int, unmatched: str = "drop") -> dict[str, dict]:
    """What the Beam step does, in one process: keyed pairs, thresholds, decisions."""
    keyed = {uid: [(e, sample_key(uid, e)) for e in sorted(es)] for uid, es in pairs.items()}
    per_entry: dict[str, list[int]] = {}
    for items in keyed.values():
        for entry, key in items:
            per_entry.setdefault(entry, []).append(key)
    thresholds = {}
    for entry, keys in per_entry.items():
        threshold = rules.threshold_of(rules.smallest_keys(keys, cap), cap)
        if len(keys) > cap and threshold is not None:
            thresholds[entry] = threshold
    return {uid: rules.decide(row(uid), keyed[uid], thresholds, cap, unmatched) for uid in pairs}


def test_an_entry_over_its_cap_keeps_exactly_cap_pairs():
    pairs = {f"u{i}": ["dog"] for i in range(100)} | {f"c{i}": ["cat"] for i in range(7)}
    decided = balance(pairs, cap=10)
    kept = Counter(pairs[uid][0] for uid, r in decided.items() if r.get("reason") is None)
    assert kept == {"dog": 10, "cat": 7}
    dropped = [r for r in decided.values() if r.get("reason") is not None]
    assert {r["reason"] for r in dropped} == {"balance_cap"}
    assert {r["status"] for r in dropped} == {"dropped"}
    assert len(dropped) == 90
    assert "'dog'" in dropped[0]["reason_detail"] and "10" in dropped[0]["reason_detail"]


def test_the_kept_pairs_are_those_with_the_smallest_keys():
    pairs = {f"u{i}": ["dog"] for i in range(50)}
    decided = balance(pairs, cap=5)
    kept = {uid for uid, r in decided.items() if r.get("reason") is None}
    assert kept == set(sorted(pairs, key=lambda uid: sample_key(uid, "dog"))[:5])
    assert balance(pairs, cap=5) == decided


def test_a_pair_survives_if_any_of_its_entries_keeps_it():
    # "rare" is under its cap: every pair matching it survives, however crowded "dog" is.
    pairs = {f"u{i}": ["dog"] for i in range(40)} | {f"m{i}": ["dog", "rare"] for i in range(3)}
    decided = balance(pairs, cap=5)
    assert all(decided[f"m{i}"].get("reason") is None for i in range(3))
    # Pairs matching only "dog" fill at most the cap.
    kept_only_dog = [u for u in pairs if u.startswith("u") and decided[u].get("reason") is None]
    assert len(kept_only_dog) <= 5


def test_survives_checks_each_entry_threshold():
    assert rules.survives([("a", 9), ("b", 3)], {"a": 5, "b": 2}) is False
    assert rules.survives([("a", 9), ("b", 2)], {"a": 5, "b": 2}) is True
    assert rules.survives([("a", 9), ("c", 100)], {"a": 5}) is True


def test_unmatched_pairs_follow_the_option():
    assert balance({"u": []}, cap=3, unmatched="keep")["u"] == row("u")
    dropped = balance({"u": []}, cap=3, unmatched="drop")["u"]
    assert (dropped["status"], dropped["reason"]) == ("dropped", "balance_unmatched")


def test_threshold_only_over_the_cap():
    assert rules.threshold_of([1, 2, 3], 3) == 3
    assert rules.threshold_of([1, 2], 3) is None
    assert rules.smallest_keys([5, 1, 4, 2], 2) == [1, 2]


def test_summary_merges_in_any_order_to_the_same_head_and_tail():
    items = [(f"e{i:02d}", 100 - i, min(100 - i, 20)) for i in range(40)]
    one = rules.empty_summary(3)
    for entry, before, after in items:
        rules.add_entry(one, entry, before, after)
    halves = [rules.empty_summary(3), rules.empty_summary(3)]
    for index, (entry, before, after) in enumerate(reversed(items)):
        rules.add_entry(halves[index % 2], entry, before, after)
    merged = rules.merge_summaries(halves)
    assert rules.merge_summaries([one]) == merged
    assert merged["top"] == [["e00", 100, 20], ["e01", 99, 20], ["e02", 98, 20]]
    assert merged["bottom"] == [["e39", 61, 20], ["e38", 62, 20], ["e37", 63, 20]]
    assert merged["before"] == Counter({100 - i: 1 for i in range(40)})
    assert merged["after"] == Counter({20: 40})


def test_summary_document_counts_pairs_and_entries():
    summary = rules.empty_summary(2)
    for entry, before, after in [("dog", 50, 10), ("cat", 4, 4), ("owl", 12, 10)]:
        rules.add_entry(summary, entry, before, after)
    outcomes = {"matched_kept": 20, "balance_cap": 40, "balance_unmatched": 5}
    document = rules.summary_document(
        rules.merge_summaries([summary]), outcomes, entries=5, cap=10, unmatched="drop"
    )
    assert document["pairs"] == 65
    assert (document["pairs_matched"], document["pairs_unmatched"]) == (60, 5)
    assert (document["pairs_capped"], document["pairs_kept"]) == (40, 20)
    assert (document["entries_matched"], document["entries_unmatched"]) == (3, 2)
    assert document["entries_over_cap"] == 2
    assert document["head"][0] == {"entry": "dog", "before": 50, "after": 10}
    assert document["tail"][0] == {"entry": "cat", "before": 4, "after": 4}
    assert document["curve_before"] == [[1, 50], [2, 12], [3, 4]]
    assert document["curve_after"] == [[1, 10], [2, 10], [3, 4]]


def test_rank_curve_samples_log_spaced_ranks():
    curve = rules.rank_curve({1: 1000, 10: 10, 500: 1}, points=5)
    assert curve[0] == [1, 500] and curve[-1] == [1011, 1]
    assert [rank for rank, _ in curve] == sorted({rank for rank, _ in curve})
    assert rules.rank_curve({}) == []
