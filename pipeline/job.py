"""The curation job graph: Read -> CheckUrls -> Captions -> [Balance] -> Fetch -> Score, Decide
-> Write.

With a crawl as input (WAT or WARC files), Extract stands in for Read
(``pipeline.extract``): it finds the pairs and writes the extract ledger.

Balance (with --balance-entries, ``pipeline.balance``) caps the pairs per
concept entry on captions alone, before anything is downloaded.

Fetch drops URL repeats and commits each chunk as a raw shard; Score gives
every downloaded pair its CLIP score (``pipeline.scoring``), as a step of its
own behind a fusion break, so that GPUs can go to it alone; Decide finds
duplicate clusters over the committed chunks' metadata (``pipeline.dedup``);
Write merges scores and decisions into each chunk's rows, applies the CLIP
thresholds and writes the outputs.
With --text-only, Fetch commits the chunks without downloading, Decide sees
captions only, and Write puts the surviving rows in DIR/metadata/.

Image bytes never pass through a shuffle: they stay in the raw shard a Fetch
worker committed, and the Write worker of the same chunk reads them back from
there, together with the chunk's rows and measurements. What does cross
shuffles is the input rows on their way to Fetch, packed as compact bytes, and
small dedup records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from typing import Any

import apache_beam as beam

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.balance.balance_step import Balance
from paircurate.pipeline.compliance.exclude import (
    ExcludeUrls,
    MatchEmbeddings,
    MatchImages,
    ReadSources,
)
from paircurate.pipeline.crawl.fetch_chunks import (
    FetchChunkDoFn,
    image_processes_for,
    image_threads_for,
)
from paircurate.pipeline.dedup.find_duplicates import FindDuplicates
from paircurate.pipeline.extract.extract_step import ExtractPairs
from paircurate.pipeline.extract.plan import CrawlPlan
from paircurate.pipeline.grouping import GroupRows
from paircurate.pipeline.ingest.caption_step import Captions
from paircurate.pipeline.ingest.read import InputPlan, ReadInputs
from paircurate.pipeline.output.write_outputs import FinalizeDoFn, MergeSummariesFn, WriteShardDoFn
from paircurate.schemas.config import JobConfig
from paircurate.schemas.plan import plan_job
from paircurate.schemas.records import RowCodec, ledger_schema
from paircurate.transforms.compliance.rules import Sources
from paircurate.transforms.dedup.url_dedup import url_digest
from paircurate.transforms.embeddings.provenance import STATS_KEY as PROVENANCE_KEY
from paircurate.transforms.embeddings.provenance import config_provenance, with_provenance
from paircurate.transforms.ingest.urls import url_problem
from paircurate.transforms.output.ledger import drop
from paircurate.transforms.output.shards import chunk_count, chunk_of
from paircurate.transforms.output.store import OutputLayout, RawStore

# Raised whenever what a raw shard records changes, so older raw shards are not reused.
# 5: each attempt's tar has a name of its own, which the Parquet marker names.
# 6: the md5 and sha1 of the downloaded bytes, which hash lists match.
RAW_FORMAT = 6


def fetch_fingerprint(config: JobConfig) -> str:
    """Raw shards are reusable only by a run with the same fetch options."""
    options = {
        "download": asdict(config.download),
        "image": asdict(config.image),
        "url_dedup": config.dedup.url_dedup,
        "text_only": config.output.text_only,
        "raw_format": RAW_FORMAT,
    }
    concurrency = ("download_threads", "image_processes", "image_threads", "max_bytes_in_flight")
    for name in concurrency:
        options["download"].pop(name)
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def layout_of(config: JobConfig) -> OutputLayout:
    return OutputLayout(fs.FILES, config.output.output)


def raw_store_of(config: JobConfig) -> RawStore:
    return layout_of(config).raw_store(fetch_fingerprint(config))


def check_url(row: dict[str, Any]) -> dict[str, Any]:
    """The row, or a new one dropped for its URL's problem."""
    if row.get("status") is None:
        problem = url_problem(row["url"])
        if problem is not None:
            return drop(row, *problem)
    return row


