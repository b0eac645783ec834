"""Taking rows out of a finished run's files, one part at a time (``paircurate remove``).

A part is a chunk's ledger part and, in a run with images, the shard of the same
name (or its metadata part in a text-only run), the shard's embeddings and the
chunk's raw shard. ``PartRewriter.records`` decides what leaves
(``transforms.compliance.removal``) and writes that down first, in the
removal's folder; ``apply`` then rewrites every file of the part from that
record, each file atomically and each step idempotent, so a retried or rerun
part ends the same and never takes out a row that was not recorded:

1. embeddings, whose rows follow the shard Parquet's order (done while the
   Parquet still names the rows to drop; skipped once their lengths differ);
2. the shard tar without the samples' members, with its DALI index;
3. the shard Parquet without their rows;
4. the raw shard without their images, its marker recording them excluded,
   and the old raw tar deleted: no copy of a removed image stays in the run;
5. the ledger part with the rows excluded.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from paircurate.schemas.records import rows_to_table
from paircurate.transforms.compliance.removal import (
    RECORDED,
    ListMatch,
    apply_records,
    excluded_row,
    part_records,
    removed_samples,
)
from paircurate.transforms.output import storage
from paircurate.transforms.output.indexes import split_member
from paircurate.transforms.output.shards import TarWriter
from paircurate.transforms.output.store import OutputLayout, RawStore, image_member


@dataclass(frozen=True)
class PartOutcome:
    """What a part's removal changed: rows, samples, and its shard's new sample count and size."""

    part: str
    rows: int
    samples: int
    shard_samples: int | None = None
    shard_size: int | None = None


def read_table(layout: OutputLayout, path: str) -> pa.Table:
    with layout.files.open_read(path) as stream:
        return pq.read_table(stream)


def write_table(layout: OutputLayout, path: str, table: pa.Table) -> None:
    storage.write_atomically(layout.files, path, lambda stream: pq.write_table(table, stream))


def member_sizes(layout: OutputLayout, tar: str) -> dict[str, int]:
    """Name -> size of every member of a tar, from its headers."""
    with layout.files.open_read(tar) as stream, tarfile.open(fileobj=stream, mode="r:") as opened:
        return {info.name: info.size for info in opened.getmembers()}


class PartRewriter:
    """Takes recorded rows out of the parts of the run in ``layout``; ``raw`` is its raw store
    (None where the run kept none); ``version`` the version the removal makes."""

    def __init__(self, layout: OutputLayout, raw: RawStore | None, version: int, text_only: bool):
        self.layout, self.raw, self.version, self.text_only = layout, raw, version, text_only

    def records(self, part: str, matches: Mapping[str, ListMatch]) -> list[dict[str, Any]]:
        """The part's records: those written by an earlier attempt of this removal, else those
        of ``matches`` (uid -> entry), written down before any file changes."""
        path = self.layout.removal_part(self.version, part)
        if self.layout.files.exists(path):
            return read_table(self.layout, path).to_pylist()
        if not matches:
            return []
        rows = read_table(self.layout, self.layout.ledger_part(part)).to_pylist()
        records = part_records(rows, matches, self.version)
        if records:
            self._add_image_bytes(part, records)
            table = pa.Table.from_pylist(records, schema=RECORDED)
            write_table(self.layout, path, table)
        return records

    def _add_image_bytes(self, part: str, records: list[dict[str, Any]]) -> None:
        """Each record's image size in its shard (0 for rows not kept), for stats.json."""
        samples = removed_samples(records)
        shard = self.layout.shard_tar(part)
        sizes = member_sizes(self.layout, shard) if samples and not self.text_only else {}
        for record in records:
            record["image_bytes"] = sizes.get(f"{record['key']}.{record['image_format']}", 0)

    def apply(self, part: str, records: list[dict[str, Any]]) -> PartOutcome:
        samples = removed_samples(records)
        uids = {record["uid"] for record in samples}
        shard = (None, None)
        if samples and self.text_only:
            self._filter_parquet(self.layout.metadata_part(part), uids)
        elif samples:
            keys = {record["key"] for record in samples}
            self._drop_embeddings(part, uids)
            written = self.layout.write_shard(part, lambda writer: self._copy(part, keys, writer))
            self._filter_parquet(self.layout.shard_parquet(part), uids)
            shard = (written.samples, written.size)
        self._purge_raw(int(part), records)
        ledger = read_table(self.layout, self.layout.ledger_part(part))
        rows = apply_records(ledger.to_pylist(), records)
        write_table(self.layout, self.layout.ledger_part(part), rows_to_table(rows, ledger.schema))
        return PartOutcome(part, len(records), len(samples), *shard)

    def _copy(self, part: str, keys: set[str], writer: TarWriter) -> int:
        """Every member of the shard but the removed samples'. Returns 0: removed image bytes
        are counted from the records, which a retry reads too."""
        with self.layout.files.open_read(self.layout.shard_tar(part)) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    handle = tar.extractfile(info)
                    if handle is not None and split_member(info.name)[0] not in keys:
                        writer.add(info.name, handle.read())
        return 0

    def _filter_parquet(self, path: str, uids: set[str]) -> None:
        table = read_table(self.layout, path)
        kept = table.filter(pc.invert(pc.is_in(table["uid"], pa.array(sorted(uids)))))
        if kept.num_rows != table.num_rows:
            write_table(self.layout, path, kept)

    def _drop_embeddings(self, part: str, uids: set[str]) -> None:
        table = read_table(self.layout, self.layout.shard_parquet(part))
        positions = [i for i, uid in enumerate(table["uid"].to_pylist()) if uid in uids]
        for path in self.layout.embeddings_of(part):
            if not positions or not self.layout.files.exists(path):
                continue
            with self.layout.files.open_read(path) as stream:
                vectors = np.load(io.BytesIO(stream.read()))
            if len(vectors) == table.num_rows:
                kept = np.delete(vectors, positions, axis=0)
                storage.write_atomically(
                    self.layout.files, path, lambda stream, a=kept: np.save(stream, a)
                )

    def _purge_raw(self, chunk: int, records: list[dict[str, Any]]) -> None:
        """The raw shard without the records' images, its marker naming them excluded."""
        if self.raw is None or not self.layout.files.exists(self.raw.marker(chunk)):
            return
        by_uid = {record["uid"]: record for record in records if record.get("image_format")}
        rows, tar = self.raw.rows_and_tar(chunk)
        names = {image_member(uid, r["image_format"]) for uid, r in by_uid.items()}
        present = set(member_sizes(self.layout, tar)) & names if tar else set()
        pending = [row for row in rows if row["uid"] in by_uid and row.get("reason") != "excluded"]
        if not present and not pending:
            return
        if present:
            tar = self.raw.files.join(
                self.raw.folder,
                self.raw.write_tar(chunk, lambda w: self.raw.copy_members(tar, w, present)),
            )
        rows = [excluded_row(row, by_uid[row["uid"]]) if row["uid"] in by_uid else row
                for row in rows]  # fmt: skip
        with self.layout.files.open_read(self.raw.marker(chunk)) as stream:
            schema = pq.read_schema(stream)
        self.raw.commit(chunk, rows, schema, tar.rsplit("/", 1)[-1] if tar else None)
        self.raw.clean(chunk)
