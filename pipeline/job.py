"""The curation job graph: Read -> CheckUrls -> Fetch (with URL dedup) -> Decide -> Write.

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
from paircurate.schemas.records import RowCodec, ledger_schema
from paircurate.transforms.dedup import url_digest
from paircurate.transforms.ledger import drop, with_status
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


def _encode_keyed(row: dict[str, Any], codec: RowCodec, key, *key_args) -> tuple[Any, bytes]:
    return key(row, *key_args), codec.encode(row)


def _decode_group(element: tuple[Any, Iterable[bytes]], codec: RowCodec) -> tuple[Any, list]:
    key, values = element
    return key, [codec.decode(value) for value in values if value]


def _empty_groups(_: None, keys: int) -> list[tuple[int, bytes]]:
    return [(key, b"") for key in range(keys)]


class GroupRows(beam.PTransform):
    """Group row dicts by ``key(row, *key_args)``; rows cross the shuffle as compact bytes.

    ``every_key`` (a side input of the number of keys) makes sure that each key
    in ``range(n)`` gets a group, empty or not, so every shard index is written.
    """

    def __init__(self, codec: RowCodec, key, *key_args, every_key=None):
        super().__init__()
        self.codec, self.key, self.key_args, self.every_key = codec, key, key_args, every_key

    def expand(self, rows):
        encoded = rows | "Encode" >> beam.Map(_encode_keyed, self.codec, self.key, *self.key_args)
        if self.every_key is not None:
            markers = (
                rows.pipeline
                | "Once" >> beam.Create([None])
                | "EveryKey"
                >> beam.FlatMap(lambda _, n: [(i, b"") for i in range(n)], self.every_key)
            )
            encoded = (encoded, markers) | "WithEveryKey" >> beam.Flatten()
        return (
            encoded
            | "Shuffle" >> beam.GroupByKey()
            | "Decode" >> beam.Map(_decode_group, self.codec)
        )


class Fetch(beam.PTransform):
    """Group pending rows into chunks and fetch each chunk into a raw shard.

    Chunks are assigned by URL, so the chunk's fetch drops repeated URLs first.
    """

    def __init__(self, config: JobConfig, raw_dir: str, codec: RowCodec, chunks):
        super().__init__()
        self.config, self.raw_dir, self.codec, self.chunks = config, raw_dir, codec, chunks

    def expand(self, rows):
        return (
            rows
            | "GroupByChunk" >> GroupRows(self.codec, fetch_chunk_key, self.chunks)
            | "FetchChunk" >> beam.ParDo(FetchChunkDoFn(self.config, self.raw_dir))
        )


class Decide(beam.PTransform):
    """One final decision per row: its status follows from the first reason recorded."""

    def expand(self, rows):
        return rows | "SetStatus" >> beam.Map(with_status)


class WriteOutputs(beam.PTransform):
    """Shards, shard Parquet and ledger per chunk; then sizes.json and stats.json."""

    def __init__(self, config: JobConfig, raw_dir: str, codec: RowCodec, chunks, run_info):
        super().__init__()
        self.config, self.raw_dir, self.codec = config, raw_dir, codec
        self.chunks, self.run_info = chunks, run_info

    def expand(self, rows):
        output = self.config.output.output
        writer = WriteShardDoFn(
            output, self.raw_dir, self.codec.schema, self.config.image.encode_format
        )
        return (
            rows
            | "GroupByChunk"
            >> GroupRows(self.codec, ledger_chunk_key, self.chunks, every_key=self.chunks)
            | "WriteShard" >> beam.ParDo(writer)
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "Finalize" >> beam.ParDo(FinalizeDoFn(output, self.run_info))
        )


def build(pipeline: beam.Pipeline, config: JobConfig, plan: InputPlan, run_info: dict):
    """Add the whole job to ``pipeline``; returns the PCollection of the stats document."""
    raw_dir = raw_dir_of(config)
    codec = RowCodec(ledger_schema(plan.carried))
    rows = (
        pipeline
        | "InputFiles" >> beam.Create(list(plan.files))
        | "Read" >> beam.ParDo(ReadFileDoFn(plan.columns))
        | "CheckUrls" >> beam.Map(check_url)
    )
    to_fetch = rows | "Fetchable" >> beam.Filter(is_pending)
    settled = rows | "Settled" >> beam.Filter(lambda row: not is_pending(row))
    chunks = beam.pvalue.AsSingleton(
        to_fetch
        | "CountFetchable" >> beam.combiners.Count.Globally()
        | "ChunkCount" >> beam.Map(chunk_count, config.output.shard_size)
    )
    fetched = to_fetch | "Fetch" >> Fetch(config, raw_dir, codec, chunks)
    decided = (fetched, settled) | "AllRows" >> beam.Flatten() | "Decide" >> Decide()
    return decided | "Write" >> WriteOutputs(config, raw_dir, codec, chunks, run_info)