def is_pending(row: dict[str, Any]) -> bool:
    return row.get("status") is None


def fetch_chunk_key(row: dict[str, Any], chunks: int) -> tuple[int, dict[str, Any]]:
    """(a fetchable row's chunk, by the hash of its normalised URL; the row recording it)."""
    chunk = chunk_of(url_digest(row["url"]), chunks)
    return chunk, {**row, "chunk": chunk}


def ledger_chunk_key(row: dict[str, Any], chunks: int) -> tuple[int, dict[str, Any]]:
    """(the ledger part a row goes to: its fetch chunk, or by uid if never fetched; the row)."""
    if row.get("chunk") is not None:
        return row["chunk"], row
    chunk = chunk_of(row["uid"], chunks)
    return chunk, {**row, "chunk": chunk}


class Fetch(beam.PTransform):
    """Group pending rows into chunks and fetch each into a raw shard; emits chunk indexes.

    Chunks are assigned by URL, so the chunk's fetch drops repeated URLs first.
    """

    def __init__(self, config: JobConfig, raw: RawStore, codec: RowCodec, chunks):
        super().__init__()
        self.config, self.raw, self.codec, self.chunks = config, raw, codec, chunks

    def expand(self, rows):
        requested = self.config.download
        download = replace(
            requested,
            image_processes=image_processes_for(requested.image_processes, rows.pipeline),
            image_threads=image_threads_for(requested.image_threads, rows.pipeline),
        )
        config = replace(self.config, download=download)
        fetcher = FetchChunkDoFn(config, self.raw, self.codec.schema)
        return (
            rows
            | "GroupByChunk" >> GroupRows(self.codec, fetch_chunk_key, self.chunks)
            | "FetchChunk" >> beam.ParDo(fetcher)
        )


class WriteOutputs(beam.PTransform):
    """Shards (or metadata parts), shard Parquet and ledger per chunk; then sizes.json, stats.json.

    Rows settled before fetching travel here through a shuffle; fetched rows are
    read back from their chunk's raw shard, which Fetch committed, and take the
    Decide step's cluster decisions on the way.
    """

    def __init__(
        self,
        config: JobConfig,
        raw: RawStore,
        codec: RowCodec,
        chunks,
        fetched,
        info,
        cut=None,
        extra_stats=(),
    ):
        super().__init__()
        self.config, self.raw, self.codec = config, raw, codec
        self.plan = plan_job(config)
        self.chunks, self.fetched, self.run_info, self.cut = chunks, fetched, info, cut
        # One-element PCollections of {section: ...} that stats.json takes in as they are.
        self.extra_stats = tuple(extra_stats)

    def expand(self, inputs):
        settled, decisions, scores = inputs
        cut = self.cut
        layout = layout_of(self.config)
        schema = with_provenance(self.codec.schema, self.run_info)
        writer = WriteShardDoFn(layout, self.raw, schema, self.plan)
        fetched = beam.pvalue.AsDict(self.fetched | "AsKeys" >> beam.Map(lambda c: (c, True)))
        grouped = settled | "GroupByChunk" >> GroupRows(
            self.codec, ledger_chunk_key, self.chunks, every_key=self.chunks
        )
        parts = self.plan.parts
        extras = {}
        if self.extra_stats:
            merged = self.extra_stats | "ExtraStats" >> beam.Flatten()
            extras["extras"] = beam.pvalue.AsList(merged)
        return (
            {"settled": grouped, "decisions": decisions, "scores": scores}
            | "WithDecisions" >> beam.CoGroupByKey()
            | "WriteShard" >> beam.ParDo(writer, fetched, cut)
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "Finalize"
            >> beam.ParDo(FinalizeDoFn(layout, self.run_info, parts, schema), cut, **extras)
        )


def with_semantic_decisions(decisions, scores, config: JobConfig, raw: RawStore):
    """The Decide step's decisions and the SemanticDedup step's, in one PCollection."""
    from paircurate.pipeline.embeddings.semantic_dedup import SemanticDedup

    semantic = scores | "SemanticDedup" >> SemanticDedup(config.dedup, raw)
    return (decisions, semantic) | "WithSemantic" >> beam.Flatten()


