"""What lies on disk: the run folder's layout and the raw-shard store inside it.

Every stage that reads or writes a run's files asks this module where they
are, so the layout is written down once:

    DIR/shards/NNNNN.tar, NNNNN.parquet, sizes.json   final WebDataset shards
    DIR/shards/NNNNN.idx, shardindex.json             their DALI and wids indexes
    DIR/metadata/part-NNNNN.parquet                   a text-only run's rows
    DIR/ledger/part-NNNNN.parquet                     every input row, once
    DIR/embeddings/img_emb/img_emb_NNNNN.npy, text_emb/..., provenance.json
    DIR/stats.json, DIR/report.html
    DIR/croissant.json, DIR/DATASET_CARD.md           the dataset card
    DIR/removed.parquet                               what ``paircurate remove`` took out
    DIR/removing/vN/                                  a removal under way (``remove``)
    DIR/eval/NAME.json                                results of ``paircurate eval``
    DIR/fetch/<fingerprint>/                          raw shards (``RawStore``)

A raw shard is one committed Fetch attempt at one chunk: a tar of the
re-encoded images named ``<uid>.<ext>`` and a Parquet of every row of the
chunk with all it measured. Each attempt writes its tar under a name of its
own (``NNNNN-<attempt>.tar``); the Parquet (``NNNNN.parquet``) is written last,
replaces any earlier one in one step, and names in its metadata the tar it
belongs to. So the Parquet is the commit marker, and a reader that opens the
tar the marker names always sees the images of the rows it read, even while
another attempt at the same chunk (a retried bundle, a worker that lost its
lease, a speculative copy) commits beside it. Tars no marker names are
deleted by ``RawStore.clean`` once no attempt can still commit.
"""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from paircurate.schemas.records import rows_to_table
from paircurate.transforms.output import storage
from paircurate.transforms.output.indexes import dali_index, samples_of
from paircurate.transforms.output.shards import TarWriter, read_members, shard_name
from paircurate.transforms.output.storage import Files

RAW_FOLDER = "fetch"
EVAL_FOLDER = "eval"
REPORT_NAME = "report.html"
# The key in a raw Parquet's schema metadata naming the tar of the same attempt.
TAR_KEY = b"paircurate.raw_tar"


def image_member(uid: str, ext: str) -> str:
    """A raw tar's member name for a row's image."""
    return f"{uid}.{ext}"


def write_parquet(files: Files, path: str, rows: list[dict], schema: pa.Schema) -> None:
    """``rows`` as one Parquet file of ``schema`` at ``path``, written atomically."""
    table = rows_to_table(rows, schema)
    storage.write_atomically(files, path, lambda stream: pq.write_table(table, stream))


@dataclass(frozen=True)
class WrittenShard:
    """A final shard as written: its size in bytes, its samples and their images' bytes."""

    size: int
    samples: int
    image_bytes: int


