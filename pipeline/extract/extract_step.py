"""The Extract step: crawl files in, candidate pairs out, each file's extract ledger written.

Files spread over workers (one file is read by one worker, record by
record, in bounded memory). Each file's extract ledger part is written as it
is read, to a temporary name renamed when the file is done, so a retried
bundle rewrites the same part. The pairs go on as the rows ``Read`` would
have made (``run`` with a crawl input), or into a Parquet part per file
(``paircurate extract``). The counts become stats.json's "extract" section.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.extract.plan import CrawlPlan
from paircurate.pipeline.progress import BOARD
from paircurate.schemas.config import ExtractConfig
from paircurate.schemas.extract import EXTRACT_LEDGER_SCHEMA, PAIR_SCHEMA
from paircurate.schemas.records import rows_to_table
from paircurate.transforms.extract.crawl_file import candidate_uid, extract_file, pair_row
from paircurate.transforms.extract.summary import FileSummary, merge_summaries, stats_section
from paircurate.transforms.output import storage
from paircurate.transforms.output.store import OutputLayout

log = logging.getLogger(__name__)
ROW_GROUP = 32_768


class ParquetRows:
    """Rows written to a Parquet stream in row groups, so a file's rows are never all held."""

    def __init__(self, stream, schema: pa.Schema):
        self.schema = schema
        self.writer = pq.ParquetWriter(stream, schema)
        self.pending: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(rows_to_table(self.pending, self.schema))
            self.pending = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def part_name(index: int) -> str:
    """The name of the parts written for the index-th planned crawl file."""
    return f"{index:06d}"


def unreadable_file_row(path: str, error: Exception) -> dict[str, Any]:
    """The one extract ledger row of a crawl file that cannot be opened."""
    return {
        "uid": candidate_uid(path, 0, None), "crawl_file": path, "record_offset": 0,
        "record_length": 0, "status": "failed", "reason": "extract_record_error",
        "reason_detail": f"cannot open the file: {type(error).__name__}: {error}",
    }  # fmt: skip


class ExtractFileDoFn(beam.DoFn):
    """(index, path) of a crawl file -> its pairs as input rows, or none when it writes them.

    Its "summary" output is the file's FileSummary.
    """

    SUMMARY = "summary"

    def __init__(self, fmt: str, config: ExtractConfig, layout: OutputLayout, write_pairs: bool):
        self.fmt, self.config, self.layout, self.write_pairs = fmt, config, layout, write_pairs
        self.files_read = Metrics.counter("paircurate", "extract_files")
        self.pairs_found = Metrics.counter("paircurate", "extract_pairs")
        self.extract_ms = Metrics.counter("paircurate", "extract_ms")

    def process(self, item: tuple[int, str]) -> Iterator[Any]:
        index, path = item
        started = time.perf_counter()
        summary = FileSummary()
        files, name = self.layout.files, part_name(index)
        with contextlib.ExitStack() as stack:
            ledger = ParquetRows(
                stack.enter_context(
                    storage.atomic_writer(files, self.layout.extract_ledger_part(name))
                ),
                EXTRACT_LEDGER_SCHEMA,
            )
            pairs = None
            if self.write_pairs:
                stream = stack.enter_context(
                    storage.atomic_writer(files, self.layout.pairs_part(name))
                )
                pairs = ParquetRows(stream, PAIR_SCHEMA)
            for number, row in enumerate(self._rows(path, summary)):
                ledger.add(row)
                if row["reason"] is not None:
                    continue
                if pairs is not None:
                    pairs.add(row)
                else:
                    BOARD.enter("read", 1)
                    BOARD.finish("read", 1)
                    yield pair_row(row, number)
            ledger.close()
            if pairs is not None:
                pairs.close()
        self.files_read.inc()
        self.pairs_found.inc(summary.pairs)
        self.extract_ms.inc(int((time.perf_counter() - started) * 1000))
        log.info(
            "extracted %d pairs of %d candidates from %s", summary.pairs, summary.candidates, path
        )
        yield beam.pvalue.TaggedOutput(self.SUMMARY, summary)

    def _rows(self, path: str, summary: FileSummary) -> Iterator[dict[str, Any]]:
        try:
            stream = fs.open_read(path)
        except Exception as error:  # noqa: BLE001 - a missing or unreadable file is one failed row
            summary.files += 1
            summary.records["failed"] += 1
            row = unreadable_file_row(path, error)
            summary.count(row)
            yield row
            return
        with stream:
            yield from extract_file(stream, path, self.fmt, self.config, summary)


class MergeFileSummariesFn(beam.CombineFn):
    def create_accumulator(self) -> FileSummary:
        return FileSummary()

    def add_input(self, accumulator: FileSummary, summary: FileSummary) -> FileSummary:
        return accumulator.add(summary)

    def merge_accumulators(self, accumulators: Iterable[FileSummary]) -> FileSummary:
        return merge_summaries(accumulators)

    def extract_output(self, accumulator: FileSummary) -> FileSummary:
        return accumulator


class ExtractPairs(beam.PTransform):
    """The crawl files of ``plan`` -> pair rows (none with ``write_pairs``); see the module.

    ``stats`` is set by ``expand``: a one-element PCollection, {"extract": ...}
    for stats.json.
    """

    def __init__(
        self,
        plan: CrawlPlan,
        config: ExtractConfig,
        layout: OutputLayout,
        write_pairs: bool = False,
    ):
        super().__init__()
        self.plan, self.config, self.layout, self.write_pairs = plan, config, layout, write_pairs
        self.stats = None

    def expand(self, pipeline):
        extractor = ExtractFileDoFn(self.plan.fmt, self.config, self.layout, self.write_pairs)
        results = (
            pipeline
            | "CrawlFiles" >> beam.Create(list(enumerate(self.plan.files)))
            | "SpreadFiles" >> beam.Reshuffle()
            | "ExtractFile"
            >> beam.ParDo(extractor).with_outputs(ExtractFileDoFn.SUMMARY, main="rows")
        )
        fmt = self.plan.fmt
        self.stats = (
            results[ExtractFileDoFn.SUMMARY]
            | "MergeExtractCounts" >> beam.CombineGlobally(MergeFileSummariesFn())
            | "ExtractSection"
            >> beam.Map(lambda s: {"extract": {"format": fmt, **stats_section(s)}})
        )
        return results.rows
