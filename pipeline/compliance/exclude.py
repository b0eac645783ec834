"""Beam steps of removal lists and evaluation-set decontamination.

The lists are read once, as packed entries spread over key partitions
(``transforms.compliance.join``); URL and domain entries meet the rows before
Fetch (``ExcludeUrls``: a listed URL is never requested), digest (sha256, md5,
sha1) and pHash entries and evaluation images meet the committed chunks'
measurements in Decide (``MatchImages``: a list added to a finished run costs
no download). Each join is a ``CoGroupByKey`` by partition of compact byte
blobs, so no worker holds more than one partition of a list, and the matches,
few in number, are what comes back: one per row, the first by source and line.

PDQ entries (256-bit hashes matched within a distance of some 31 bits) do not
fit band keys; they are a side input, 32 bytes per entry, that each worker
holds in one binary index (``transforms.compliance.pdq``) and searches with
the PDQ of each image of a chunk (``PdqImagesDoFn``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from paircurate.pipeline import filesystem as fs
from paircurate.schemas.config import ClipConfig
from paircurate.schemas.records import RowCodec
from paircurate.transforms.compliance.evalset import decoded_image, eval_files, read_eval_file
from paircurate.transforms.compliance.join import (
    ENTRY,
    EVAL_KIND,
    KINDS,
    PROBE,
    exact_entries,
    exact_key,
    exact_probes,
    join_partition,
    match_tuples,
    phash_entries,
    phash_probes,
    split_by_partition,
    uid_bytes,
)
from paircurate.transforms.compliance.lists import (
    BEFORE_DOWNLOAD,
    EXACT_DIGESTS,
    ListSpec,
    read_entries,
)
from paircurate.transforms.compliance.pdq import PDQ_ENTRY, PdqMatcher, match_images, pdq_entries
from paircurate.transforms.compliance.rules import (
    Sources,
    cosine_decision,
    decision,
    dropped_row,
    url_probes,
)
from paircurate.transforms.output.store import RawStore, image_member

log = logging.getLogger(__name__)

PARTITIONS = 256
"""Key partitions of a join: a list of a billion entries is ~140 MB packed per partition."""
BATCH = 65_536
BEFORE, AFTER, DISTANCES, PDQ = "before", "after", "distances", "pdq"
PHASH, PDQ_KIND = KINDS.index("phash"), KINDS.index("pdq")


def partitioned_blobs(records: np.ndarray) -> Iterator[tuple[int, bytes]]:
    for part, selected in split_by_partition(records, PARTITIONS).items():
        yield part, selected.tobytes()


class ReadListDoFn(beam.DoFn):
    """(source, spec) -> packed entries by partition: url/domain ones tagged BEFORE, digest and
    pHash ones AFTER; the distinct pHash distances, tagged DISTANCES; pdq entries, tagged PDQ."""

    def __init__(self):
        self.entries = Metrics.counter("paircurate", "compliance_list_entries")

    def process(self, element: tuple[int, ListSpec]) -> Iterator:
        source, spec = element
        distances: set[int] = set()
        exact: dict[str, list] = {BEFORE: [], AFTER: []}
        hashes: list[tuple[int, int, int]] = []
        pdq: list = []
        count = 0
        with fs.open_read(spec.path) as stream:
            for count, entry in enumerate(read_entries(stream, spec), start=1):  # noqa: B007
                if count % BATCH == 0:
                    self.entries.inc(BATCH)
                if entry.kind == "pdq":
                    pdq.append(entry)
                    if len(pdq) >= BATCH:
                        yield beam.pvalue.TaggedOutput(PDQ, pdq_entries(pdq, source).tobytes())
                        pdq = []
                    continue
                if entry.kind == "phash":
                    hashes.append((int(entry.value, 16), entry.distance, entry.line))
                    distances.add(entry.distance)
                    if len(hashes) >= BATCH:
                        yield from self._phash(hashes, source)
                        hashes = []
                    continue
                side = BEFORE if entry.kind in BEFORE_DOWNLOAD else AFTER
                exact[side].append(entry)
                if len(exact[side]) >= BATCH:
                    yield from self._exact(exact[side], source, side)
                    exact[side] = []
        self.entries.inc(count % BATCH)
        for side, batch in exact.items():
            yield from self._exact(batch, source, side)
        yield from self._phash(hashes, source)
        if pdq:
            yield beam.pvalue.TaggedOutput(PDQ, pdq_entries(pdq, source).tobytes())
        for distance in sorted(distances):
            yield beam.pvalue.TaggedOutput(DISTANCES, distance)

    @staticmethod
    def _exact(batch: list, source: int, side: str) -> Iterator:
        for blob in partitioned_blobs(exact_entries(batch, source)):
            yield beam.pvalue.TaggedOutput(side, blob)

    @staticmethod
    def _phash(hashes: list[tuple[int, int, int]], source: int) -> Iterator:
        if hashes:
            values, distances, lines = (np.array(column, dtype=np.uint64) for column in
                                        zip(*hashes, strict=True))  # fmt: skip
            packed = phash_entries(values, distances.astype(np.int64), lines, source, PHASH)
            for blob in partitioned_blobs(packed):
                yield beam.pvalue.TaggedOutput(AFTER, blob)


class ReadEvalSetDoFn(beam.DoFn):
    """(source, location, distance) -> packed pHash entries by partition; names tagged "names"."""

    def __init__(self):
        self.images = Metrics.counter("paircurate", "compliance_eval_images")
        self.unreadable = Metrics.counter("paircurate", "compliance_eval_unreadable")

    def process(self, element: tuple[int, str, int]) -> Iterator:
        source, location, distance = element
        hashes, items = [], []
        item = 0
        for path in eval_files(fs.FILES, location):
            for image in read_eval_file(fs.FILES, path):
                item += 1
                if image.phash is None:
                    self.unreadable.inc()
                    log.warning("evaluation image %s is not an image Pillow can read", image.name)
                    continue
                self.images.inc()
                hashes.append(image.phash)
                items.append(item)
                yield beam.pvalue.TaggedOutput("names", (f"{source}:{item}", image.name))
        packed = phash_entries(
            np.array(hashes, dtype=np.uint64),
            np.full(len(hashes), distance),
            np.array(items, dtype=np.uint64),
            source,
            EVAL_KIND,
        )
        yield from partitioned_blobs(packed)


class ConcatBytesFn(beam.CombineFn):
    """Join the blobs of one key, in front of the shuffle."""

    def create_accumulator(self) -> bytearray:
        return bytearray()

    def add_input(self, buffer: bytearray, blob: bytes) -> bytearray:
        buffer += blob
        return buffer

    def merge_accumulators(self, buffers: Iterable[bytearray]) -> bytearray:
        merged = bytearray()
        for buffer in buffers:
            merged += buffer
        return merged

    def extract_output(self, buffer: bytearray) -> bytes:
        return bytes(buffer)


def _join(element: tuple[int, dict[str, Iterable[bytes]]]) -> Iterator[tuple[str, tuple]]:
    _, groups = element
    entries = np.frombuffer(b"".join(groups["entries"]), dtype=ENTRY)
    probes = np.frombuffer(b"".join(groups["probes"]), dtype=PROBE)
    yield from match_tuples(join_partition(entries, probes))


class Join(beam.PTransform):
    """(entry blobs, probe blobs) by partition -> (uid, first match) of every uid that matched."""

    def expand(self, sides):
        entries, probes = sides
        return (
            {
                "entries": entries | "PackEntries" >> beam.CombinePerKey(ConcatBytesFn()),
                "probes": probes | "PackProbes" >> beam.CombinePerKey(ConcatBytesFn()),
            }
            | "ByPartition" >> beam.CoGroupByKey()
            | "Match" >> beam.FlatMap(_join)
            | "FirstMatch" >> beam.CombinePerKey(min)
        )


class ReadSources(beam.PTransform):
    """The run's lists and eval sets -> tagged outputs BEFORE, AFTER (blobs), DISTANCES, names,
    PDQ (blobs of PDQ_ENTRY records)."""

    def __init__(self, sources: Sources):
        super().__init__()
        self.sources = sources

    def expand(self, pipeline):
        lists = (
            pipeline
            | "Lists" >> beam.Create(list(enumerate(self.sources.lists)))
            | "SpreadLists" >> beam.Reshuffle()
            | "ReadLists"
            >> beam.ParDo(ReadListDoFn()).with_outputs(BEFORE, AFTER, DISTANCES, PDQ, main="none")
        )
        evals = [
            (self.sources.eval_source(i), location, self.sources.eval_distance)
            for i, location in enumerate(self.sources.evalsets)
        ]
        eval_sets = (
            pipeline
            | "EvalSets" >> beam.Create(evals)
            | "ReadEvalSets" >> beam.ParDo(ReadEvalSetDoFn()).with_outputs("names", main="entries")
        )
        eval_distances = pipeline | "EvalDistance" >> beam.Create(
            [self.sources.eval_distance] if evals else []
        )
        return {
            BEFORE: lists[BEFORE],
            AFTER: (lists[AFTER], eval_sets.entries) | "ImageEntries" >> beam.Flatten(),
            DISTANCES: (lists[DISTANCES], eval_distances)
            | "AllDistances" >> beam.Flatten()
            | "Distinct" >> beam.Distinct(),
            "names": eval_sets.names,
            PDQ: lists[PDQ],
        }


def _url_probe_blobs(row: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
    if row.get("status") is None:
        yield from partitioned_blobs(url_probes(row))


def _apply_url_match(element, codec: RowCodec, sources: Sources) -> Iterator[dict]:
    _, groups = element
    matches = list(groups["match"])
    for data in groups["row"]:
        row = codec.decode(data)
        yield dropped_row(row, matches[0], sources, {}) if matches else row


class ExcludeUrls(beam.PTransform):
    """Rows -> the same rows, those whose URL or domain a list names dropped as excluded."""

    def __init__(self, sources: Sources, codec: RowCodec, before):
        super().__init__()
        self.sources, self.codec, self.before = sources, codec, before

    def expand(self, rows):
        probes = rows | "UrlProbes" >> beam.FlatMap(_url_probe_blobs)
        matches = (self.before, probes) | "JoinUrls" >> Join()
        codec = self.codec
        keyed = rows | "ByUid" >> beam.Map(lambda row: (row["uid"], codec.encode(row)))
        return (
            {"row": keyed, "match": matches}
            | "WithMatches" >> beam.CoGroupByKey()
            | "Apply" >> beam.FlatMap(_apply_url_match, codec, self.sources)
        )


def image_probes(rows: list[dict], chunk: int, distances: list[int]) -> np.ndarray:
    """Probes of rows' digests (sha256, md5, sha1) and pHash; ``chunk`` goes into each."""
    exact = [
        exact_probes([exact_key(kind, row[kind]) for kind in EXACT_DIGESTS if row.get(kind)],
                     row["uid"], chunk)
        for row in rows
    ]  # fmt: skip
    hashed = [row for row in rows if row.get("phash")]
    phashes = phash_probes(
        np.array([int(row["phash"], 16) for row in hashed], dtype=np.uint64),
        [uid_bytes(row["uid"]) for row in hashed],
        np.full(len(hashed), chunk),
        distances,
    )
    return np.concatenate([*exact, phashes])


