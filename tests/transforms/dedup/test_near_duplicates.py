"""Bucket keys, local and global buckets, and caption verification, without Beam."""

from __future__ import annotations

import numpy as np

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.near_duplicates import (
    ENTRY,
    ChunkFeatures,
    KeyMaker,
    entry_node,
    global_buckets,
    ledger_node,
    local_buckets,
    partition_entries,
    phash_distance,
    phash_links,
    signed64,
    verify_caption_pairs,
)

CONFIG = DedupConfig()


def _uid(n: int) -> str:
    return f"{n:032x}"


def _row(n: int, caption: str, sha: str | None = None, phash: str | None = None, **extra) -> dict:
    return {
        "uid": _uid(n),
        "caption_normalized": caption,
        "sha256": sha,
        "image_sha256": sha,
        "phash": phash,
        "original_width": 100 + n if sha else None,
        "original_height": 100 if sha else None,
        **extra,
    }


def test_features_keep_surviving_rows_in_uid_order():
    rows = [_row(3, "c", "aa" * 32, "00" * 8), _row(1, "a"), _row(2, "b", reason="language")]
    features = ChunkFeatures.from_rows(7, rows)
    assert features.uids == [_uid(1), _uid(3)]
    assert features.areas == [0, 103 * 100]
    assert features.has_image.tolist() == [False, True]
    assert features.node(1) == (_uid(3), 7, 10300, 0)


def test_a_ledger_row_gives_the_node_decide_made_of_its_raw_row():
    rows = [_row(1, "a"), _row(3, "c", "aa" * 32, "f0" * 8), _row(4, "d", "bb" * 32, "0f" * 8)]
    features = ChunkFeatures.from_rows(7, rows)
    for index, row in enumerate(rows):
        assert ledger_node({**row, "chunk": 7}) == features.node(index)


def test_repeated_caption_in_a_chunk_is_one_star_and_one_leader_per_band():
    rows = [_row(n, "a red circle on a blue background") for n in (5, 2, 9)]
    result = local_buckets(ChunkFeatures.from_rows(0, rows), KeyMaker(CONFIG, images=False))
    root = (_uid(2), 0, 0, 0)
    assert sorted(result.edges) == [
        ("caption", (_uid(5), 0, 0, 0), root),
        ("caption", (_uid(9), 0, 0, 0), root),
    ]
    entries = result.entries["caption"]
    assert len(entries) == CONFIG.minhash_bands
    assert {entry_node(e) for e in entries} == {root}


def test_local_buckets_verify_captions_before_linking():
    # Identical first 7 signature slots are possible for different captions; a
    # local link needs the exact Jaccard too, so unrelated captions never link.
    rows = [_row(1, "a red circle on a blue background"), _row(2, "two green stars at night")]
    result = local_buckets(ChunkFeatures.from_rows(0, rows), KeyMaker(CONFIG, images=False))
    assert result.edges == []
    assert len(result.entries["caption"]) == 2 * CONFIG.minhash_bands


def test_same_image_bytes_link_whatever_the_caption():
    rows = [
        _row(1, "one caption here", "ab" * 32, "0f" * 8),
        _row(4, "another", "ab" * 32, "0f" * 8),
    ]
    result = local_buckets(ChunkFeatures.from_rows(3, rows), KeyMaker(CONFIG, captions=False))
    first, second = (ChunkFeatures.from_rows(3, rows).node(i) for i in (0, 1))
    assert result.edges == [("image", second, first)]  # two keys (bytes, pixels), one edge


def test_global_buckets_star_every_chunk_leader_to_the_smallest():
    maker = KeyMaker(CONFIG, images=False)
    caption = "a yellow square at the top"
    parts = [
        local_buckets(ChunkFeatures.from_rows(c, [_row(n, caption)]), maker).entries["caption"]
        for c, n in ((0, 30), (1, 10), (2, 20))
    ]
    edges = set(global_buckets("caption", parts, 6))
    root = (_uid(10), 1, 0, 0)
    assert edges == {("caption", (_uid(30), 0, 0, 0), root), ("caption", (_uid(20), 2, 0, 0), root)}


