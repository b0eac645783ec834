"""The synthetic web written as a crawl: WARC and WAT files of its pages, with ground truth.

``write_crawl`` lays the web's pairs out on pages (``crawl_pages``) and
writes, per file, a WARC file (warcinfo, then a request and a response
record per page) and the matching WAT file (a metadata record per WARC
record, in Common Crawl's JSON layout), each record a gzip member of its own
as Common Crawl ships them, plus ``warc.paths.gz`` and ``wat.paths.gz``
listing them. Pages come in several charsets, declared right or wrong.
With ``faults``, each file also holds what crawls hold: a truncated and a
damaged gzip member, junk between members, Content-Lengths that lie both
ways, a WAT record whose JSON does not parse, and a file that ends inside
its last record.

``truth.parquet`` has a row per ``<img>`` and view (warc or wat): the pair
a reader should find, or the reason it should drop it; where the image's
record is lost, ``record_reason`` says why. Failed records have rows of
their own (no ``image_index``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from fastwarc.warc import WarcRecord, WarcRecordType

from . import crawl_pages as pages
from .web import SyntheticWeb

TRUTH_SCHEMA = pa.schema(
    [
        ("view", pa.string()),
        ("crawl_file", pa.string()),
        ("record_offset", pa.int64()),
        ("page_url", pa.string()),
        ("image_index", pa.int32()),
        ("kind", pa.string()),
        ("entry", pa.int64()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("reason", pa.string()),
        ("record_reason", pa.string()),
        ("page_language", pa.string()),
        ("title", pa.string()),
    ]
)
CHARSETS = ("utf-8", "windows-1252", "latin1-label", "utf8-label-lies")
WARC_DATE = "2026-01-15T12:00:00Z"
WARC_FAULTS = ("truncated", "length_long", "corrupt", "length_short", "garbage")
WAT_FAULTS = ("truncated", "bad_json", "length_long")


@dataclass(frozen=True)
class CrawlMix:
    """How the crawl is laid out and what goes wrong in it."""

    entries_per_page: int = 8
    noise_per_page: int = 4
    base_fraction: float = 0.2
    faults: bool = True
    big_page_images: int = 0  # >0: the first page also shows this many icons and ~4 MB of text


@dataclass(frozen=True)
class Crawl:
    """What ``write_crawl`` wrote: the files (absolute paths) and the truth table's path."""

    warc_files: tuple[str, ...]
    wat_files: tuple[str, ...]
    truth: str
    folder: str


@dataclass
class _Page:
    draft: pages.PageDraft
    title: str
    charset: str
    content_language: str | None


@dataclass
class _FileWriter:
    """Gzip members appended to a file's bytes, with their offsets."""

    name: str
    data: bytearray = field(default_factory=bytearray)

    def append(self, record: bytes) -> int:
        offset = len(self.data)
        self.data += gzip.compress(record, mtime=0)
        return offset


def _record(
    record_type: WarcRecordType, uri: str, content_type: str, block: bytes, rid: str, **headers
) -> bytes:
    record = WarcRecord()
    record.init_headers(record_type, record_urn=rid.encode())
    record.headers.set("WARC-Date", WARC_DATE)
    if uri:
        record.headers.set("WARC-Target-URI", uri)
    record.headers.set("Content-Type", content_type)
    for name, value in headers.items():
        record.headers.set(name.replace("_", "-"), value)
    record.set_bytes_content(block)
    out = io.BytesIO()
    record.write(out)
    return out.getvalue()


def _rid(seed: int, *parts: object) -> str:
    name = f"paircurate-crawl/{seed}/" + "/".join(map(str, parts))
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _page_bytes(page: _Page) -> tuple[bytes, str]:
    """(the document's bytes, the charset its headers declare) by the page's charset plan."""
    text_charset = {"utf-8": "utf-8", "windows-1252": "windows-1252"}
    declared = text_charset.get(page.charset, "utf-8")
    if page.charset == "latin1-label":
        declared = "iso-8859-1"
    text = pages.render(page.draft, page.title, declared)
    encoding = "cp1252" if page.charset in ("windows-1252", "utf8-label-lies") else "utf-8"
    return text.encode(encoding), declared


