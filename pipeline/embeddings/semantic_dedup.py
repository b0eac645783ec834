"""The SemanticDedup step: semantic duplicate groups over the Score step's image embeddings.

Metadata and embeddings only (one small record per scored pair); the recipe
and its trade-offs are in ``transforms.embeddings.semantic``. The shape:

1. ``Points``: score records grouped by chunk meet the chunk's raw Parquet
   (for the keeper rule's image area): (node, embedding) per scored pair.
2. ``Centroids``: the ``--semantic-sample`` points with the smallest uids (a
   uniform sample, since uids are hashes, and the same on every run) train
   k-means on one worker; the centroids reach the others as a side input.
3. ``Assign``: each point's nearest centroid; clusters over
   ``--semantic-cluster-cap`` points get a second k-means from their own
   smallest-uid points, then sub-groups by uid for any part still too large.
4. ``Groups``: one group per (cluster, part); ``decide_group`` links, finds
   components and picks keepers.

The result is a PCollection of (chunk, decision), flattened with the Decide
step's decisions; each carries ``rule: "semantic"``, which Write applies after
them (``transforms.output.finalize``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from paircurate.schemas.config import DedupConfig
from paircurate.schemas.records import ledger_subset
from paircurate.transforms.dedup.near_duplicates import ChunkFeatures
from paircurate.transforms.embeddings.semantic import (
    SUB_SAMPLE,
    Point,
    cluster_count,
    decide_group,
    nearest_centroids,
    sub_cluster_count,
    train_centroids,
    uid_part,
    uid_parts,
    unpack,
)
from paircurate.transforms.output.store import RawStore

POINT_COLUMNS = list(ledger_subset("uid", "reason", "original_width", "original_height", "phash"))


class PointsDoFn(beam.DoFn):
    """(chunk, [score record]) -> (node, image embedding) per scored pair still in play."""

    def __init__(self, raw: RawStore):
        self.raw = raw
        self.points = Metrics.counter("paircurate", "semantic_points")
        self.missing = Metrics.counter("paircurate", "semantic_without_embedding")

    def process(self, element: tuple[int, Iterable[dict]]) -> Iterator[Point]:
        chunk, records = element
        features = ChunkFeatures.from_rows(chunk, self.raw.rows(chunk, POINT_COLUMNS))
        position = {uid: i for i, uid in enumerate(features.uids)}
        for record in sorted(records, key=lambda r: r["uid"]):
            index = position.get(record["uid"])
            embedding = record.get("image_embedding")
            if index is None or embedding is None:
                self.missing.inc()
                continue
            self.points.inc()
            yield features.node(index), embedding


def centroids_of(sample: list[tuple[str, bytes]], scored: int, requested: int) -> np.ndarray | None:
    """The k-means centroids of the sampled (uid, embedding)s; None when nothing was scored."""
    if not sample:
        return None
    vectors = unpack(embedding for _, embedding in sorted(sample))
    return train_centroids(vectors, cluster_count(scored, len(vectors), requested))


def sub_centroids_of(
    element: tuple[int, list[tuple[str, bytes]]], sizes: dict[int, int], cap: int
) -> tuple[int, np.ndarray]:
    """(cluster, the centroids of its second k-means), for a cluster over the cap."""
    cluster, sample = element
    vectors = unpack(embedding for _, embedding in sorted(sample))
    return cluster, train_centroids(vectors, sub_cluster_count(sizes[cluster], cap))


class AssignDoFn(beam.DoFn):
    """[point] -> (cluster, point): each point's nearest centroid, a batch at a time."""

    def process(self, points: list[Point], centroids: np.ndarray) -> Iterator[tuple[int, Point]]:
        nearest = nearest_centroids(unpack(embedding for _, embedding in points), centroids)
        for point, cluster in zip(points, nearest, strict=True):
            yield int(cluster), point


def split_key(
    element: tuple[int, Point], sub_centroids: dict[int, np.ndarray]
) -> tuple[tuple[int, int], Point]:
    """(cluster, point) -> ((cluster, part of its second k-means, 0 if none), point)."""
    cluster, point = element
    centroids = sub_centroids.get(cluster)
    if centroids is None:
        return (cluster, 0), point
    part = nearest_centroids(unpack([point[1]]), centroids)[0]
    return (cluster, int(part)), point


def group_key(
    element: tuple[tuple[int, int], Point], sizes: dict[tuple[int, int], int], cap: int
) -> tuple[tuple[int, int, int], Point]:
    """((cluster, part), point) -> ((cluster, part, uid sub-group), point)."""
    (cluster, part), point = element
    parts = uid_parts(sizes[(cluster, part)], cap)
    return (cluster, part, uid_part(point[0][0], parts)), point


def sizes_of(keyed, label: str):
    """Side input: key -> how many elements have it."""
    return beam.pvalue.AsDict(
        keyed | f"{label}Ones" >> beam.Map(lambda kv: (kv[0], 1))
        | f"{label}Sizes" >> beam.CombinePerKey(sum)
    )  # fmt: skip


class DecideGroupDoFn(beam.DoFn):
    """((cluster, part, sub-group), [point]) -> (chunk, decision) per duplicate group member."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.groups = Metrics.distribution("paircurate", "semantic_group_points")
        self.dropped = Metrics.counter("paircurate", "semantic_duplicates")

    def process(self, element: tuple[tuple, Iterable[Point]]) -> Iterator[tuple[int, dict]]:
        _, points = element
        points = list(points)
        self.groups.update(len(points))
        for decision in decide_group(points, self.threshold):
            if decision["reason"] is not None:
                self.dropped.inc()
            yield decision["chunk"], decision


class SemanticDedup(beam.PTransform):
    """(chunk, score record with image_embedding) -> (chunk, semantic decision)."""

    def __init__(self, config: DedupConfig, raw: RawStore):
        super().__init__()
        self.config, self.raw = config, raw

    def expand(self, scores):
        config, cap = self.config, self.config.semantic_cluster_cap
        points = (
            scores | "ByChunk" >> beam.GroupByKey() | "Points" >> beam.ParDo(PointsDoFn(self.raw))
        )
        scored = beam.pvalue.AsSingleton(points | "Count" >> beam.combiners.Count.Globally())
        centroids = beam.pvalue.AsSingleton(
            points
            | "SampleKeys" >> beam.Map(lambda point: (point[0][0], point[1]))
            | "Sample" >> beam.combiners.Top.Smallest(config.semantic_sample)
            | "Centroids" >> beam.Map(centroids_of, scored, config.semantic_clusters)
        )
        assigned = (
            points
            | "Batch" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
            | "Assign" >> beam.ParDo(AssignDoFn(), centroids)
        )
        sizes = sizes_of(assigned, "Cluster")
        sub_centroids = beam.pvalue.AsDict(
            assigned
            | "Oversized" >> beam.Filter(lambda kv, sizes: sizes[kv[0]] > cap, sizes)
            | "SubSampleKeys" >> beam.Map(lambda kv: (kv[0], (kv[1][0][0], kv[1][1])))
            | "SubSample"
            >> beam.combiners.Top.SmallestPerKey(min(SUB_SAMPLE, config.semantic_sample))
            | "SubCentroids" >> beam.Map(sub_centroids_of, sizes, cap)
        )
        parts = assigned | "Split" >> beam.Map(split_key, sub_centroids)
        part_sizes = sizes_of(parts, "Part")
        return (
            parts
            | "GroupKey" >> beam.Map(group_key, part_sizes, cap)
            | "Group" >> beam.GroupByKey()
            | "DecideGroups" >> beam.ParDo(DecideGroupDoFn(config.semantic_threshold))
        )
