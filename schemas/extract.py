"""Arrow schemas of what the extract step writes: the pairs it finds and its ledger.

A pair is one usable ``<img>`` of a crawled page: ``url`` and ``caption``
(what ``run`` reads), then the page and record it came from. The extract
ledger holds every candidate ``<img>`` once, kept or not, plus one row for
each record that could not be read (its ``image_index`` is null), each with
one reason of ``schemas.codes`` (stage "extract").
"""

from __future__ import annotations

import pyarrow as pa

# (name, type, description): docs/extract.md's tables are generated from these.
PROVENANCE_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("page_url", pa.string(), "the page's URL (WARC-Target-URI)"),
    ("crawl_file", pa.string(), "the WARC or WAT file the record was read from"),
    (
        "record_offset",
        pa.int64(),
        "byte offset of the record in crawl_file: where its gzip member starts",
    ),
    (
        "record_length",
        pa.int64(),
        "bytes of the record in crawl_file (its gzip member): with record_offset, a range read",
    ),
    (
        "record_id",
        pa.string(),
        "WARC-Record-ID of the page's response record (for a WAT record, the one it refers to)",
    ),
    ("image_index", pa.int32(), "0-based position of the <img> among the page's images"),
    (
        "page_language",
        pa.string(),
        "primary subtag of the page's declared language (<html lang>, Content-Language, "
        "<meta http-equiv>), lowercase",
    ),
    ("img_width", pa.int32(), "the <img>'s declared width in pixels, where it is a number"),
    ("img_height", pa.int32(), "the <img>'s declared height in pixels, where it is a number"),
    ("title", pa.string(), "the page's <title>"),
    ("img_title", pa.string(), "the <img>'s title attribute"),
)

PAIR_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("url", pa.string(), "the image URL: the source a browser picks, resolved against the page"),
    ("caption", pa.string(), "the <img>'s alt text, whitespace collapsed"),
    *PROVENANCE_COLUMNS,
)

EXTRACT_LEDGER_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    (
        "uid",
        pa.string(),
        "unique id of the candidate: 128 bits of sha256(crawl_file, record_offset, image_index)",
    ),
    *PAIR_COLUMNS,
    ("source_attribute", pa.string(), "where the URL came from: src, srcset, data-src, ..."),
    ("status", pa.string(), "kept / dropped / failed"),
    ("reason", pa.string(), "reason code of a dropped or failed candidate or record"),
    ("reason_detail", pa.string(), "human-readable detail of the reason"),
)


def _schema(columns: tuple[tuple[str, pa.DataType, str], ...]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype, _ in columns])


PAIR_SCHEMA = _schema(PAIR_COLUMNS)
PROVENANCE_FIELDS = tuple(pa.field(name, dtype) for name, dtype, _ in PROVENANCE_COLUMNS)
EXTRACT_LEDGER_SCHEMA = _schema(EXTRACT_LEDGER_COLUMNS)
PROVENANCE_NAMES = tuple(name for name, _, _ in PROVENANCE_COLUMNS)
