"""The Fetch stage: download and process one chunk of pairs, commit it as a raw shard.

A raw shard is a tar of the re-encoded images (named by uid) plus a Parquet of
every row of the chunk with all it measured, ledger columns and all, kept by
``transforms.output.store.RawStore``. The Parquet is written last and is the
commit marker (it names the tar of its attempt): a re-run finds it, checks that
it holds exactly this chunk's rows, and skips the downloads. That is how an
interrupted job resumes, and how a change of a later rule reruns without
touching the network. Only the chunk index goes on through the pipeline: the
Write stage reads the rows back from the raw Parquet, so the big records never
pass through a second shuffle.

With ``--retry-failed`` (what ``paircurate retry-failed`` sets), a committed
chunk is not simply reused: its rows that failed for a reason that may pass
(``Reason.retryable``: timeouts, 5xx, 429, dropped connections) are downloaded
again and merged into the raw shard, and every other row stays as it was.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.direct.direct_runner import DirectRunner, SwitchingDirectRunner
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from paircurate.pipeline.memory import limit_malloc_arenas
from paircurate.pipeline.progress import BOARD, format_stage
from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import JobConfig
from paircurate.schemas.records import MEASURED
from paircurate.transforms.crawl.download import Downloader
from paircurate.transforms.crawl.fetch_many import fetch_many, usable_cores
from paircurate.transforms.crawl.image_pool import ImagePool, pool_size, shared_image_pool
from paircurate.transforms.crawl.shared import SharedByKey
from paircurate.transforms.dedup.url_dedup import by_url, split_url_duplicates
from paircurate.transforms.ingest.inputs import number_repeats
from paircurate.transforms.output.shards import TarWriter, shard_name
from paircurate.transforms.output.store import RawStore, image_member

log = logging.getLogger(__name__)

# One downloader per job in each worker process: its byte budget, per-host cap, connections
# and robots.txt and TDMRep answers bound and serve the process, not one bundle.
DOWNLOADERS: SharedByKey[Downloader] = SharedByKey(Downloader.close)

# Images a worker process decodes at once where a runner runs a worker process per core.
PER_CORE_WORKER_IMAGE_THREADS = 2


def row_identity(row: dict[str, Any]) -> tuple[str, str, int]:
    return (row["uid"], row["source"], row["row_number"])


def is_retryable(row: dict[str, Any]) -> bool:
    """A fetch failure that may pass on another try; unknown codes (older runs) are not."""
    code = row.get("reason")
    return code is not None and code in REASONS and REASONS[code].retryable


class Progress:
    """Count a chunk's rows on the progress board, and log rows done, rate and ETA every
    ``every_s`` seconds: on remote workers these lines are the job's progress."""

    def __init__(self, label: str, total: int, every_s: float = 30.0):
        self.label, self.total, self.every_s = label, total, every_s
        self.done = 0
        self.started = self.last = time.perf_counter()

    def step(self, rows: int = 1) -> None:
        self.done += rows
        BOARD.finish("fetch", rows)
        now = time.perf_counter()
        if now - self.last >= self.every_s and self.done < self.total:
            self.last = now
            log.info(
                "chunk %s", format_stage(self.label, self.done, self.total, now - self.started)
            )


def one_fetch_process(pipeline: beam.Pipeline) -> bool:
    """Whether one process runs every Fetch thread: the local runner's in-memory and
    multi-threading modes. Its multi-processing mode and Dataflow run a worker process
    per core, and so do Flink, Spark and portable runs, which
    ``runners.apply_worker_parallelism`` gives ``--sdk_worker_parallelism=0`` (one per
    core of each node) unless the user set it."""
    local = isinstance(pipeline.runner, (FnApiRunner, DirectRunner, SwitchingDirectRunner))
    mode = pipeline.options.view_as(DirectOptions).direct_running_mode
    return local and mode != "multi_processing"


def image_processes_for(requested: int, pipeline: beam.Pipeline) -> int:
    """``--image-processes`` as a number: -1 (auto) becomes a pool where it helps.

    Where one process runs every Fetch thread, they all share one GIL, so a pool
    of image processes lets the image work use the cores. Where a worker process
    runs per core, a pool would only oversubscribe them.
    """
    if requested >= 0:
        return requested
    return pool_size(usable_cores()) if one_fetch_process(pipeline) else 0


def image_threads_for(requested: int, pipeline: beam.Pipeline) -> int:
    """``--image-threads`` as a number: -1 (auto) becomes what one process's cores allow.

    One process that runs every Fetch thread may use all its cores (0). A
    worker process per core gets two images at once, which its concurrent
    bundles share: one can decode while the other waits for the GIL in the
    Python steps, and the decoded images a node holds grow with its cores, not
    with their square as one per core in each process would make them.
    """
    if requested >= 0:
        return requested
    return 0 if one_fetch_process(pipeline) else PER_CORE_WORKER_IMAGE_THREADS


