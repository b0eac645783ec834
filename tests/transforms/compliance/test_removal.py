"""What a removal changes: which rows leave, how the ledger and the counts say so, the diff."""

from __future__ import annotations

from collections import Counter

from paircurate.transforms.compliance.removal import (
    ListMatch,
    apply_records,
    count_changes,
    diff_matches,
    part_records,
    removable,
    removed_samples,
    stats_after,
)

KEPT = {"uid": "a1", "status": "kept", "reason": None, "shard": "00003", "key": "a1",
        "image_format": "jpg", "language": "de"}  # fmt: skip
DUPLICATE = {"uid": "b2", "status": "dropped", "reason": "near_duplicate", "shard": None,
             "key": None, "image_format": "jpg", "language": "en"}  # fmt: skip
NOT_FOUND = {"uid": "c3", "status": "failed", "reason": "download_http_404", "image_format": None}
LISTED = {"uid": "d4", "status": "dropped", "reason": "excluded", "image_format": "jpg"}
MD5 = ListMatch("md5", "lists/iwf.csv", 7)
PDQ = ListMatch("pdq", "lists/c3p.txt", 2, 12)


def test_a_row_leaves_when_its_image_is_in_the_run_and_no_list_took_it_out_yet():
    assert removable(KEPT) and removable(DUPLICATE)
    assert not removable(NOT_FOUND)  # never had an image: keeps its reason
    assert not removable(LISTED)  # a list took it out already
    assert removable({"uid": "t", "status": "kept", "image_format": None})  # a text-only run


def test_records_name_the_shard_key_list_and_entry_never_the_content():
    rows = [DUPLICATE, NOT_FOUND, KEPT, LISTED]
    matches = {"a1": MD5, "b2": PDQ, "c3": MD5, "d4": MD5}
    records = part_records(rows, matches, version=3)
    assert [r["uid"] for r in records] == ["a1", "b2"]
    assert records[0] == {
        "uid": "a1", "shard": "00003", "key": "a1", "kind": "md5", "list": "lists/iwf.csv",
        "line": 7, "distance": 0, "version": 3, "image_format": "jpg", "old_status": "kept",
        "old_reason": None, "language": "de",
    }  # fmt: skip
    assert records[1]["shard"] is None and records[1]["distance"] == 12
    assert [r["uid"] for r in removed_samples(records)] == ["a1"]


def test_the_ledger_row_becomes_excluded_out_of_its_shard():
    records = part_records([KEPT, DUPLICATE], {"a1": MD5, "b2": PDQ}, version=2)
    kept, duplicate, untouched = apply_records([KEPT, DUPLICATE, NOT_FOUND], records)
    assert (kept["status"], kept["reason"], kept["shard"], kept["key"]) == (
        "dropped", "excluded", None, None
    )  # fmt: skip
    assert kept["reason_detail"] == "md5 entry at line 7 of lists/iwf.csv"
    assert kept["compliance_match"] == "lists/iwf.csv:7"
    assert (
        duplicate["reason_detail"]
        == "PDQ within 12 bits of the pdq entry at line 2 of lists/c3p.txt"
    )
    assert untouched == NOT_FOUND


def test_a_diff_gives_back_the_matches_of_one_version():
    diff = [
        {"uid": "a1", "kind": "md5", "list": "lists/iwf.csv", "line": 7, "distance": 0,
         "version": 2},
        {"uid": "b2", "kind": "pdq", "list": "lists/c3p.txt", "line": 2, "distance": 12,
         "version": 3},
    ]  # fmt: skip
    assert diff_matches(diff, 2) == {"a1": MD5}
    assert diff_matches(diff, 3) == {"b2": PDQ}


def test_counts_move_from_the_old_reasons_to_excluded():
    stats = {
        "rows_in": 4,
        "kept": 2,
        "status": {"kept": {"count": 2, "share": 0.5}, "dropped": {"count": 1, "share": 0.25},
                   "failed": {"count": 1, "share": 0.25}},
        "reason": {"near_duplicate": {"count": 1, "share": 0.25},
                   "download_http_404": {"count": 1, "share": 0.25}},
        "languages": {"de": 1, "en": 1},
        "image_bytes_written": 5000,
        "options": {"compliance": {"exclude": []}},
    }  # fmt: skip
    records = part_records([KEPT, DUPLICATE], {"a1": MD5, "b2": PDQ}, version=2)
    changes = count_changes(records)
    assert (changes.rows, changes.samples) == (2, 1)
    assert changes.reason == Counter({"near_duplicate": -1, "excluded": 2})
    removal = {"version": 2, "lists": ["md5:lists/iwf.csv"], "image_bytes_removed": 1200}
    after = stats_after(stats, changes, removal)
    assert after["kept"] == 1 and after["version"] == 2
    assert after["status"] == {"dropped": {"count": 2, "share": 0.5},
                               "failed": {"count": 1, "share": 0.25},
                               "kept": {"count": 1, "share": 0.25}}  # fmt: skip
    assert after["reason"]["excluded"] == {"count": 2, "share": 0.5}
    assert "near_duplicate" not in after["reason"]
    assert after["languages"] == {"en": 1} and after["image_bytes_written"] == 3800
    (lists,) = [e for e in after["compliance"]["respected"] if e["name"] == "removal lists"]
    assert lists["honoured"] and lists["rows_removed"] == 2
    assert after["removals"] == [removal]
    assert stats["kept"] == 2  # the input is left as it was
