"""One crawl file in, its extract ledger rows out: every candidate ``<img>`` and every bad record.

Records are cut by ``records``, parsed by ``warc``, their pages read by
``html`` (WARC) or ``wat`` (WAT) and judged by ``rules``. A record that
fails becomes one failed row with its reason and the reading goes on at the
next record; nothing of one record can stop the file. ``FileSummary``
counts what happened, for stats.json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from paircurate.schemas.codes import Status, status_of
from paircurate.schemas.config import ExtractConfig
from paircurate.schemas.extract import PROVENANCE_NAMES
from paircurate.transforms.extract import warc
from paircurate.transforms.extract.charset import decode_page
from paircurate.transforms.extract.html import PageFacts, read_page
from paircurate.transforms.extract.records import RecordUnit, read_records
from paircurate.transforms.extract.rules import Judged, judge_page
from paircurate.transforms.extract.summary import FileSummary
from paircurate.transforms.extract.wat import WatJsonError, read_wat
from paircurate.transforms.ingest.inputs import make_uid

CRAWL_FORMATS = ("warc", "wat")
Row = dict[str, Any]


def candidate_uid(crawl_file: str, offset: int, index: int | None) -> str:
    """The extract ledger's id of a candidate (or, with no index, of a record)."""
    text = f"{crawl_file}\x1f{offset}\x1f{'' if index is None else index}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class _Context:
    """What every row of one record shares."""

    crawl_file: str
    unit: RecordUnit
    page_url: str | None = None
    record_id: str | None = None
    language: str | None = None
    title: str | None = None


def _row(context: _Context, judged: Judged | None, reason: str | None, detail: str | None) -> Row:
    unit = context.unit
    index = None if judged is None else judged.index
    row: Row = {
        "uid": candidate_uid(context.crawl_file, unit.offset, index),
        "url": None if judged is None else judged.url,
        "caption": None if judged is None else judged.caption,
        "page_url": context.page_url,
        "crawl_file": context.crawl_file,
        "record_offset": unit.offset,
        "record_length": unit.length,
        "record_id": context.record_id,
        "image_index": index,
        "page_language": context.language,
        "title": context.title,
        "reason": reason,
        "reason_detail": detail,
        "status": Status.KEPT.value if reason is None else status_of(reason).value,
    }
    if judged is not None:
        row.update(
            img_width=judged.width,
            img_height=judged.height,
            img_title=judged.img_title,
            source_attribute=judged.source_attribute,
        )
    return row


def _page_rows(context: _Context, facts: PageFacts, config: ExtractConfig) -> Iterator[Row]:
    context = _Context(
        context.crawl_file, context.unit, context.page_url, context.record_id, facts.language,
        facts.title,
    )  # fmt: skip
    for judged in judge_page(facts, context.page_url or "", config):
        yield _row(context, judged, judged.reason, judged.detail)


def _warc_rows(
    record: warc.Record, context: _Context, config: ExtractConfig, summary: FileSummary
) -> Iterator[Row]:
    payload = warc.html_payload(record, config.max_record_bytes)
    if isinstance(payload, str):
        summary.records[payload] += 1
        return
    summary.records["page"] += 1
    summary.notes["page_cut"] += payload.cut
    decoded = decode_page(payload.body, payload.charset)
    if decoded.how != "declared":
        summary.notes[f"charset_{decoded.how}"] += 1
    facts = read_page(decoded.text, payload.content_language)
    context = _Context(context.crawl_file, context.unit, payload.page_url, payload.record_id)
    yield from _page_rows(context, facts, config)


def _wat_rows(
    record: warc.Record, context: _Context, config: ExtractConfig, summary: FileSummary
) -> Iterator[Row]:
    data = warc.metadata_json(record)
    if isinstance(data, str):
        summary.records[data] += 1
        return
    if record.cut:
        detail = f"longer than --max-record-bytes ({config.max_record_bytes})"
        raise _RecordFailure("extract_record_too_large", detail)
    try:
        page = read_wat(data)
    except WatJsonError as error:
        raise _RecordFailure("extract_wat_json", str(error)) from None
    if page.facts is None:
        summary.records[page.outcome] += 1
        return
    summary.records["page"] += 1
    context = _Context(context.crawl_file, context.unit, page.page_url, page.record_id)
    yield from _page_rows(context, page.facts, config)


class _RecordFailure(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _record_rows(
    unit: RecordUnit, crawl_file: str, fmt: str, config: ExtractConfig, summary: FileSummary
) -> list[Row]:
    """The rows of one record; a failure anywhere in it becomes the record's one failed row."""
    context = _Context(crawl_file, unit)
    if unit.problem is not None:
        summary.records["failed"] += 1
        return [_row(context, None, *unit.problem)]
    try:
        record = warc.parse_record(unit)
        summary.notes["length_mismatch"] += record.length_mismatch
        reader = _wat_rows if fmt == "wat" else _warc_rows
        return list(reader(record, context, config, summary))
    except warc.RecordError as error:
        failure = _RecordFailure("extract_record_corrupt", str(error))
    except _RecordFailure as error:
        failure = error
    except Exception as error:  # noqa: BLE001 - one record's failure stays in that record
        failure = _RecordFailure("extract_record_error", f"{type(error).__name__}: {error}")
    summary.records["failed"] += 1
    return [_row(context, None, failure.reason, failure.detail)]


def extract_file(
    stream: IO[bytes], crawl_file: str, fmt: str, config: ExtractConfig, summary: FileSummary
) -> Iterator[Row]:
    """Every extract ledger row of one crawl file, in file order; ``summary`` counts them."""
    if fmt not in CRAWL_FORMATS:
        raise ValueError(f"unknown crawl format {fmt!r}; pick one of {CRAWL_FORMATS}")
    summary.files += 1
    for unit in read_records(stream, config.max_record_bytes):
        for row in _record_rows(unit, crawl_file, fmt, config, summary):
            summary.count(row)
            yield row


def pair_row(row: Mapping[str, Any], row_number: int) -> Row:
    """A kept candidate as an input row of the curation job: what Read would have made of it."""
    pair = {
        "uid": make_uid(row["url"], row["caption"]),
        "url": row["url"],
        "caption": row["caption"],
    }
    pair.update({name: row.get(name) for name in PROVENANCE_NAMES})
    pair["source"], pair["row_number"] = row["crawl_file"], row_number
    return pair