class FetchChunkDoFn(beam.DoFn):
    """(chunk, rows) -> chunk, once the chunk's raw shard is committed.

    Exact repeats of a (url, caption) get their own uids first (``number_repeats``).
    Rows whose normalised URL came earlier in the input are recorded as
    ``url_duplicate`` without a download: every copy of a URL is in this chunk.
    A text-only run commits the chunk's rows without downloading anything, so
    that the Decide and Write steps read every run's chunks alike.
    """

    def __init__(self, config: JobConfig, raw: RawStore, schema: pa.Schema):
        self.config = config
        self.raw = raw
        self.schema = schema
        self.fetched = Metrics.counter("paircurate", "fetch_rows")
        self.resumed = Metrics.counter("paircurate", "fetch_rows_resumed")
        self.fetch_ms = Metrics.counter("paircurate", "fetch_ms")
        self.images = Metrics.counter("paircurate", "fetch_images")
        self.retried = Metrics.counter("paircurate", "fetch_rows_retried")
        self.recovered = Metrics.counter("paircurate", "fetch_rows_recovered")
        # Copies of this DoFn in one worker process (concurrent bundles) share a downloader.
        self.job_token = uuid.uuid4().hex
        self.downloader: Downloader | None = None
        self.image_pool: ImagePool | None = None

    def setup(self) -> None:
        limit_malloc_arenas()
        if not self.config.output.text_only:
            config = self.config.download
            self.downloader = DOWNLOADERS.acquire(self.job_token, lambda: Downloader(config))
            processes = self.config.download.image_processes
            if processes > 0:
                self.image_pool = shared_image_pool(processes)

    def teardown(self) -> None:
        if self.downloader is not None:
            self.downloader = None
            DOWNLOADERS.release(self.job_token)

    def process(self, element: tuple[int, list[dict[str, Any]]]) -> Iterator[int]:
        chunk, rows = element
        BOARD.enter("fetch", len(rows))
        # Every copy of a (url, caption) shares its URL, so all of them are in this chunk.
        rows = number_repeats(rows)
        if self.raw.committed(chunk, row_identity, {row_identity(row) for row in rows}):
            BOARD.finish("fetch", len(rows))  # a retry enters its rows again
            if self.config.output.retry_failed and not self.config.output.text_only:
                self._retry(chunk)
            else:
                self.resumed.inc(len(rows))
                log.info("chunk %s: %d rows already fetched, reusing", shard_name(chunk), len(rows))
            yield chunk
            return
        started = time.perf_counter()
        unique, duplicates = split_url_duplicates(rows, self.config.dedup.url_dedup)
        BOARD.finish("fetch", len(duplicates))
        tar = None
        if not self.config.output.text_only:
            tar = self._fetch(chunk, unique)
        else:
            BOARD.finish("fetch", len(unique))
        committed = sorted([*unique, *duplicates], key=row_identity)
        self.raw.commit(chunk, committed, self.schema, tar)
        seconds = time.perf_counter() - started
        self.fetched.inc(len(unique))
        self.fetch_ms.inc(int(seconds * 1000))
        log.info(
            "chunk %s: fetched %d rows in %.1f s (%.0f rows/s), %d repeated URLs skipped",
            shard_name(chunk), len(unique), seconds, len(unique) / max(seconds, 1e-9),
            len(duplicates),
        )  # fmt: skip
        yield chunk

    def _retry(self, chunk: int) -> None:
        """Download a committed chunk's retryable failures again and merge them in.

        A new tar (the committed tar's members but the retried rows', plus the
        new images) is written under a name of its own, then a new marker that
        names it. Until the marker is replaced the old commit stands whole, so a
        retry cut short simply starts over.
        """
        rows, committed_tar = self.raw.rows_and_tar(chunk)
        retry = [row for row in rows if is_retryable(row)]
        self.resumed.inc(len(rows) - len(retry))
        name = shard_name(chunk)
        if not retry:
            log.info("chunk %s: %d rows already fetched, none to retry", name, len(rows))
            return
        started = time.perf_counter()
        BOARD.enter("fetch", len(retry))
        tar = self._fetch(chunk, retry, carry_over=committed_tar)
        self.raw.commit(chunk, sorted(rows, key=row_identity), self.schema, tar)
        recovered = sum(row["reason"] is None for row in retry)
        seconds = time.perf_counter() - started
        self.fetched.inc(len(retry))
        self.fetch_ms.inc(int(seconds * 1000))
        self.retried.inc(len(retry))
        self.recovered.inc(recovered)
        log.info(
            "chunk %s: retried %d failed rows in %.1f s, %d now succeed, %d fail again",
            name, len(retry), seconds, recovered, len(retry) - recovered,
        )  # fmt: skip

    def _fetch(self, chunk: int, rows: list[dict], carry_over: str | None = None) -> str:
        """Download ``rows`` into a new raw tar, recording measurements on each row.

        Returns the tar's name, for the commit. Rows that share a URL (other
        captions of one image) share its download. With ``carry_over`` (the
        committed tar of a retried chunk) its members come first, those of
        ``rows`` aside, and the new images after them.
        """
        assert self.downloader is not None
        ext = self.config.image.encode_format
        groups = {group[0]["uid"]: group for group in by_url(rows).values()}
        progress = Progress(shard_name(chunk), len(rows))

        def fill(writer: TarWriter) -> None:
            if carry_over is not None:
                skip = {image_member(row["uid"], ext) for row in rows}
                self.raw.copy_members(carry_over, writer, skip)
            pairs = ((uid, group[0]["url"]) for uid, group in sorted(groups.items()))
            threads = self.config.download.download_threads
            results = fetch_many(
                pairs,
                self.downloader,
                self.config.image,
                threads,
                self.image_pool,
                self.config.download.image_threads,
            )
            for result in results:
                for row in groups[result.uid]:
                    if result.image is not None:
                        writer.add(image_member(row["uid"], ext), result.image)
                        self.images.inc()
                    row.update((k, result.measurements.get(k)) for k in MEASURED)
                progress.step(len(groups[result.uid]))

        return self.raw.write_tar(chunk, fill)
