"""Arrow schemas of the ledger and of the per-shard Parquet.

The ledger and the shard Parquet share one set of columns: a shard's Parquet is
the ledger rows of its kept samples. Extra input columns that the user carries
(``--keep-cols``) are appended after these, with the type they had in the input.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

# (name, type, description): docs/ledger.md's table is generated from this.
LEDGER_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("uid", pa.string(), "unique, stable id: 128 bits of sha256(url, caption), hex (see below)"),
    ("url", pa.string(), "the URL as read"),
    ("caption", pa.string(), "the caption as read"),
    ("caption_normalized", pa.string(), "the caption the rules, language id and dedup see"),
    ("language", pa.string(), "ISO 639-1 code of the caption's language, or nolang"),
    ("language_score", pa.float32(), "confidence of the language detection, 0-1"),
    ("source", pa.string(), "input file the row came from"),
    ("row_number", pa.int64(), "0-based row number inside that file"),
    ("status", pa.string(), "kept / dropped / failed"),
    ("reason", pa.string(), "reason code for dropped and failed rows, null when kept"),
    ("reason_detail", pa.string(), "human-readable detail of the reason"),
    ("duplicate_of", pa.string(), "uid of the row this one duplicates (the kept copy)"),
    ("cluster_id", pa.string(), "uid of the keeper of the row's duplicate-pair cluster"),
    ("caption_cluster", pa.string(), "smallest uid of the row's near-duplicate caption cluster"),
    ("image_cluster", pa.string(), "smallest uid of the row's duplicate image cluster"),
    (
        "semantic_cluster",
        pa.string(),
        "smallest uid of the row's semantic duplicate group (near-identical image embeddings)",
    ),
    ("chunk", pa.int32(), "fetch chunk, equal to the index of the shard it lands in"),
    ("shard", pa.string(), "shard file name (without extension) of a kept sample"),
    ("key", pa.string(), "WebDataset key of a kept sample"),
    ("http_status", pa.int32(), "last HTTP status received"),
    ("content_type", pa.string(), "Content-Type header of the response"),
    ("download_ms", pa.float32(), "wall time of the download in milliseconds"),
    ("bytes", pa.int64(), "size of the downloaded body"),
    ("sha256", pa.string(), "sha256 of the downloaded (original) bytes"),
    ("md5", pa.string(), "md5 of the downloaded bytes, as hash lists name them (--exclude md5:)"),
    ("sha1", pa.string(), "sha1 of the downloaded bytes (--exclude sha1:)"),
    ("image_sha256", pa.string(), "sha256 of the image's RGB pixels as resized for the shard"),
    ("phash", pa.string(), "64-bit perceptual hash of the image (16 hex digits)"),
    ("original_width", pa.int32(), "width of the image as downloaded, after EXIF rotation"),
    ("original_height", pa.int32(), "height of the image as downloaded, after EXIF rotation"),
    ("original_format", pa.string(), "format Pillow detected (JPEG, PNG, WEBP, ...)"),
    ("width", pa.int32(), "width of the image written to the shard"),
    ("height", pa.int32(), "height of the image written to the shard"),
    ("image_format", pa.string(), "extension of the image in the shard: jpg, png or webp"),
    (
        "compliance_match",
        pa.string(),
        "excluded / eval_contamination: the list entry (FILE:LINE) or evaluation image matched",
    ),
    ("clip_score", pa.float32(), "cosine similarity of the CLIP image and caption embeddings"),
    (
        "caption_truncated",
        pa.bool_(),
        "the caption had more tokens than the CLIP text encoder reads",
    ),
)

LEDGER_FIELDS = tuple(pa.field(name, dtype) for name, dtype, _ in LEDGER_COLUMNS)
LEDGER_NAMES = frozenset(name for name, _, _ in LEDGER_COLUMNS)


def ledger_subset(*names: str) -> tuple[str, ...]:
    """Some of the ledger's columns, checked against it when the module naming them is imported."""
    unknown = [name for name in names if name not in LEDGER_NAMES]
    if unknown:
        raise ValueError(f"not ledger columns: {unknown}; see schemas/records.py")
    return names


