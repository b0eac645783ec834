"""The SemanticDedup step's keys for oversized clusters, called directly (no pipeline)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from paircurate.pipeline.embeddings.semantic_dedup import (
    AssignDoFn,
    centroids_of,
    group_key,
    split_key,
    sub_centroids_of,
)


def points(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        ((f"{i:032x}", 0, 100, 0), v.astype(np.float16).tobytes()) for i, v in enumerate(vectors)
    ]


def test_every_group_fits_the_cap_after_both_splits():
    cap = 50
    pts = points(600)
    centroids = centroids_of([(p[0][0], p[1]) for p in pts], scored=600, requested=2)
    assigned = list(AssignDoFn().process(pts, centroids))
    sizes = Counter(cluster for cluster, _ in assigned)
    assert sum(sizes.values()) == 600 and max(sizes.values()) > cap
    sub = dict(
        sub_centroids_of(
            (cluster, [(p[0][0], p[1]) for c, p in assigned if c == cluster]), sizes, cap
        )
        for cluster in sizes
        if sizes[cluster] > cap
    )
    parts = [split_key(element, sub) for element in assigned]
    part_sizes = Counter(key for key, _ in parts)
    groups = Counter(key for key, _ in (group_key(element, part_sizes, cap) for element in parts))
    assert sum(groups.values()) == 600
    assert max(groups.values()) <= cap
    assert len(part_sizes) > len(sizes)


def test_no_points_no_centroids():
    assert centroids_of([], scored=0, requested=0) is None


class RowsOnly:
    """The part of a RawStore that SemanticDedup reads: each chunk's rows."""

    def __init__(self, rows: dict[int, list[dict]]):
        self.chunk_rows = rows

    def rows(self, chunk: int, columns=None) -> list[dict]:
        return self.chunk_rows[chunk]


def labelled_scores(scenes: int, copies: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(scenes, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    of = rng.choice(scenes, size=copies, replace=False)
    moved = vectors[of] + 0.01 * rng.normal(size=(copies, 16))
    vectors = np.vstack([vectors, moved / np.linalg.norm(moved, axis=1, keepdims=True)])
    labels = np.concatenate([np.arange(scenes), of])
    rows, scores = {}, []
    for i, vector in enumerate(vectors):
        uid, chunk = f"{i:032x}", i % 4
        rows.setdefault(chunk, []).append(
            {"uid": uid, "reason": None, "original_width": 10, "original_height": 10 + i % 7,
             "phash": None}
        )  # fmt: skip
        record = {
            "uid": uid,
            "clip_score": 0.5,
            "image_embedding": vector.astype(np.float16).tobytes(),
        }
        scores.append((chunk, record))
    return RowsOnly(rows), scores, labels


def test_semantic_dedup_step_with_split_clusters():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that

    from paircurate.pipeline.embeddings.semantic_dedup import SemanticDedup
    from paircurate.schemas.config import DedupConfig

    raw, scores, labels = labelled_scores(400, 60)
    config = DedupConfig(
        semantic_dedup=True, semantic_threshold=0.95, semantic_clusters=2, semantic_cluster_cap=40
    )
    with TestPipeline(runner="FnApiRunner") as pipeline:
        decisions = pipeline | beam.Create(scores) | SemanticDedup(config, raw)
        assert_that(decisions, lambda found: check_split_decisions(found, labels))


def check_split_decisions(found: list, labels: np.ndarray) -> None:
    by_uid = {decision["uid"]: decision for _, decision in found}
    assert len(by_uid) == len(found)  # one decision per pair
    groups: dict[str, set[int]] = {}
    for chunk, decision in found:
        assert chunk == decision["chunk"] == int(decision["uid"], 16) % 4
        groups.setdefault(decision["semantic_cluster"], set()).add(int(decision["uid"], 16))
    # Splits lose links, never add one: each group is one scene, dropped copies are copies.
    for rows in groups.values():
        assert len({int(labels[row]) for row in rows}) == 1
    dropped = [d for _, d in found if d["reason"] == "semantic_duplicate"]
    assert 40 <= len(dropped) <= 60  # most of the 60 copies survive the splits
    keeper_rank = {uid: (-(10 * (10 + int(uid, 16) % 7)), uid) for uid in by_uid}
    for decision in dropped:
        assert keeper_rank[decision["duplicate_of"]] < keeper_rank[decision["uid"]]