def test_a_caption_shared_by_20000_rows_stays_a_star():
    maker = KeyMaker(CONFIG, images=False)
    caption = "stock photo of a shape on a plain background"
    local_edges, parts = 0, []
    for chunk in range(4):
        rows = [_row(chunk * 5000 + n, caption) for n in range(5000)]
        result = local_buckets(ChunkFeatures.from_rows(chunk, rows), maker)
        local_edges += len(result.edges)
        parts.append(result.entries["caption"])
    assert local_edges == 4 * 4999
    assert sum(len(p) for p in parts) == 4 * CONFIG.minhash_bands
    edges = set(global_buckets("caption", parts, 6))
    assert {edge[2][0] for edge in edges} == {_uid(0)} and len(edges) == 3


def test_pixel_hash_buckets_verify_the_distance():
    base = 0x0123456789ABCDEF
    near = base ^ 0b111  # 3 bits away
    far = base ^ 0xFFFF0000FFFF  # 32 bits away, yet shares bands with base
    rows = [
        _row(n, f"caption {n}", f"{n:016x}" * 4, f"{value:016x}")
        for n, value in ((1, base), (2, near), (3, far))
    ]
    maker = KeyMaker(CONFIG, captions=False, phash_buckets=True)
    features = ChunkFeatures.from_rows(0, rows)
    result = local_buckets(features, maker)
    assert {(a[0], b[0]) for _, a, b in result.edges} == {(_uid(2), _uid(1))}
    assert phash_distance(features.node(0), features.node(1)) == 3
    # Across chunks the entries carry the hash, so the check happens there too.
    parts = [
        local_buckets(ChunkFeatures.from_rows(c, [row]), maker).entries["image_phash"]
        for c, row in enumerate(rows)
    ]
    edges = global_buckets("image_phash", parts, CONFIG.phash_max_distance)
    assert {(a[0], b[0]) for _, a, b in edges} == {(_uid(2), _uid(1))}


def test_uids_ending_in_zero_bytes_survive_the_entry_round_trip():
    uid = "140df5eb686db1e0d75d77c814956300"
    features = ChunkFeatures.from_rows(0, [{**_row(0, "some caption here"), "uid": uid}])
    entries = local_buckets(features, KeyMaker(CONFIG, images=False)).entries["caption"]
    assert {entry_node(e)[0] for e in entries} == {uid}


def test_partitions_split_entries_by_key_and_lose_none():
    entries = np.zeros(100, dtype=ENTRY)
    entries["key"] = np.arange(100, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    parts = partition_entries(entries, 7)
    assert sum(len(p) for p in parts.values()) == 100
    for part, selected in parts.items():
        assert set((selected["key"] % np.uint64(7)).tolist()) == {part}


def test_caption_candidates_are_verified_by_exact_jaccard():
    a, b, c = ((_uid(n), 0, 0, 0) for n in (1, 2, 3))
    captions = {_uid(2): "a red circle on a blue background!", _uid(3): "a blue circle at night"}
    pairs = [
        (a, b, "A red circle on a blue background"),
        (a, c, "A red circle on a blue background"),
    ]
    assert verify_caption_pairs(pairs, captions, 0.8) == [("caption", a, b)]


def test_hashes_wider_than_63_bits_become_signed_for_beam():
    assert signed64(2**64 - 1) == -1 and signed64(5) == 5
    assert phash_distance(("a", 0, 0, signed64(2**64 - 1)), ("b", 0, 0, 0)) == 64


def test_phash_buckets_compare_all_distinct_hashes_not_just_the_first_leaders():
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, 2**63, size=600, dtype=np.uint64)
    hashes[500] = hashes[400] ^ np.uint64(0b101)  # 2 bits from an image far down the bucket
    hashes[550] = hashes[10]  # an exact copy
    links = phash_links(hashes, 6)
    assert (500, 400) in links and (550, 10) in links
    assert all(member > first for member, first in links)
