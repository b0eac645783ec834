"""Semantic dedup (SemDeDup, Abbas et al. 2023) over the Score step's image embeddings.

Near-identical pictures that pHash cannot match (re-framed, re-coloured,
re-composed copies) still have near-identical CLIP image embeddings. The
recipe:

1. k-means (faiss, fixed seed, spherical) over a sample of the embeddings;
2. every pair goes to its nearest centroid;
3. inside one cluster, pairs whose embeddings' cosine similarity is above
   ``--semantic-threshold`` are linked; linked pairs form groups (connected
   components, ``DisjointSets``);
4. one pair of each group stays, by the keeper rule of the other dedup rules
   (``Member.rank``: the larger original image, then the smallest uid); the
   others are dropped as ``semantic_duplicate``.

Comparing only inside a k-means cluster is what makes the all-pairs step
affordable, and it is where the recipe can miss: two copies on either side of
a cluster boundary are never compared. Near-identical embeddings rarely fall
on two sides (their nearest centroid is almost always the same).

A cluster larger than ``--semantic-cluster-cap`` is split before it reaches a
worker, so that no worker holds more than the cap: first by a second k-means
trained on the cluster's own members (``sub_cluster_count`` parts, with
headroom), then, for any part still over the cap, into sub-groups by uid
(``uid_part``). Both splits only ever lose links (a copy and its original in
two parts are not compared), never add one: they cost recall, not precision,
and the uid split costs the most, since it ignores the embeddings. It is the
last resort for a cluster that k-means cannot break (thousands of copies of
one picture).

Everything here is plain Python and numpy over one group at a time; the Beam
steps are ``pipeline.embeddings.semantic_dedup``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import faiss
import numpy as np

from paircurate.transforms.dedup.clusters import DisjointSets
from paircurate.transforms.dedup.decide import Member
from paircurate.transforms.dedup.near_duplicates import Node

KMEANS_SEED = 1234
"""faiss.Kmeans' seed: the same sample gives the same centroids on every run."""
KMEANS_ITERATIONS = 20
PAIRS_PER_CLUSTER = 10_000
"""The automatic number of clusters aims at this many pairs per cluster."""
SAMPLES_PER_CENTROID = 40
"""faiss warns below 39 training points per centroid: fewer make poor centroids."""
SUB_CLUSTER_HEADROOM = 2
"""A split cluster gets this many times more parts than its size needs, since k-means parts are
uneven; any part still over the cap is then split by uid."""
SUB_SAMPLE = 10_000
"""Embeddings the second k-means of one oversized cluster trains on, at most (the cluster's
smallest uids): enough for 250 parts, and a bounded combiner state however many clusters split."""
ASSIGN_BLOCK = 4096
"""Rows compared with every centroid at once."""

Point = tuple[Node, bytes]
"""A scored pair in semantic dedup: its dedup node (uid, chunk, area, pHash) and its image
embedding as the Score step records it (float16 bytes)."""


def unpack(embeddings: Iterable[bytes]) -> np.ndarray:
    """float16 embedding bytes -> (n, d) float32 rows, unit-normalised again after the rounding."""
    rows = [np.frombuffer(blob, dtype=np.float16) for blob in embeddings]
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.stack(rows).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def cluster_count(scored: int, sampled: int, requested: int) -> int:
    """How many k-means clusters: ``requested`` (0: one per ``PAIRS_PER_CLUSTER`` scored pairs),
    never more than the sample trains well, and at least one."""
    if requested:
        return max(1, min(requested, sampled))
    wanted = math.ceil(scored / PAIRS_PER_CLUSTER)
    return max(1, min(wanted, sampled // SAMPLES_PER_CENTROID))


def train_centroids(vectors: np.ndarray, clusters: int) -> np.ndarray:
    """(clusters, d) unit centroids of spherical k-means over ``vectors`` (float32 rows).

    Rows are sorted first (they arrive in no fixed order from a combiner), so
    that the same sample gives the same centroids.
    """
    if len(vectors) == 0:
        raise ValueError("no embeddings to train k-means on")
    vectors = np.ascontiguousarray(vectors[np.lexsort(vectors.T[::-1])], dtype=np.float32)
    clusters = max(1, min(clusters, len(vectors)))
    if clusters == 1:
        mean = vectors.mean(axis=0, keepdims=True)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)
    kmeans = faiss.Kmeans(
        vectors.shape[1],
        clusters,
        niter=KMEANS_ITERATIONS,
        seed=KMEANS_SEED,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, math.ceil(len(vectors) / clusters)),
    )
    kmeans.train(vectors)
    return np.asarray(kmeans.centroids, dtype=np.float32)