class ImageProbesDoFn(beam.DoFn):
    """chunk -> probes of its fetched rows' digests and pHash, packed by partition."""

    COLUMNS = ["uid", *EXACT_DIGESTS, "phash"]

    def __init__(self, raw: RawStore):
        self.raw = raw

    def process(self, chunk: int, distances: list[int]) -> Iterator[tuple[int, bytes]]:
        yield from partitioned_blobs(
            image_probes(self.raw.rows(chunk, self.COLUMNS), chunk, distances)
        )


class CachedPdqMatcher:
    """The matcher of a PDQ side input, built once per worker for the same side input."""

    def __init__(self):
        self._built: tuple[int, PdqMatcher] | None = None

    def of(self, blobs: list[bytes]) -> PdqMatcher:
        if self._built is None or self._built[0] != id(blobs):
            entries = np.frombuffer(b"".join(blobs), dtype=PDQ_ENTRY)
            self._built = (id(blobs), PdqMatcher(entries))
        return self._built[1]


def pdq_match_tuples(matcher: PdqMatcher, images, chunk: int) -> Iterator[tuple[str, tuple]]:
    """(uid, (source, item, distance, kind, chunk)) of each image a pdq entry matches."""
    for uid, match in match_images(matcher, images):
        entry = matcher.entries[match.entry]
        yield uid, (int(entry["source"]), int(entry["item"]), match.distance, PDQ_KIND, chunk)