# What each stage sets on a row, so that the stages agree with the ledger on the names.
MEASURED = ledger_subset(
    "reason", "reason_detail", "http_status", "content_type", "download_ms", "bytes", "sha256",
    "original_width", "original_height", "original_format", "width", "height", "image_format",
    "image_sha256", "phash", "md5", "sha1",
)  # fmt: skip
"""What fetching an image measures (Fetch)."""
DECIDED = ledger_subset(
    "reason", "reason_detail", "duplicate_of", "cluster_id", "caption_cluster", "image_cluster",
    "compliance_match",
)  # fmt: skip
"""What a cluster decision sets (Decide)."""
SEMANTIC = ledger_subset("reason", "reason_detail", "duplicate_of", "semantic_cluster")
"""What a semantic dedup decision sets (SemanticDedup)."""
SCORED = ledger_subset("clip_score", "caption_truncated")
"""What scoring a pair sets (Score)."""


def ledger_schema(carried: Iterable[pa.Field] = ()) -> pa.Schema:
    """The ledger schema with the carried input columns appended."""
    return pa.schema([*LEDGER_FIELDS, *carried])


def carried_field(name: str, dtype: pa.DataType) -> pa.Field:
    """The field a carried input column gets in the outputs.

    Null-typed columns (all values missing in the first file) become strings so
    that later files with values still fit.
    """
    if name in LEDGER_NAMES:
        raise ValueError(
            f"--keep-cols: column {name!r} clashes with a ledger column; rename it in the input"
        )
    return pa.field(name, pa.string() if pa.types.is_null(dtype) else dtype)


def working_caption(row: Mapping[str, Any]) -> str:
    """The caption dedup and scoring compare: the normalised one, else the caption as read."""
    return row.get("caption_normalized") or row.get("caption") or ""


def valid_text(text: str) -> str:
    """``text`` with lone surrogates (from JSON escapes such as "\\ud800") replaced by U+FFFD.

    Such strings cannot be encoded as UTF-8, so Beam's coders and Parquet would
    fail on them; valid surrogate pairs become the character they encode.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def as_text(value: Any) -> str | None:
    """A value as text: URL and caption, and carried columns whose files disagree on type.

    Scalars become their str form, lists and dicts JSON, NaN (from files written
    by pandas) null.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:
        return None
    return json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)


def _column(rows: list[Mapping[str, Any]], field: pa.Field) -> pa.Array:
    values = [row.get(field.name) for row in rows]
    if pa.types.is_string(field.type):
        values = [as_text(value) for value in values]
    return pa.array(values, type=field.type)


def rows_to_table(rows: list[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table of ``schema`` from row dicts; columns a row lacks become null.

    Carried columns have one type across all input files (the read stage settles
    it before any work starts, falling back to text where files disagree), so
    every value fits its field.
    """
    arrays = [_column(rows, field) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


class RowCodec:
    """Rows as compact bytes for the trip through a shuffle.

    A row dict costs about 2 KB as Python objects, its pickled tuple of values
    (in schema order, no key names) under 400 bytes. ``append`` frames rows into
    one growing buffer, so a whole group travels as one object instead of
    thousands of small ones that fragment the heap they are retained in.
    """

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.names = tuple(schema.names)
        self._known = frozenset(self.names)

    def encode(self, row: Mapping[str, Any]) -> bytes:
        if not row.keys() <= self._known:
            unknown = sorted(set(row) - self._known)
            raise ValueError(f"row has fields {unknown} that the ledger schema lacks")
        return pickle.dumps(tuple(row.get(name) for name in self.names), protocol=5)

    def decode(self, data: bytes) -> dict[str, Any]:
        return dict(zip(self.names, pickle.loads(data), strict=True))

    def append(self, buffer: bytearray, row: Mapping[str, Any]) -> bytearray:
        """Add one length-prefixed encoded row to ``buffer``."""
        data = self.encode(row)
        buffer += len(data).to_bytes(4, "little")
        buffer += data
        return buffer

    def decode_all(self, buffer: bytes | bytearray) -> list[dict[str, Any]]:
        """Every row ``append`` put into ``buffer``, in order."""
        rows, view, offset = [], memoryview(buffer), 0
        while offset < len(view):
            size = int.from_bytes(view[offset : offset + 4], "little")
            rows.append(self.decode(view[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        return rows
