"""``paircurate remove``: take what removal lists match out of a finished run, and publish it.

    paircurate remove RUN --exclude md5:iwf.txt --exclude pdq:c3p.csv
    paircurate remove COPY --diff RUN/removed.parquet

Nothing is downloaded: the lists meet what the run recorded. URL, domain,
digest (sha256, md5, sha1) and pHash entries meet the ledger's columns in the
same partitioned join a run uses (``exclude.Join``); pdq entries meet the PDQ
of the run's images, read from its shards (kept rows) and raw shards (the
others). ``--diff`` takes the matches from a published removed.parquet
instead, so a copy of the run is cleaned row for row as the original was.

Each removal raises the run's version by one. Before anything changes, the
request is written to DIR/removing/vN/ and each part's records beside it, so
a retried bundle or a rerun of the same command finishes the same removal
(``transforms.output.rewrite``); a different request is refused until then.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq

from paircurate.pipeline.compliance.exclude import (
    AFTER,
    BEFORE,
    DISTANCES,
    PDQ,
    CachedPdqMatcher,
    Join,
    ReadSources,
    image_probes,
    partitioned_blobs,
    pdq_match_tuples,
)
from paircurate.pipeline.output.write_outputs import today
from paircurate.transforms.compliance.join import KINDS
from paircurate.transforms.compliance.lists import EXACT_DIGESTS
from paircurate.transforms.compliance.removal import ListMatch, removable
from paircurate.transforms.compliance.rules import Sources, url_probes
from paircurate.transforms.output.removed import finish_removal
from paircurate.transforms.output.rewrite import PartOutcome, PartRewriter
from paircurate.transforms.output.shards import pick_members, shard_name
from paircurate.transforms.output.store import OutputLayout, RawStore, image_member

PROBED = ("uid", "url", "status", "reason", "image_format", "key", *EXACT_DIGESTS, "phash")


def ledger_rows(layout: OutputLayout, part: str) -> list[dict[str, Any]]:
    """The part's rows that could leave the dataset, with the columns matching needs."""
    path = layout.ledger_part(part)
    with layout.files.open_read(path) as stream:
        names = pq.read_schema(stream).names
    with layout.files.open_read(path) as stream:
        table = pq.read_table(stream, columns=[name for name in PROBED if name in names])
    return [row for row in table.to_pylist() if removable(row)]


class LedgerProbesDoFn(beam.DoFn):
    """part -> probes of its rows' URL, domains, digests and pHash, packed by partition."""

    def __init__(self, layout: OutputLayout):
        self.layout = layout

    def process(self, part: str, distances: list[int]) -> Iterator[tuple[int, bytes]]:
        rows = ledger_rows(self.layout, part)
        if rows:
            probes = np.concatenate([*(url_probes(row) for row in rows),
                                     image_probes(rows, int(part), distances)])  # fmt: skip
            probes["chunk"] = int(part)
            yield from partitioned_blobs(probes)


class PartPdqDoFn(beam.DoFn):
    """part -> (uid, match) of its images near a pdq entry: kept ones from the shard, the
    others from the raw shard where the run still has it."""

    def __init__(self, layout: OutputLayout, raw: RawStore | None):
        self.layout, self.raw = layout, raw
        self.matcher = CachedPdqMatcher()

    def process(self, part: str, entries: list[bytes]) -> Iterator[tuple[str, tuple]]:
        if not entries:
            return
        rows = [row for row in ledger_rows(self.layout, part) if row.get("image_format")]
        kept = {f"{row['key']}.{row['image_format']}": row["uid"] for row in rows if row["key"]}
        raw = {image_member(row["uid"], row["image_format"]): row["uid"] for row in rows
               if not row["key"]}  # fmt: skip
        raw_tar = self.raw.tar_of(int(part)) if raw and self.raw is not None else None
        images = itertools.chain(
            self._read(self.layout.shard_tar(part), kept), self._read(raw_tar, raw)
        )  # one image in memory at a time
        yield from pdq_match_tuples(self.matcher.of(entries), images, int(part))

    def _read(self, tar: str | None, names: Mapping[str, str]) -> Iterator[tuple[str, bytes]]:
        """(uid, image bytes) of the named members of ``tar`` that it holds."""
        if not names or tar is None or not self.layout.files.exists(tar):
            return
        with self.layout.files.open_read(tar) as stream:
            for name, data in pick_members(stream, names):
                yield names[name], data