def nearest_centroids(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centroid by cosine (the lowest index on a tie)."""
    nearest = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), ASSIGN_BLOCK):
        block = vectors[start : start + ASSIGN_BLOCK]
        nearest[start : start + len(block)] = np.argmax(block @ centroids.T, axis=1)
    return nearest


def sub_cluster_count(size: int, cap: int) -> int:
    """Parts of the second k-means for a cluster of ``size`` pairs: 1 when it fits the cap."""
    if size <= cap:
        return 1
    return SUB_CLUSTER_HEADROOM * math.ceil(size / cap)


def uid_parts(size: int, cap: int) -> int:
    """Sub-groups by uid for a part of ``size`` pairs still over the cap (1 when it fits).

    With the same headroom as the second k-means: a hash spreads uids evenly
    but not exactly, and twice the parts keeps every sub-group under the cap
    with a wide margin.
    """
    if size <= cap:
        return 1
    return SUB_CLUSTER_HEADROOM * math.ceil(size / cap)


def uid_part(uid: str, parts: int) -> int:
    """The uid sub-group of a pair, stable across runs and machines."""
    return zlib.crc32(uid.encode()) % parts if parts > 1 else 0


def link(vectors: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Every pair (i, j), i < j, of rows whose cosine similarity is above ``threshold``.

    An exact search (faiss's flat inner-product range search): the same links
    as comparing every pair with numpy, without the n x n matrix.
    """
    if len(vectors) < 2:
        return []
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    limits, _, neighbours = index.range_search(vectors, float(threshold))
    rows = np.repeat(np.arange(len(vectors)), np.diff(limits.astype(np.int64)))
    neighbours = neighbours.astype(np.int64)
    upper = rows < neighbours
    pairs = np.stack([rows[upper], neighbours[upper]], axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return [(int(a), int(b)) for a, b in pairs]


def groups_of(points: Sequence[Point], threshold: float) -> DisjointSets[int]:
    """Rows of ``points`` in one set per group of linked embeddings.

    Points with the same embedding bytes (the same picture, scored twice) are
    joined at once and compared as one row, so that thousands of copies of one
    image cost one comparison rather than millions of links.
    """
    sets: DisjointSets[int] = DisjointSets()
    first_of: dict[bytes, int] = {}
    distinct: list[int] = []
    for row, (_, embedding) in enumerate(points):
        sets.find(row)
        first = first_of.setdefault(embedding, row)
        if first == row:
            distinct.append(row)
        else:
            sets.union(first, row)
    vectors = unpack(points[row][1] for row in distinct)
    for a, b in link(vectors, threshold):
        sets.union(distinct[a], distinct[b])
    return sets


def decide_group(points: Sequence[Point], threshold: float) -> list[dict]:
    """Semantic dedup of one group of points (a k-means cluster or part of one).

    Returns a decision for every point in a group of two or more: its
    ``semantic_cluster`` (the group's smallest uid) and, for all but the
    keeper, reason ``semantic_duplicate`` and ``duplicate_of`` the keeper.
    Points are sorted by uid first, so the same points give the same
    decisions in any order.
    """
    points = sorted(points, key=lambda point: point[0][0])
    sets = groups_of(points, threshold)
    members: dict[int, list[Member]] = {}
    for row, (node, _) in enumerate(points):
        members.setdefault(sets.find(row), []).append(Member(node))
    decisions = []
    for group in members.values():
        if len(group) < 2:
            continue
        keeper = min(group, key=lambda m: m.rank)
        cluster = min(m.uid for m in group)
        for member in group:
            decisions.append(semantic_decision(member, keeper, cluster, threshold))
    return sorted(decisions, key=lambda d: d["uid"])


def semantic_decision(member: Member, keeper: Member, cluster: str, threshold: float) -> dict:
    """The ledger fields a semantic dedup decision sets (reason None: the group's keeper)."""
    dropped = member.rank != keeper.rank
    return {
        "uid": member.uid,
        "chunk": member.chunk,
        "rule": "semantic",
        "semantic_cluster": cluster,
        "reason": "semantic_duplicate" if dropped else None,
        "reason_detail": (
            f"image embedding within cosine {threshold:g} of the kept pair {keeper.uid}, "
            "directly or through other pairs of its group"
            if dropped
            else None
        ),
        "duplicate_of": keeper.uid if dropped else None,
    }
