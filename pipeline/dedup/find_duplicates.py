"""The Decide step's duplicate clusters: from committed chunks to one decision per member.

Metadata only: every step reads the chunks' raw Parquet (written by Fetch),
never the images. The shape, with what crosses each shuffle:

1. ``Buckets`` (per chunk): bucket keys, local verified edges, and the
   bucket leaders as packed numpy entries per key partition (32-40 bytes a key).
2. ``GlobalBuckets`` (per partition): star edges across chunks; image edges
   verified on the spot, caption candidates sent on.
3. ``VerifyCaptions``: candidates grouped by the chunk of each end, whose
   captions are read from that chunk's raw Parquet; exact Jaccard decides.
4. ``Components``: large-star / small-star rounds over all edges.
5. ``Decide``: members grouped by image cluster (if every image repeat is
   dropped), then by caption cluster; ``transforms.decide`` applies the rules.

The result is a PCollection of (chunk, decision) that Write merges into the
chunk's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from paircurate.pipeline.dedup.connected_components import ConnectedComponents
from paircurate.schemas.config import DedupConfig
from paircurate.schemas.plan import JobPlan
from paircurate.schemas.records import ledger_subset, working_caption
from paircurate.transforms.dedup.decide import (
    Member,
    annotate,
    decide_caption_cluster,
    drop_image_repeats,
)
from paircurate.transforms.dedup.near_duplicates import (
    CAPTION,
    ENTRY,
    IMAGE,
    ChunkFeatures,
    KeyMaker,
    global_buckets,
    local_buckets,
    partition_entries,
    verify_caption_pairs,
)
from paircurate.transforms.output.store import RawStore

FEATURE_COLUMNS = list(ledger_subset(
    "uid", "reason", "caption", "caption_normalized", "original_width", "original_height",
    "sha256", "image_sha256", "phash",
))  # fmt: skip


def read_captions(raw: RawStore, chunk: int) -> dict[str, str]:
    rows = raw.rows(chunk, ["uid", "caption", "caption_normalized"])
    return {row["uid"]: working_caption(row) for row in rows}


class BucketsDoFn(beam.DoFn):
    """chunk -> local edges (tagged "edges") and ((key kind, partition), entry bytes)."""

    def __init__(self, raw: RawStore, maker: KeyMaker):
        self.raw, self.maker = raw, maker
        self.local_edges = Metrics.counter("paircurate", "dedup_local_edges")
        self.entries = Metrics.counter("paircurate", "dedup_entries")
        self.rows = Metrics.counter("paircurate", "dedup_rows")

    def process(self, chunk: int, partitions: int) -> Iterator:
        rows = self.raw.rows(chunk, FEATURE_COLUMNS)
        features = ChunkFeatures.from_rows(chunk, rows)
        self.rows.inc(len(features))
        result = local_buckets(features, self.maker)
        self.local_edges.inc(len(result.edges))
        for edge in result.edges:
            yield beam.pvalue.TaggedOutput("edges", edge)
        for key_kind, entries in result.entries.items():
            self.entries.inc(len(entries))
            for part, selected in partition_entries(entries, max(1, partitions)).items():
                yield (key_kind, part), selected.tobytes()


class GlobalBucketsDoFn(beam.DoFn):
    """((key kind, partition), [entry bytes]) -> image edges, or caption candidates (tagged)."""

    def __init__(self, max_distance: int):
        self.max_distance = max_distance

    def process(self, element: tuple[tuple[str, int], Iterable[bytes]]) -> Iterator:
        (key_kind, _), blobs = element
        parts = [np.frombuffer(blob, dtype=ENTRY) for blob in blobs]
        for edge in global_buckets(key_kind, parts, self.max_distance):
            if edge[0] == CAPTION:
                _, a, b = edge
                yield beam.pvalue.TaggedOutput("candidates", (a[1], (a, b)))
            else:
                yield edge


class AttachCaptionDoFn(beam.DoFn):
    """(chunk of a, [(a, b)]) -> (chunk of b, (a, b, caption of a)), once per distinct pair."""

    def __init__(self, raw: RawStore):
        self.raw = raw

    def process(self, element: tuple[int, Iterable[tuple]]) -> Iterator:
        chunk, pairs = element
        captions = read_captions(self.raw, chunk)
        for a, b in sorted(set(pairs)):
            yield b[1], (a, b, captions[a[0]])


class VerifyCaptionsDoFn(beam.DoFn):
    """(chunk of b, [(a, b, caption of a)]) -> the caption edges whose Jaccard passes."""

    def __init__(self, raw: RawStore, threshold: float):
        self.raw, self.threshold = raw, threshold
        self.rejected = Metrics.counter("paircurate", "dedup_candidates_rejected")

    def process(self, element: tuple[int, Iterable[tuple]]) -> Iterator:
        chunk, items = element
        items = list(items)
        verified = verify_caption_pairs(items, read_captions(self.raw, chunk), self.threshold)
        self.rejected.inc(len(items) - len(verified))
        yield from verified


def to_member(element: tuple[str, Iterable[tuple]]) -> Member:
    """(uid, [(kind, node, root)]) -> the Member with the roots of its clusters."""
    _, labels = element
    roots, node = {}, None
    for kind, labelled, root in labels:
        roots[kind], node = root[0], labelled
    return Member(node, caption_root=roots.get(CAPTION), image_root=roots.get(IMAGE))


def _image_step(element: tuple[str, Iterable[Member]]) -> Iterator:
    _, members = element
    dropped, survivors = drop_image_repeats(members)
    for row in dropped:
        yield beam.pvalue.TaggedOutput("decided", row)
    yield from survivors


def _caption_step(element: tuple[str, Iterable[Member]], config: DedupConfig) -> Iterator[dict]:
    _, members = element
    return decide_caption_cluster(members, config)


class FindDuplicates(beam.PTransform):
    """Committed chunk indexes -> (chunk, decision) for every row in a duplicate cluster."""

    def __init__(self, config: DedupConfig, raw: RawStore, partitions, plan: JobPlan):
        super().__init__()
        self.config, self.raw, self.partitions = config, raw, partitions
        self.maker = KeyMaker(
            config,
            captions=plan.caption_keys,
            images=plan.image_keys,
            phash_buckets=plan.phash_buckets,
        )

    def expand(self, chunks):
        buckets = chunks | "Buckets" >> beam.ParDo(
            BucketsDoFn(self.raw, self.maker), self.partitions
        ).with_outputs("edges", main="entries")
        found = (
            buckets.entries
            | "GroupBuckets" >> beam.GroupByKey()
            | "GlobalBuckets"
            >> beam.ParDo(GlobalBucketsDoFn(self.config.phash_max_distance)).with_outputs(
                "candidates", main="edges"
            )
        )
        caption_edges = (
            found.candidates
            | "ByFirstChunk" >> beam.GroupByKey()
            | "AttachCaption" >> beam.ParDo(AttachCaptionDoFn(self.raw))
            | "BySecondChunk" >> beam.GroupByKey()
            | "VerifyCaptions"
            >> beam.ParDo(VerifyCaptionsDoFn(self.raw, self.config.caption_threshold))
        )
        rounds = self.config.cluster_rounds
        members = (
            (buckets.edges, found.edges, caption_edges)
            | "AllEdges" >> beam.Flatten()
            | "Components" >> ConnectedComponents(rounds)
            | "ByUid" >> beam.Map(lambda label: (label[1][0], label))
            | "GroupLabels" >> beam.GroupByKey()
            | "Members" >> beam.Map(to_member)
        )
        return members | "Decide" >> DecideClusters(self.config)


class DecideClusters(beam.PTransform):
    """Members -> (chunk, decision), by the rules of ``transforms.decide``."""

    def __init__(self, config: DedupConfig):
        super().__init__()
        self.config = config

    def expand(self, members):
        decided = []
        if self.config.drop_image_repeats:
            with_image = members | "WithImage" >> beam.Filter(lambda m: m.image_root is not None)
            image_step = (
                with_image
                | "ByImage" >> beam.Map(lambda m: (m.image_root, m))
                | "GroupImages" >> beam.GroupByKey()
                | "ImageRepeats" >> beam.FlatMap(_image_step).with_outputs("decided", main="kept")
            )
            decided.append(image_step.decided)
            without = members | "WithoutImage" >> beam.Filter(lambda m: m.image_root is None)
            members = (image_step.kept, without) | "Survivors" >> beam.Flatten()
        decided.append(
            members
            | "InCaptionCluster" >> beam.Filter(lambda m: m.caption_root is not None)
            | "ByCaption" >> beam.Map(lambda m: (m.caption_root, m))
            | "GroupCaptions" >> beam.GroupByKey()
            | "CaptionRules" >> beam.FlatMap(_caption_step, self.config)
        )
        decided.append(
            members
            | "ImageOnly" >> beam.Filter(lambda m: m.caption_root is None)
            | "Annotate" >> beam.FlatMap(lambda m: annotate([m]))
        )
        return (
            decided
            | "AllDecisions" >> beam.Flatten()
            | "ByChunk" >> beam.Map(lambda d: (d["chunk"], d))
        )