def list_match(match: tuple, sources: Sources) -> ListMatch:
    """A join's (source, item, distance, kind, chunk) as the entry it names."""
    source, item, distance, kind, _ = match
    return ListMatch(KINDS[kind], sources.path(source), int(item), int(distance))


class MatchLists(beam.PTransform):
    """Part names -> (part, {uid: ListMatch}) for every part, matched against the lists."""

    def __init__(self, sources: Sources, layout: OutputLayout, raw: RawStore | None):
        super().__init__()
        self.sources, self.layout, self.raw = sources, layout, raw

    def expand(self, parts):
        read = parts.pipeline | "ReadLists" >> ReadSources(self.sources)
        distances = beam.pvalue.AsList(read[DISTANCES])
        probes = parts | "LedgerProbes" >> beam.ParDo(LedgerProbesDoFn(self.layout), distances)
        entries = (read[BEFORE], read[AFTER]) | "AllEntries" >> beam.Flatten()
        pdq = parts | "PdqImages" >> beam.ParDo(
            PartPdqDoFn(self.layout, self.raw), beam.pvalue.AsList(read[PDQ])
        )
        sources = self.sources
        matches = (
            ((entries, probes) | "JoinLedger" >> Join(), pdq)
            | "AllMatches" >> beam.Flatten()
            | "FirstMatch" >> beam.CombinePerKey(min)
            | "ByPart"
            >> beam.Map(lambda m: (shard_name(m[1][4]), (m[0], list_match(m[1], sources))))
        )
        return (
            {"part": parts | "Keyed" >> beam.Map(lambda name: (name, None)), "matches": matches}
            | "WithMatches" >> beam.CoGroupByKey()
            | "AsDicts" >> beam.Map(lambda item: (item[0], dict(item[1]["matches"])))
        )


class RemoveFromPartDoFn(beam.DoFn):
    """(part, {uid: ListMatch}) -> the part's PartOutcome, once its files are rewritten;
    ``diff`` (a side input) adds a published diff's matches."""

    def __init__(self, rewriter: PartRewriter):
        self.rewriter = rewriter

    def process(self, element, diff: Mapping[str, ListMatch] | None = None) -> Iterator:
        part, matches = element
        lookup = collections.ChainMap(matches, diff or {})
        records = self.rewriter.records(part, lookup)
        if records:
            yield self.rewriter.apply(part, records)


class FinishRemovalDoFn(beam.DoFn):
    def __init__(self, layout: OutputLayout, version: int, request: dict[str, Any]):
        self.layout, self.version, self.request = layout, version, request

    def process(self, outcomes: list[PartOutcome]) -> Iterator[dict]:
        yield finish_removal(self.layout, self.version, outcomes, self.request, today())


def build_removal(pipeline, rewriter: PartRewriter, parts: list[str], request: dict, matching):
    """Add one removal to ``pipeline``: ``matching`` is Sources (lists) or {uid: ListMatch}."""
    layout = rewriter.layout
    names = pipeline | "Parts" >> beam.Create(parts) | "Spread" >> beam.Reshuffle()
    if isinstance(matching, Sources):
        matched = names | "MatchLists" >> MatchLists(matching, layout, rewriter.raw)
        outcomes = matched | "RemoveFromParts" >> beam.ParDo(RemoveFromPartDoFn(rewriter))
    else:
        diff = pipeline | "Diff" >> beam.Create(sorted(matching.items()))
        outcomes = (
            names
            | "NoMatches" >> beam.Map(lambda name: (name, {}))
            | "RemoveFromParts"
            >> beam.ParDo(RemoveFromPartDoFn(rewriter), beam.pvalue.AsDict(diff))
        )
    return (
        outcomes
        | "Outcomes" >> beam.combiners.ToList()
        | "Finish" >> beam.ParDo(FinishRemovalDoFn(layout, rewriter.version, request))
    )