class OutputLayout:
    """The paths of one run folder (``--output``) on ``files``."""

    def __init__(self, files: Files, root: str):
        self.files, self.root = files, root

    def path(self, *parts: str) -> str:
        return self.files.join(self.root, *parts)

    @property
    def shards(self) -> str:
        return self.path("shards")

    @property
    def ledger(self) -> str:
        return self.path("ledger")

    @property
    def metadata(self) -> str:
        return self.path("metadata")

    def shard_tar(self, name: str) -> str:
        return self.path("shards", f"{name}.tar")

    def shard_parquet(self, name: str) -> str:
        return self.path("shards", f"{name}.parquet")

    def ledger_part(self, name: str) -> str:
        return self.path("ledger", f"part-{name}.parquet")

    def metadata_part(self, name: str) -> str:
        return self.path("metadata", f"part-{name}.parquet")

    @property
    def extract_ledger(self) -> str:
        """Every candidate <img> and failed record of the crawl files (the extract step)."""
        return self.path("extract_ledger")

    def extract_ledger_part(self, name: str) -> str:
        return self.path("extract_ledger", f"part-{name}.parquet")

    @property
    def pairs(self) -> str:
        """The pairs ``paircurate extract`` found: the input of a later ``run``."""
        return self.path("pairs")

    def pairs_part(self, name: str) -> str:
        return self.path("pairs", f"part-{name}.parquet")

    def embeddings(self, prefix: str, name: str) -> str:
        """``prefix`` is img_emb or text_emb, the names clip-retrieval reads."""
        return self.path("embeddings", prefix, f"{prefix}_{name}.npy")

    @property
    def embeddings_provenance(self) -> str:
        """What made the embeddings (``transforms.embeddings.provenance``), beside them."""
        return self.path("embeddings", "provenance.json")

    @property
    def sizes_json(self) -> str:
        return self.path("shards", "sizes.json")

    def dali_index(self, name: str) -> str:
        """DALI's index of shard ``name``: beside the tar, named as DALI's wds2idx names it."""
        return self.path("shards", f"{name}.idx")

    @property
    def wids_index(self) -> str:
        """The wids shard index of the run, beside the shards it names."""
        return self.path("shards", "shardindex.json")

    @property
    def croissant_json(self) -> str:
        return self.path("croissant.json")

    @property
    def dataset_card(self) -> str:
        return self.path("DATASET_CARD.md")

    @property
    def removed_parquet(self) -> str:
        """Every row ``paircurate remove`` took out, and why: the diff a copy is cleaned with."""
        return self.path("removed.parquet")

    def write_shard(self, name: str, fill: Callable[[TarWriter], int]) -> WrittenShard:
        """Shard ``name``'s tar, written atomically, and its DALI index beside it.

        ``fill`` adds the members and returns the bytes of images it added. The
        index comes from the offsets the writer recorded; a shard left without
        samples loses an index an earlier write left.
        """

        def write(stream) -> tuple[int, TarWriter]:
            writer = TarWriter(stream)
            image_bytes = fill(writer)
            writer.close()
            return image_bytes, writer

        image_bytes, writer = storage.write_atomically(self.files, self.shard_tar(name), write)
        index = dali_index(writer.members)
        if index is not None:
            storage.write_bytes(self.files, self.dali_index(name), index.encode())
        elif self.files.exists(self.dali_index(name)):
            self.files.delete([self.dali_index(name)])
        samples = len(samples_of(writer.members))
        return WrittenShard(writer.size, samples, image_bytes)

    @property
    def removing(self) -> str:
        """Where a removal under way keeps its records (``removal_folder``)."""
        return self.path("removing")

    def removal_folder(self, version: int) -> str:
        """Per-part records of the removal that makes ``version``, until it is finished."""
        return self.files.join(self.removing, f"v{version}")

    def removal_part(self, version: int, name: str) -> str:
        return self.files.join(self.removal_folder(version), f"part-{name}.parquet")

    def embeddings_of(self, name: str) -> list[str]:
        """The embedding files of shard ``name`` (image, then text), present or not."""
        return [self.embeddings(prefix, name) for prefix in ("img_emb", "text_emb")]

    @property
    def stats_json(self) -> str:
        return self.path("stats.json")

    @property
    def report_html(self) -> str:
        return self.path(REPORT_NAME)

    @property
    def eval_results(self) -> str:
        """The glob of the run's evaluation results, which its report shows."""
        return self.path(EVAL_FOLDER, "*.json")

    @staticmethod
    def raw_name(fingerprint: str) -> str:
        """The raw folder relative to the run folder, as stats.json's ``raw_shards`` names it."""
        return f"{RAW_FOLDER}/{fingerprint}"

    def raw_store(self, fingerprint: str) -> RawStore:
        return RawStore(self.files, self.path(RAW_FOLDER, fingerprint))

    def raw_store_named(self, raw_name: str) -> RawStore:
        """The raw store stats.json's ``raw_shards`` names (``fetch/<fingerprint>``)."""
        return RawStore(self.files, self.path(*raw_name.split("/")))


