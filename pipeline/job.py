"""The curation job graph: Read -> CheckUrls -> DedupUrls -> Fetch -> Decide -> Write.

Only metadata (about 1 KB a row) passes through shuffles; image bytes stay in the
raw shard a Fetch worker wrote, and the Write worker of the same chunk reads them
back from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import apache_beam as beam

from paircurate.pipeline import io
from paircurate.pipeline.fetch import FetchChunkDoFn
from paircurate.pipeline.read import InputPlan, ReadFileDoFn
from paircurate.pipeline.write import FinalizeDoFn, MergeSummariesFn, WriteShardDoFn
from paircurate.schemas.config import JobConfig
from paircurate.schemas.records import ledger_schema
from paircurate.transforms.ledger import drop, with_status
from paircurate.transforms.shards import chunk_count, chunk_of
from paircurate.transforms.urls import normalize_url, url_problem


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


def _input_order(row: dict[str, Any]) -> tuple:
    return (row["source"], row["row_number"])


def keep_first_of_url(element: tuple[str, Iterable[dict]]) -> Iterable[dict]:
    """Of rows sharing a normalised URL, the first in input order goes on; the rest are dropped."""
    _, grouped = element
    rows = sorted(grouped, key=_input_order)
    keeper = rows[0]
    yield keeper
    for row in rows[1:]:
        yield drop(
            row,
            "url_duplicate",
            f"same normalised URL as row {keeper['row_number']} of {keeper['source']}",
            duplicate_of=keeper["uid"],
        )


class DedupUrls(beam.PTransform):
    """Exact deduplication on the normalised URL, before anything is downloaded."""

    def expand(self, rows):
        return (
            rows
            | "KeyByUrl" >> beam.Map(lambda row: (normalize_url(row["url"]), row))
            | "GroupByUrl" >> beam.GroupByKey()
            | "KeepFirst" >> beam.FlatMap(keep_first_of_url)
        )


def _with_chunk(row: dict[str, Any], chunks: int) -> tuple[int, dict[str, Any]]:
    row["chunk"] = chunk_of(row["uid"], chunks)
    return row["chunk"], row


class Fetch(beam.PTransform):
    """Group pending rows into chunks and fetch each chunk into a raw shard."""

    def __init__(self, config: JobConfig, raw_dir: str, chunks):
        super().__init__()
        self.config, self.raw_dir, self.chunks = config, raw_dir, chunks

    def expand(self, rows):
        return (
            rows
            | "KeyByChunk" >> beam.Map(_with_chunk, chunks=self.chunks)
            | "GroupByChunk" >> beam.GroupByKey()
            | "FetchChunk" >> beam.ParDo(FetchChunkDoFn(self.config, self.raw_dir))
        )


class Decide(beam.PTransform):
    """One final decision per row: its status follows from the first reason recorded."""

    def expand(self, rows):
        return rows | "SetStatus" >> beam.Map(with_status)


class WriteOutputs(beam.PTransform):
    """Shards, shard Parquet and ledger per chunk; then sizes.json and stats.json."""

    def __init__(self, config: JobConfig, plan: InputPlan, raw_dir: str, chunks, run_info):
        super().__init__()
        self.config, self.plan, self.raw_dir = config, plan, raw_dir
        self.chunks, self.run_info = chunks, run_info

    def expand(self, rows):
        pipeline = rows.pipeline
        every_chunk = (
            pipeline
            | "Once" >> beam.Create([None])
            | "EveryChunk" >> beam.FlatMap(lambda _, n: [(i, None) for i in range(n)], self.chunks)
        )
        keyed = rows | "KeyByChunk" >> beam.Map(_with_chunk, chunks=self.chunks)
        schema = ledger_schema(self.plan.carried)
        output = self.config.output.output
        return (
            (keyed, every_chunk)
            | "AllChunks" >> beam.Flatten()
            | "GroupByChunk" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(
                WriteShardDoFn(output, self.raw_dir, schema, self.config.image.encode_format)
            )
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "Finalize" >> beam.ParDo(FinalizeDoFn(output, self.run_info))
        )


def build(pipeline: beam.Pipeline, config: JobConfig, plan: InputPlan, run_info: dict):
    """Add the whole job to ``pipeline``; returns the PCollection of the stats document."""
    raw_dir = raw_dir_of(config)
    rows = (
        pipeline
        | "InputFiles" >> beam.Create(list(plan.files))
        | "Read" >> beam.ParDo(ReadFileDoFn(plan.columns))
        | "CheckUrls" >> beam.Map(check_url)
    )
    pending = rows | "Pending" >> beam.Filter(is_pending)
    settled = rows | "Settled" >> beam.Filter(lambda row: not is_pending(row))
    deduped = pending | "DedupUrls" >> DedupUrls()
    to_fetch = deduped | "ToFetch" >> beam.Filter(is_pending)
    duplicates = deduped | "Duplicates" >> beam.Filter(lambda row: not is_pending(row))
    chunks = beam.pvalue.AsSingleton(
        to_fetch
        | "CountFetchable" >> beam.combiners.Count.Globally()
        | "ChunkCount" >> beam.Map(chunk_count, config.output.shard_size)
    )
    fetched = to_fetch | "Fetch" >> Fetch(config, raw_dir, chunks)
    decided = (fetched, settled, duplicates) | "AllRows" >> beam.Flatten() | "Decide" >> Decide()
    return decided | "Write" >> WriteOutputs(config, plan, raw_dir, chunks, run_info)
