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