def _http_response(page: _Page) -> bytes:
    body, declared = _page_bytes(page)
    headers = [
        "HTTP/1.1 200 OK",
        f"Content-Type: text/html; charset={declared}",
        f"Content-Length: {len(body)}",
        "Server: synthweb",
    ]
    if page.content_language:
        headers.append(f"Content-Language: {page.content_language}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def _anchors(page: _Page, count: int = 30) -> list[dict[str, str]]:
    """The page's navigation links as WAT lists them: most of a real WAT record's links."""
    return [
        {"path": "A@/href", "url": f"/pages/p{n:05d}.html", "text": f"Page {n} of the gallery"}
        for n in range(count)
    ]


def _wat_json(page: _Page, rid: str, warc_name: str, offset: int, kind: str) -> bytes:
    warc_headers = {"WARC-Type": kind, "WARC-Date": WARC_DATE, "WARC-Record-ID": f"<{rid}>"}
    warc_headers["WARC-Target-URI"] = page.draft.url
    envelope: dict = {"Format": "WARC", "WARC-Header-Metadata": warc_headers}
    if kind == "request":
        envelope["Payload-Metadata"] = {
            "Actual-Content-Type": "application/http; msgtype=request",
            "HTTP-Request-Metadata": {
                "Request-Message": {"Method": "GET", "Path": page.draft.url, "Version": "HTTP/1.1"},
                "Headers": {"User-Agent": "synthweb-crawler"},
            },
        }
    if kind == "response":
        _, declared = _page_bytes(page)
        head: dict = {
            "Title": pages.html.escape(page.title),
            "Metas": [{"charset": declared}, {"name": "viewport", "content": "width=device-width"}],
            "Link": [{"path": "LINK@/href", "url": "/s.css", "rel": "stylesheet"}],
        }
        if page.draft.base_href:
            head["Base"] = page.draft.base_href
        headers = {"Content-Type": f"text/html; charset={declared}", "Server": "synthweb"}
        if page.content_language:
            headers["Content-Language"] = page.content_language
        envelope["Payload-Metadata"] = {
            "Actual-Content-Type": "application/http; msgtype=response",
            "HTTP-Response-Metadata": {
                "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
                "Headers": headers,
                "HTML-Metadata": {"Head": head, "Links": [*_anchors(page), *page.draft.links]},
            },
        }
    container = {"Filename": warc_name, "Compressed": True, "Offset": str(offset)}
    return json.dumps({"Container": container, "Envelope": envelope}).encode()


def _build_page(
    web: SyntheticWeb, number: int, entries: range, base_url: str, mix: CrawlMix, seed: int
) -> _Page:
    rng = random.Random(seed * 1_000_003 + number)
    language = rng.choice(pages.SITE_LANGUAGES) if rng.random() < 0.8 else None
    draft = pages.PageDraft(f"{base_url}/pages/p{number:05d}.html", language)
    if rng.random() < mix.base_fraction:
        draft.base_href = f"{base_url}/img/"
    draft.parts.append(pages.filler(language, 3))
    pages.no_images(draft)
    kinds, weights = zip(*pages.ENTRY_KINDS, strict=True)
    for index in entries:
        pages.add_entry(draft, web, index, base_url, rng.choices(kinds, weights)[0])
        if rng.random() < 0.3:
            draft.parts.append(pages.filler(language))
    for slot in range(mix.noise_per_page):
        kind = pages.NOISE_KINDS[(number * mix.noise_per_page + slot) % len(pages.NOISE_KINDS)]
        pages.add_noise(draft, kind, base_url, rng)
    if number == 0 and mix.big_page_images:
        draft.parts.append(pages.filler(language, 4_000_000 // 80))
        for _ in range(mix.big_page_images):
            pages.add_noise(draft, "icon", base_url, rng)
    content_language = (
        rng.choice(pages.SITE_LANGUAGES) if language is None and rng.random() < 0.5 else None
    )
    title = f"Shapes & colours \u2014 page {number}"
    return _Page(draft, title, rng.choice(CHARSETS), content_language)


def _truth_rows(
    page: _Page, view: str, crawl_file: str, offset: int, record_reason: str | None
) -> Iterator[dict]:
    draft = page.draft
    language = draft.language if view == "warc" else None
    language = language or page.content_language
    for image in draft.images:
        expected = image.warc if view == "warc" else image.wat
        if expected is None:
            continue
        yield {
            "view": view, "crawl_file": crawl_file, "record_offset": offset,
            "page_url": draft.url, "image_index": expected.index, "kind": image.kind,
            "entry": image.entry, "url": expected.url, "caption": expected.caption,
            "reason": expected.reason, "record_reason": record_reason,
            "page_language": language, "title": page.title,
        }  # fmt: skip


def _damaged(member: bytes, fault: str) -> bytes:
    """A gzip member made truncated or corrupt."""
    if fault == "truncated":
        return member[: len(member) // 2]
    middle = len(member) // 2
    return (
        member[:middle]
        + bytes(b ^ 0x5A for b in member[middle : middle + 24])
        + member[middle + 24 :]
    )


def _lying(record: bytes, delta: int) -> bytes:
    header_end = record.index(b"\r\n\r\n")
    head = record[:header_end].decode()
    lines = []
    for line in head.split("\r\n"):
        if line.lower().startswith("content-length:"):
            line = f"Content-Length: {int(line.split(':')[1]) + delta}"
        lines.append(line)
    return "\r\n".join(lines).encode() + record[header_end:]


def _fault_plan(pages_in_file: int, enabled: bool) -> tuple[dict[int, str], dict[int, str]]:
    """Page position -> fault, for the WARC and the WAT file; the last page's record is cut."""
    if not enabled:
        return {}, {}
    warc = {position: fault for position, fault in enumerate(WARC_FAULTS, start=1)}
    wat = {position: fault for position, fault in enumerate(WAT_FAULTS, start=2)}
    warc = {p: f for p, f in warc.items() if p < pages_in_file - 1}
    wat = {p: f for p, f in wat.items() if p < pages_in_file - 1}
    if pages_in_file > len(WARC_FAULTS) + 2:
        warc[pages_in_file - 1] = wat[pages_in_file - 1] = "truncated_tail"
    return warc, wat


_RECORD_REASONS = {
    "truncated": "extract_record_truncated",
    "truncated_tail": "extract_record_truncated",
    "corrupt": "extract_record_corrupt",
    "bad_json": "extract_wat_json",
}


def _record_truth(
    view: str, crawl_file: str, offset: int, page_url: str | None, fault: str
) -> dict:
    reason = _RECORD_REASONS.get(fault, "extract_record_corrupt")
    return {
        "view": view, "crawl_file": crawl_file, "record_offset": offset, "page_url": page_url,
        "image_index": None, "kind": fault, "entry": -1, "url": None, "caption": None,
        "reason": reason, "record_reason": reason, "page_language": None, "title": None,
    }  # fmt: skip


def _append_member(writer: _FileWriter, record: bytes, fault: str | None) -> int:
    """Append a record as a gzip member, damaged by ``fault`` where it damages members."""
    offset = len(writer.data)
    member = gzip.compress(record, mtime=0)
    if fault in ("truncated", "corrupt", "truncated_tail"):
        member = _damaged(member, "corrupt" if fault == "corrupt" else "truncated")
    writer.data += member
    return offset


def _write_page(
    page: _Page, number: int, seed: int, warc: _FileWriter, wat: _FileWriter, faults: tuple
) -> list[dict]:
    warc_fault, wat_fault = faults
    url, truth = page.draft.url, []
    request_block = f"GET {url} HTTP/1.1\r\nUser-Agent: synthweb-crawler\r\n\r\n".encode()
    request_id, response_id = _rid(seed, number, "request"), _rid(seed, number, "response")
    if warc_fault == "garbage":
        junk_at = len(warc.data)
        warc.data += random.Random(number).randbytes(333).replace(b"\x1f", b"\x00")
        truth.append(_record_truth("warc", warc.name, junk_at, None, "garbage"))
    kind = "application/http; msgtype="
    warc.append(_record(WarcRecordType.request, url, kind + "request", request_block, request_id))
    response = _record(
        WarcRecordType.response, url, kind + "response", _http_response(page), response_id
    )
    if warc_fault in ("length_long", "length_short"):
        response = _lying(response, 5000 if warc_fault == "length_long" else -100)
    offset = _append_member(warc, response, warc_fault)
    lost = warc_fault if warc_fault in _RECORD_REASONS else None
    truth += _truth_rows(page, "warc", warc.name, offset, _RECORD_REASONS.get(lost or ""))
    if lost:
        truth.append(_record_truth("warc", warc.name, offset, url, lost))
    request_json = _wat_json(page, request_id, warc.name, 0, "request")
    wat.append(
        _record(
            WarcRecordType.metadata,
            url,
            "application/json",
            request_json,
            _rid(seed, number, "wat-request"),
            WARC_Refers_To=f"<{request_id}>",
        )
    )
    document = _wat_json(page, response_id, warc.name, offset, "response")
    if wat_fault == "bad_json":
        document = document[: len(document) // 2]
    metadata = _record(
        WarcRecordType.metadata,
        url,
        "application/json",
        document,
        _rid(seed, number, "wat"),
        WARC_Refers_To=f"<{response_id}>",
    )
    if wat_fault == "length_long":
        metadata = _lying(metadata, 3000)
    wat_offset = _append_member(wat, metadata, wat_fault)
    lost = wat_fault if wat_fault in _RECORD_REASONS else None
    truth += _truth_rows(page, "wat", wat.name, wat_offset, _RECORD_REASONS.get(lost or ""))
    if lost:
        truth.append(_record_truth("wat", wat.name, wat_offset, url, lost))
    return truth


def _warcinfo(name: str, seed: int) -> bytes:
    fields = (
        f"software: paircurate synthweb\r\nformat: WARC File Format 1.1\r\nisPartOf: {name}\r\n"
    )
    return _record(
        WarcRecordType.warcinfo, "", "application/warc-fields", fields.encode(), _rid(seed, name)
    )


def _write_paths(folder: str, kind: str, names: list[str]) -> None:
    lines = "".join(f"{name}\n" for name in names).encode()
    with open(os.path.join(folder, f"{kind}.paths.gz"), "wb") as stream:
        stream.write(gzip.compress(lines, mtime=0))


def write_crawl(
    web: SyntheticWeb, base_url: str, folder: str, files: int = 2, seed: int = 0,
    mix: CrawlMix = CrawlMix(),
) -> Crawl:  # fmt: skip
    """Write ``files`` WARC files, their WAT files, the paths lists and truth.parquet to ``folder``.

    Every pair of ``web`` appears on one page (URLs under ``base_url``, where
    the web is served); pages are dealt to the files in turn.
    """
    if files < 1:
        raise ValueError(f"files={files} must be at least 1")
    os.makedirs(folder, exist_ok=True)
    base_url = base_url.rstrip("/")
    per_page = mix.entries_per_page
    page_count = max(1, -(-len(web) // per_page))
    truth: list[dict] = []
    names: list[tuple[str, str]] = []
    for number_of_file in range(files):
        stem = f"SYNTH-{seed:02d}-{number_of_file:05d}"
        warc, wat = _FileWriter(f"{stem}.warc.gz"), _FileWriter(f"{stem}.warc.wat.gz")
        warc.append(_warcinfo(warc.name, seed))
        wat.append(_warcinfo(wat.name, seed))
        numbers = range(number_of_file, page_count, files)
        warc_faults, wat_faults = _fault_plan(len(numbers), mix.faults)
        for position, number in enumerate(numbers):
            entries = range(number * per_page, min(len(web), (number + 1) * per_page))
            page = _build_page(web, number, entries, base_url, mix, seed)
            faults = (warc_faults.get(position), wat_faults.get(position))
            truth += _write_page(page, number, seed, warc, wat, faults)
        for writer in (warc, wat):
            with open(os.path.join(folder, writer.name), "wb") as stream:
                stream.write(writer.data)
        names.append((warc.name, wat.name))
    _write_paths(folder, "warc", [warc_name for warc_name, _ in names])
    _write_paths(folder, "wat", [wat_name for _, wat_name in names])
    truth_path = os.path.join(folder, "truth.parquet")
    pq.write_table(pa.Table.from_pylist(truth, schema=TRUTH_SCHEMA), truth_path)
    return Crawl(
        tuple(os.path.join(folder, warc_name) for warc_name, _ in names),
        tuple(os.path.join(folder, wat_name) for _, wat_name in names),
        truth_path,
        folder,
    )