class RawStore:
    """The committed raw shards of one fetch fingerprint: ``folder`` on ``files``."""

    def __init__(self, files: Files, folder: str):
        self.files, self.folder = files, folder

    def marker(self, chunk: int) -> str:
        return self.files.join(self.folder, f"{shard_name(chunk)}.parquet")

    def tar_of(self, chunk: int) -> str | None:
        """The tar the chunk's commit marker names; None without a marker or a tar."""
        if not self.files.exists(self.marker(chunk)):
            return None
        with self.files.open_read(self.marker(chunk)) as stream:
            metadata = pq.read_schema(stream).metadata or {}
        name = metadata.get(TAR_KEY)
        return self.files.join(self.folder, name.decode()) if name else None

    def rows(self, chunk: int, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Every row of a committed chunk, as Fetch recorded it (``columns`` only)."""
        return self._read(chunk, columns)[0]

    def rows_and_tar(
        self, chunk: int, columns: list[str] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The rows of a committed chunk and the tar of the same commit (None: no images)."""
        return self._read(chunk, columns)

    def _read(self, chunk: int, columns: list[str] | None) -> tuple[list[dict], str | None]:
        with self.files.open_read(self.marker(chunk)) as stream:
            table = pq.read_table(stream, columns=columns)
        name = (table.schema.metadata or {}).get(TAR_KEY)
        tar = self.files.join(self.folder, name.decode()) if name else None
        return table.to_pylist(), tar

    def images(self, tar: str, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """The named members of the raw tar ``tar``, in the order asked (KeyError if one lacks)."""
        with self.files.open_read(tar) as stream:
            yield from read_members(stream, names)

    def write_tar(self, chunk: int, fill: Callable[[TarWriter], None]) -> str:
        """A tar of this attempt under a name of its own; ``fill`` adds the members.

        Returns the tar's name, for ``commit``. Until then no reader looks at it.
        """
        name = f"{shard_name(chunk)}-{uuid.uuid4().hex[:16]}.tar"

        def write(stream) -> None:
            writer = TarWriter(stream)
            fill(writer)
            writer.close()

        storage.write_atomically(self.files, self.files.join(self.folder, name), write)
        return name

    def copy_members(self, source: str, writer: TarWriter, skip: set[str]) -> int:
        """Stream every member of the raw tar ``source`` but those in ``skip`` into ``writer``."""
        copied = 0
        with self.files.open_read(source) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                handle = tar.extractfile(info) if info.name not in skip else None
                if handle is not None:
                    writer.add(info.name, handle.read())
                    copied += 1
        return copied

    def commit(self, chunk: int, rows: list[dict], schema: pa.Schema, tar: str | None) -> None:
        """Write the chunk's marker: ``rows``, naming ``tar`` (from ``write_tar``) if any.

        The marker replaces an earlier one in one step, so a reader sees either
        commit whole, never a marker of one attempt beside the tar of another.
        """
        metadata = dict(schema.metadata or {})
        if tar is not None:
            metadata[TAR_KEY] = tar.encode()
        write_parquet(self.files, self.marker(chunk), rows, schema.with_metadata(metadata))

    def committed(self, chunk: int, identity: Callable[[dict], Any], expected: set) -> bool:
        """Whether the chunk is committed with exactly the rows whose identities are ``expected``.

        An unreadable marker counts as not committed: the chunk is fetched again.
        """
        if not self.files.exists(self.marker(chunk)):
            return False
        try:
            rows = self.rows(chunk, ["uid", "source", "row_number"])
        except Exception:  # noqa: BLE001 - any unreadable marker means: fetch again
            return False
        return {identity(row) for row in rows} == expected

    def clean(self, chunk: int) -> int:
        """Delete the chunk's tars that its marker does not name; returns how many.

        Safe only once no attempt at the chunk can still commit (the job's Write
        step, after every Fetch is done): an uncommitted attempt's tar is not
        named by the marker yet.
        """
        if not self.files.exists(self.marker(chunk)):
            return 0
        keep = self.tar_of(chunk)
        pattern = self.files.join(self.folder, f"{shard_name(chunk)}-*.tar")
        stale = [info.path for info in self.files.match(pattern) if info.path != keep]
        if stale:
            self.files.delete(stale)
        return len(stale)