class PdqImagesDoFn(beam.DoFn):
    """chunk -> (uid, match) of each of its fetched images near a pdq entry (side input)."""

    def __init__(self, raw: RawStore):
        self.raw = raw
        self.matcher = CachedPdqMatcher()
        self.hashed = Metrics.counter("paircurate", "compliance_pdq_images")

    def process(self, chunk: int, entries: list[bytes]) -> Iterator[tuple[str, tuple]]:
        if not entries:
            return
        rows, tar = self.raw.rows_and_tar(chunk, ["uid", "image_format"])
        with_images = [row for row in rows if row.get("image_format")]
        if tar is None or not with_images:
            return
        names = [image_member(row["uid"], row["image_format"]) for row in with_images]
        images = (
            (row["uid"], data)
            for row, (_, data) in zip(with_images, self.raw.images(tar, names), strict=True)
        )
        self.hashed.inc(len(with_images))
        yield from pdq_match_tuples(self.matcher.of(entries), images, chunk)


class MatchImages(beam.PTransform):
    """Committed chunk indexes -> (chunk, decision) of each fetched row a list or eval set names."""

    def __init__(self, sources: Sources, raw: RawStore, read):
        super().__init__()
        self.sources, self.raw, self.read = sources, raw, read

    def expand(self, chunks):
        distances = beam.pvalue.AsList(self.read[DISTANCES])
        names = beam.pvalue.AsDict(self.read["names"])
        probes = chunks | "ImageProbes" >> beam.ParDo(ImageProbesDoFn(self.raw), distances)
        pdq = chunks | "PdqImages" >> beam.ParDo(
            PdqImagesDoFn(self.raw), beam.pvalue.AsList(self.read[PDQ])
        )
        sources = self.sources
        return (
            ((self.read[AFTER], probes) | "JoinImages" >> Join(), pdq)
            | "AllMatches" >> beam.Flatten()
            | "FirstImageMatch" >> beam.CombinePerKey(min)
            | "Decision" >> beam.Map(lambda m, names: decision(m[0], m[1], sources, names), names)
            | "ByChunk" >> beam.Map(lambda d: (d["chunk"], d))
        )