def build(pipeline: beam.Pipeline, config: JobConfig, plan: InputPlan | CrawlPlan, run_info: dict):
    """Add the whole job to ``pipeline``; returns the PCollection of the stats document."""
    raw = raw_store_of(config)
    job_plan = plan_job(config)
    # Where this run's raw shards are, for readers of the outputs such as the report.
    run_info = {**run_info, "raw_shards": OutputLayout.raw_name(fetch_fingerprint(config))}
    if job_plan.scores:  # what made the scores and embeddings, for whoever compares them
        run_info[PROVENANCE_KEY] = config_provenance(config.clip, fs.FILES).to_json()
    codec = RowCodec(ledger_schema(plan.carried))
    extra_stats = []
    if isinstance(plan, CrawlPlan):  # pairs from WAT or WARC files, their ledger on the side
        extract = ExtractPairs(plan, config.extract, layout_of(config))
        rows = pipeline | "Extract" >> extract
        extra_stats.append(extract.stats)
    else:
        rows = pipeline | "Read" >> ReadInputs(plan)
    rows = rows | "CheckUrls" >> beam.Map(check_url) | "Captions" >> Captions(config.caption)
    if config.balance.enabled:
        balance = Balance(config.balance)
        rows = rows | "Balance" >> balance
        extra_stats.append(balance.stats)
    # Counted before removal lists drop any: a list added to a finished run keeps its chunks.
    counted = rows | "Fetchable" >> beam.Filter(is_pending)
    sources = Sources.of(config.compliance)
    if sources.active:
        # Removal lists act on URLs before Fetch, on image hashes beside Decide.
        lists = pipeline | "ReadLists" >> ReadSources(sources)
        if sources.may_list_urls:
            rows = rows | "ExcludeUrls" >> ExcludeUrls(sources, codec, lists["before"])
    to_fetch = rows | "ToFetch" >> beam.Filter(is_pending) if sources.may_list_urls else counted
    chunks = beam.pvalue.AsSingleton(
        counted
        | "CountFetchable" >> beam.combiners.Count.Globally()
        | "ChunkCount" >> beam.Map(chunk_count, config.output.shard_size)
    )
    settled = rows | "Settled" >> beam.Filter(lambda row: not is_pending(row))
    fetched = to_fetch | "Fetch" >> Fetch(config, raw, codec, chunks)
    if job_plan.finds_clusters:
        decisions = fetched | "Decide" >> FindDuplicates(config.dedup, raw, chunks, job_plan)
    else:
        decisions = pipeline | "NoDecisions" >> beam.Create([])
    if sources.active:
        matched = fetched | "MatchImages" >> MatchImages(sources, raw, lists)
        decisions = (decisions, matched) | "WithCompliance" >> beam.Flatten()
    if job_plan.scores:
        # Beam's RunInference module imports torch (half a gigabyte): only where it scores.
        from paircurate.pipeline.scoring.score_pairs import score_cut, score_step

        # A fusion break on the chunk indexes: Score runs on workers of its own (GPU ones
        # with --clip-accelerator), not inside the download work.
        committed = fetched | "ToScore" >> beam.Reshuffle()
        # Decontamination by embedding needs each pair's image embedding, written or not.
        cosine = config.compliance.decontam_cosine
        embeddings = job_plan.image_embeddings or cosine is not None
        step = score_step(config.clip, raw, config.image, embeddings)
        scores = committed | "Score" >> step
        cut = score_cut(scores, config.clip)
        if job_plan.semantic_dedup:
            decisions = with_semantic_decisions(decisions, scores, config, raw)
        if cosine is not None and sources.evalsets:
            matching = MatchEmbeddings(sources, config.clip, cosine, lists)
            near = scores | "MatchEmbeddings" >> matching
            decisions = (decisions, near) | "WithEmbeddingMatches" >> beam.Flatten()
    else:
        scores, cut = pipeline | "NoScores" >> beam.Create([]), None
    write = WriteOutputs(config, raw, codec, chunks, fetched, run_info, cut, extra_stats)
    return (settled, decisions, scores) | "Write" >> write
