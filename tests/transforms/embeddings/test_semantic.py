"""Semantic dedup's plain-Python parts: k-means assignment, links, splits, keepers."""

from __future__ import annotations

import numpy as np
import pytest

from paircurate.transforms.embeddings.semantic import (
    cluster_count,
    decide_group,
    link,
    nearest_centroids,
    sub_cluster_count,
    train_centroids,
    uid_part,
    uid_parts,
    unpack,
)

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def labelled_embeddings(scenes: int, copies: int, seed: int = 0):
    """Distinct scenes (random directions) and near-identical copies of some (cosine > 0.98)."""
    rng = np.random.default_rng(seed)
    originals = unit(rng.normal(size=(scenes, DIM)))
    copies_of = rng.choice(scenes, size=copies, replace=False)
    noisy = unit(originals[copies_of] + 0.02 * rng.normal(size=(copies, DIM)))
    vectors = np.vstack([originals, noisy])
    labels = np.concatenate([np.arange(scenes), copies_of])
    return vectors, labels


def points_of(vectors: np.ndarray, areas=None):
    areas = areas if areas is not None else [100] * len(vectors)
    return [
        ((f"{i:032x}", i % 3, int(areas[i]), 0), v.astype(np.float16).tobytes())
        for i, v in enumerate(vectors)
    ]


def test_unpack_renormalises_float16_rows():
    vectors = unit(np.random.default_rng(1).normal(size=(5, DIM)))
    back = unpack(v.astype(np.float16).tobytes() for v in vectors)
    assert back.dtype == np.float32 and back.shape == (5, DIM)
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(back, vectors, atol=2e-3)


def test_cluster_count_follows_the_data_and_the_sample():
    assert cluster_count(scored=5, sampled=5, requested=0) == 1
    assert cluster_count(scored=1_000_000, sampled=100_000, requested=0) == 100
    assert cluster_count(scored=10**9, sampled=100_000, requested=0) == 2500
    assert cluster_count(scored=1000, sampled=10, requested=50) == 10


def test_kmeans_is_seeded_and_assigns_each_point_to_its_nearest_centroid():
    vectors, _ = labelled_embeddings(400, 0)
    first = train_centroids(vectors, 8)
    again = train_centroids(vectors[::-1].copy(), 8)  # order does not matter
    np.testing.assert_array_equal(first, again)
    assert first.shape == (8, DIM)
    nearest = nearest_centroids(vectors, first)
    brute = np.argmax(vectors @ first.T, axis=1)
    np.testing.assert_array_equal(nearest, brute)
    assert len(set(nearest.tolist())) == 8


def test_one_cluster_is_the_normalised_mean():
    vectors = unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(train_centroids(vectors, 1), unit(np.array([[1.0, 1.0]])))
    with pytest.raises(ValueError, match="no embeddings"):
        train_centroids(np.zeros((0, 2), np.float32), 3)


def test_link_gives_the_all_pairs_links():
    vectors, _ = labelled_embeddings(300, 60, seed=2)
    similarity = vectors @ vectors.T
    for threshold in (0.5, 0.9, 0.98):
        rows, columns = np.nonzero(np.triu(similarity > threshold, 1))
        expected = [(int(a), int(b)) for a, b in zip(rows, columns, strict=True)]
        assert link(vectors, threshold) == expected
    assert link(vectors[:1], 0.5) == []


def test_groups_hold_the_labelled_copies_and_no_distinct_scene():
    vectors, labels = labelled_embeddings(500, 120, seed=3)
    decisions = decide_group(points_of(vectors), threshold=0.95)
    uid_row = {f"{i:032x}": i for i in range(len(vectors))}
    groups: dict[str, set[int]] = {}
    for decision in decisions:
        groups.setdefault(decision["semantic_cluster"], set()).add(uid_row[decision["uid"]])
    # Every copy is grouped with its original, and a group is one scene.
    assert len(groups) == 120
    for rows in groups.values():
        assert len({int(labels[row]) for row in rows}) == 1
    dropped = [d for d in decisions if d["reason"] == "semantic_duplicate"]
    assert len(dropped) == 120


def test_keeper_is_the_larger_image_then_the_smaller_uid():
    base = unit(np.random.default_rng(4).normal(size=(1, DIM)))
    shifts = np.array([0, 1e-3, 2e-3, 3e-3], dtype=np.float32)[:, None]
    vectors = unit(np.repeat(base, 4, axis=0) + shifts)
    decisions = decide_group(points_of(vectors, areas=[50, 200, 200, 10]), 0.95)
    by_uid = {d["uid"]: d for d in decisions}
    keeper = f"{1:032x}"  # largest area; uid 1 before uid 2 at the same area
    assert by_uid[keeper]["reason"] is None and by_uid[keeper]["duplicate_of"] is None
    for uid, decision in by_uid.items():
        assert decision["semantic_cluster"] == f"{0:032x}"  # the group's smallest uid
        assert decision["rule"] == "semantic"
        if uid != keeper:
            assert decision["reason"] == "semantic_duplicate"
            assert decision["duplicate_of"] == keeper
    assert [d["chunk"] for d in decisions] == [0, 1, 2, 0]


def test_links_are_transitive_and_order_free():
    # a ~ b and b ~ c but not a ~ c: one group of three
    angle = np.deg2rad([0.0, 14.0, 28.0])
    vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
    points = points_of(vectors)
    forward = decide_group(points, threshold=0.96)
    backward = decide_group(points[::-1], threshold=0.96)
    assert forward == backward
    assert {d["semantic_cluster"] for d in forward} == {f"{0:032x}"}
    assert sum(d["reason"] is not None for d in forward) == 2


def test_identical_embeddings_join_without_pairwise_links():
    vector = unit(np.ones((1, DIM)))
    points = points_of(np.repeat(vector, 3000, axis=0))
    decisions = decide_group(points, threshold=0.99)
    assert len(decisions) == 3000
    assert sum(d["reason"] is None for d in decisions) == 1


def test_singletons_get_no_decision():
    vectors, _ = labelled_embeddings(50, 0, seed=5)
    assert decide_group(points_of(vectors), threshold=0.95) == []


def test_splitting_keeps_every_part_under_the_cap():
    assert sub_cluster_count(100, 100) == 1
    assert sub_cluster_count(101, 100) == 4
    assert uid_parts(99, 100) == 1 and uid_parts(250, 100) == 6
    uids = [f"{i:032x}" for i in range(3000)]
    parts = [uid_part(uid, 3) for uid in uids]
    assert set(parts) == {0, 1, 2}
    assert max(np.bincount(parts)) < 1100  # crc32 spreads uids evenly
    assert parts == [uid_part(uid, 3) for uid in uids]
    assert uid_part(uids[0], 1) == 0


def test_second_kmeans_keeps_near_duplicates_together():
    vectors, labels = labelled_embeddings(2000, 300, seed=6)
    centroids = train_centroids(vectors, sub_cluster_count(len(vectors), 500))
    parts = nearest_centroids(vectors, centroids)
    copies = np.arange(2000, 2300)
    together = parts[copies] == parts[labels[copies]]
    assert together.mean() > 0.95
    assert np.bincount(parts).max() < len(vectors)