class EmbedEvalSetDoFn(beam.DoFn):
    """(source, location) -> ("source:item", vector bytes) per image: the eval images embedded
    by the scoring model, numbered as ``ReadEvalSetDoFn`` numbers them."""

    def __init__(self, clip: ClipConfig, batch_size: int = 64):
        self.clip, self.batch_size = clip, batch_size
        self.scorer = None

    def setup(self) -> None:
        from paircurate.transforms.scoring.clip import load_clip

        self.scorer = load_clip(self.clip)

    def process(self, element: tuple[int, str]) -> Iterator[tuple[str, bytes]]:
        source, location = element
        batch: list[tuple[str, Any]] = []
        item = 0
        for path in eval_files(fs.FILES, location):
            for image in read_eval_file(fs.FILES, path):
                item += 1
                decoded = decoded_image(image.image) if image.image is not None else None
                if decoded is None:
                    continue
                batch.append((f"{source}:{item}", decoded))
                if len(batch) == self.batch_size:
                    yield from self._embed(batch)
                    batch = []
        yield from self._embed(batch)

    def _embed(self, batch: list[tuple[str, Any]]) -> Iterator[tuple[str, bytes]]:
        if batch:
            pixels = self.scorer.preprocess_images([image for _, image in batch])
            vectors = self.scorer.embed_images(pixels).astype(np.float32)
            for (key, _), vector in zip(batch, vectors, strict=True):
                yield key, vector.tobytes()


class CosineMatchDoFn(beam.DoFn):
    """(chunk, score record) -> (chunk, decision) where its image embedding is near an eval one."""

    def __init__(self, sources: Sources, threshold: float):
        self.sources, self.threshold = sources, threshold
        self._matrix: tuple[int, list[str], np.ndarray] | None = None

    def _evals(self, embedded: list[tuple[str, bytes]]) -> tuple[list[str], np.ndarray]:
        if self._matrix is None or self._matrix[0] != id(embedded):
            keys = [key for key, _ in embedded]
            vectors = [np.frombuffer(vector, np.float32) for _, vector in embedded]
            matrix = np.stack(vectors) if vectors else np.zeros((0, 1), np.float32)
            self._matrix = (id(embedded), keys, matrix)
        return self._matrix[1], self._matrix[2]

    def process(self, element, embedded: list, names: dict) -> Iterator[tuple[int, dict]]:
        chunk, record = element
        keys, matrix = self._evals(embedded)
        vector = record.get("image_embedding")
        if not keys or vector is None:
            return
        similarity = matrix @ np.frombuffer(vector, np.float16).astype(np.float32)
        best = int(np.argmax(similarity))
        if similarity[best] >= self.threshold:
            found = cosine_decision(record["uid"], chunk, keys[best], float(similarity[best]),
                                    self.sources, names)  # fmt: skip
            yield chunk, found


class MatchEmbeddings(beam.PTransform):
    """(chunk, score record) -> (chunk, decision) for pool images near an eval image in CLIP."""

    def __init__(self, sources: Sources, clip: ClipConfig, threshold: float, read):
        super().__init__()
        self.sources, self.clip, self.threshold, self.read = sources, clip, threshold, read

    def expand(self, scores):
        evals = [(self.sources.eval_source(i), loc) for i, loc in enumerate(self.sources.evalsets)]
        embedded = (
            scores.pipeline
            | "EvalSets" >> beam.Create(evals)
            | "EmbedEvalSets" >> beam.ParDo(EmbedEvalSetDoFn(self.clip))
        )
        return scores | "NearEval" >> beam.ParDo(
            CosineMatchDoFn(self.sources, self.threshold),
            beam.pvalue.AsList(embedded),
            beam.pvalue.AsDict(self.read["names"]),
        )
