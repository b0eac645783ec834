"""The curation job graph: Read -> CheckUrls -> Captions -> Fetch (with URL dedup) -> Write.

With --text-only the job stops after the metadata stages: Read -> CheckUrls ->
Captions -> URL dedup -> ledger and surviving metadata, with nothing downloaded.

Image bytes never pass through a shuffle: they stay in the raw shard a Fetch
worker committed, and the Write worker of the same chunk reads them back from
there, together with the chunk's rows and measurements. What does cross
shuffles is the input rows on their way to Fetch, packed as compact bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

import apache_beam as beam

from paircurate.pipeline import io
from paircurate.pipeline.captions import Captions
from paircurate.pipeline.fetch import FetchChunkDoFn
from paircurate.pipeline.grouping import GroupRows
from paircurate.pipeline.read import InputPlan, ReadFileDoFn
from paircurate.pipeline.write import (
    FinalizeDoFn,
    MergeSummariesFn,
    WriteShardDoFn,
    WriteTextOnlyDoFn,
)
from paircurate.schemas.config import JobConfig
from paircurate.schemas.records import RowCodec, ledger_schema
from paircurate.transforms.dedup import url_digest
from paircurate.transforms.ledger import drop
from paircurate.transforms.shards import chunk_count, chunk_of
from paircurate.transforms.urls import url_problem


def fetch_fingerprint(config: JobConfig) -> str:
    """Raw shards are reusable only by a run with the same fetch options."""
    options = {"download": asdict(config.download), "image": asdict(config.image)}
    options["download"].pop("download_threads")
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def raw_dir_of(config: JobConfig) -> str:
    return io.join(config.output.output, "fetch", fetch_fingerprint(config))


def check_url(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("status") is None:
        problem = url_problem(row["url"])
        if problem is not None:
            drop(row, *problem)
    return row


def is_pending(row: dict[str, Any]) -> bool:
    return row.get("status") is None


def fetch_chunk_key(row: dict[str, Any], chunks: int) -> int:
    """A fetchable row's chunk, by the hash of its normalised URL (recorded in the ledger)."""
    row["chunk"] = chunk_of(url_digest(row["url"]), chunks)
    return row["chunk"]


def ledger_chunk_key(row: dict[str, Any], chunks: int) -> int:
    """The ledger part a row goes to: its fetch chunk, or by uid if it was never fetched."""
    if row.get("chunk") is None:
        row["chunk"] = chunk_of(row["uid"], chunks)
    return row["chunk"]


class Fetch(beam.PTransform):
    """Group pending rows into chunks and fetch each into a raw shard; emits chunk indexes.

    Chunks are assigned by URL, so the chunk's fetch drops repeated URLs first.
    """

    def __init__(self, config: JobConfig, raw_dir: str, codec: RowCodec, chunks):
        super().__init__()
        self.config, self.raw_dir, self.codec, self.chunks = config, raw_dir, codec, chunks

    def expand(self, rows):
        fetcher = FetchChunkDoFn(self.config, self.raw_dir, self.codec.schema)
        return (
            rows
            | "GroupByChunk" >> GroupRows(self.codec, fetch_chunk_key, self.chunks)
            | "FetchChunk" >> beam.ParDo(fetcher)
        )


class WriteOutputs(beam.PTransform):
    """Shards, shard Parquet and ledger per chunk; then sizes.json and stats.json.

    Rows settled before fetching travel here through a shuffle; fetched rows are
    read back from their chunk's raw shard, which Fetch committed.
    """

    def __init__(self, config: JobConfig, raw_dir: str, codec: RowCodec, chunks, fetched, info):
        super().__init__()
        self.config, self.raw_dir, self.codec = config, raw_dir, codec
        self.chunks, self.fetched, self.run_info = chunks, fetched, info

    def expand(self, settled):
        output = self.config.output.output
        writer = WriteShardDoFn(
            output, self.raw_dir, self.codec.schema, self.config.image.encode_format
        )
        fetched = beam.pvalue.AsDict(self.fetched | "AsKeys" >> beam.Map(lambda c: (c, True)))
        return (
            settled
            | "GroupByChunk"
            >> GroupRows(self.codec, ledger_chunk_key, self.chunks, every_key=self.chunks)
            | "WriteShard" >> beam.ParDo(writer, fetched)
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "Finalize" >> beam.ParDo(FinalizeDoFn(output, self.run_info))
        )


class WriteTextOnly(beam.PTransform):
    """Ledger and surviving metadata per chunk, for a run that downloads nothing."""

    def __init__(self, config: JobConfig, codec: RowCodec, chunks, run_info):
        super().__init__()
        self.config, self.codec, self.chunks, self.run_info = config, codec, chunks, run_info

    def expand(self, rows):
        output = self.config.output.output
        return (
            rows
            | "GroupByChunk"
            >> GroupRows(self.codec, text_chunk_key, self.chunks, every_key=self.chunks)
            | "WriteParts" >> beam.ParDo(WriteTextOnlyDoFn(output, self.codec.schema))
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "Finalize" >> beam.ParDo(FinalizeDoFn(output, self.run_info, parts="metadata"))
        )


def text_chunk_key(row: dict[str, Any], chunks: int) -> int:
    """Pending rows by URL (so URL repeats meet), settled ones by uid."""
    if is_pending(row):
        return fetch_chunk_key(row, chunks)
    return ledger_chunk_key(row, chunks)


def build(pipeline: beam.Pipeline, config: JobConfig, plan: InputPlan, run_info: dict):
    """Add the whole job to ``pipeline``; returns the PCollection of the stats document."""
    raw_dir = raw_dir_of(config)
    codec = RowCodec(ledger_schema(plan.carried))
    rows = (
        pipeline
        | "InputFiles" >> beam.Create(list(plan.files))
        | "Read" >> beam.ParDo(ReadFileDoFn(plan.columns))
        | "CheckUrls" >> beam.Map(check_url)
        | "Captions" >> Captions(config.caption)
    )
    to_fetch = rows | "Fetchable" >> beam.Filter(is_pending)
    chunks = beam.pvalue.AsSingleton(
        to_fetch
        | "CountFetchable" >> beam.combiners.Count.Globally()
        | "ChunkCount" >> beam.Map(chunk_count, config.output.shard_size)
    )
    if config.output.text_only:
        return rows | "Write" >> WriteTextOnly(config, codec, chunks, run_info)
    settled = rows | "Settled" >> beam.Filter(lambda row: not is_pending(row))
    fetched = to_fetch | "Fetch" >> Fetch(config, raw_dir, codec, chunks)
    return settled | "Write" >> WriteOutputs(config, raw_dir, codec, chunks, fetched, run_info)
