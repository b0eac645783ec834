"""Sample grids of the report: which rows to show, their full ledger rows and thumbnails.

A reader judges filters by looking at pairs, so the report shows kept pairs,
kept pairs just above the CLIP threshold, and dropped and failed pairs of
every reason. Images of kept pairs come from the final shards; a dropped
pair's image, where one was downloaded, from its chunk's raw shard under
``DIR/fetch/`` (the tar its commit marker names, ``store.RawStore``). Each
tar is read up to the last member wanted, and samples are drawn from a few
chunks only, so a report of a thousand shards opens a handful of tars; rows
of other chunks fill in where those chunks have too few.
"""

from __future__ import annotations

import base64
import io
import logging
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from paircurate.report.data import (
    Funnel,
    Outputs,
    Thresholds,
    as_labels,
    as_numpy,
    row_thresholds,
)
from paircurate.report.stream import Labels, LedgerFiles, Lowest, row_priority
from paircurate.schemas.codes import REASONS, Status
from paircurate.transforms.output.store import RawStore

log = logging.getLogger(__name__)

KEPT_SAMPLES = 12
REASON_SAMPLES = 6
SEMANTIC_GROUPS = 3  # semantic duplicate groups shown whole (up to REASON_SAMPLES pairs each)
POOL_CHUNKS = 4  # chunks samples are drawn from first
MAX_TARS = 24  # tars opened for thumbnails, at most
THUMBNAIL_PX = 160
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp"})
DETAIL_COLUMNS = (
    "uid", "url", "caption", "status", "reason", "reason_detail", "language", "clip_score",
    "chunk", "shard", "key", "image_format", "original_width", "original_height",
)  # fmt: skip


@dataclass
class Sample:
    """One pair as the grid shows it."""

    row: dict[str, Any]
    threshold: float | None = None
    thumbnail: str | None = None  # a data: URI
    image_note: str = "thumbnails left out"  # why there is no thumbnail


class SemanticGroups:
    """A few semantic duplicate groups, their pairs side by side, picked in one streamed pass.

    The groups are those whose ids (the smallest uid of each, a hash) are the
    smallest: a random choice, the same on every run. A group enters the
    choice when its first row is seen and leaves it only for a smaller id, so
    every row of a chosen group is seen while it is chosen.
    """

    def __init__(self, count: int = SEMANTIC_GROUPS):
        self.count = count
        self.places: dict[str, list[tuple[int, int]]] = {}
        self.rows: dict[str, int] = {}

    def add(self, file_index: int, places: np.ndarray, clusters: pa.ChunkedArray) -> None:
        present = np.flatnonzero(~np.asarray(pc.is_null(clusters).to_numpy(zero_copy_only=False)))
        if present.size == 0:
            return
        values = clusters.take(pa.array(present)).to_pylist()
        for row, cluster in zip(present.tolist(), values, strict=True):
            if cluster not in self.places:
                if len(self.places) == self.count:
                    largest = max(self.places)
                    if cluster > largest:
                        continue
                    del self.places[largest], self.rows[largest]
                self.places[cluster], self.rows[cluster] = [], 0
            self.rows[cluster] += 1
            if len(self.places[cluster]) < REASON_SAMPLES:
                self.places[cluster].append((file_index, int(places[row])))

    def chosen(self) -> list[tuple[SampleGroup, list[tuple[int, int]]]]:
        groups = []
        for cluster in sorted(self.places):
            title = f"Semantic duplicate group {cluster[:12]}"
            text = (
                "pairs whose image embeddings are near-identical: the one kept (or dropped by an "
                "earlier rule) and those dropped as its semantic_duplicate"
            )
            groups.append((SampleGroup(f"semantic-{cluster[:12]}", title, text, self.rows[cluster]),
                           self.places[cluster]))  # fmt: skip
        return groups


@dataclass
class SampleGroup:
    """One grid: a title, how many rows it stands for, and the pairs drawn from them."""

    id: str
    title: str
    description: str
    rows: int
    samples: list[Sample] = field(default_factory=list)


class SampleChooser:
    """Picks each grid's rows in one streamed pass, holding a few candidates per grid.

    A row's draw order is a fixed pseudo-random number of its place in the
    ledger (``stream.row_priority``), so the choice is deterministic and does
    not depend on the batch size. Rows of a few chunks (those whose numbers
    draw lowest), and rows with an image, come first, so thumbnails come from
    a handful of tars; rows elsewhere fill in where those have too few.
    """

    def __init__(self, funnel: Funnel, thresholds: Thresholds, chunks: set[int]):
        self.thresholds = thresholds
        ranked = sorted(chunks, key=lambda c: int(row_priority(0, np.array([c]))[0]))
        self.pool = np.array(ranked[:POOL_CHUNKS], dtype=np.float64)
        self.kept = SampleGroup("kept", "Kept pairs", "a random sample of the kept pairs", 0)
        self.kept_rows = Lowest(KEPT_SAMPLES)
        self.above = above_threshold_group(thresholds)
        self.above_rows = Lowest(KEPT_SAMPLES)
        self.reasons: dict[str, tuple[SampleGroup, Lowest]] = {}
        for step in funnel.steps:
            for item in step["reasons"]:
                code, status = item["code"], item["status"]
                title = f"{status.capitalize()}: {code}"
                group = SampleGroup(f"reason-{code}", title, item["description"], 0)
                self.reasons[code] = (group, Lowest(REASON_SAMPLES))
        self.semantic = SemanticGroups()

    def add(
        self,
        file_index: int,
        offset: int,
        batch: pa.Table,
        status: Labels,
        reason: Labels,
        scores: np.ndarray,
    ) -> None:
        places = offset + np.arange(batch.num_rows, dtype=np.int64)
        priority = row_priority(file_index, places)
        chunks = as_numpy(batch["chunk"])
        preferred = ~np.isfinite(chunks) | np.isin(chunks, self.pool)
        has_image = ~np.asarray(pc.is_null(batch["image_format"]).to_numpy(zero_copy_only=False))
        kept = status.equal(Status.KEPT.value)
        self.kept.rows += int(kept.sum())
        tier = np.where(preferred, 0, 1)
        self.kept_rows.offer_batch(kept, (tier, priority), file_index, places)
        scored = kept & np.isfinite(scores)
        self.above.rows += int(scored.sum())
        margin = scores.copy()
        if self.thresholds.any and scored.any():
            languages = as_labels(batch["language"].filter(pa.array(scored)), "")
            margin[scored] -= row_thresholds(languages, self.thresholds)
        self.above_rows.offer_batch(scored, (tier, margin), file_index, places)
        # Preferred rows with an image first, then preferred rows, then rows with an image.
        tier = np.select([preferred & has_image, preferred, has_image], [0, 1, 2], 3)
        for index, code in enumerate(reason.names):
            mask = reason.codes == index
            if code == "":  # a row without a reason that was not kept
                code, mask = "(no reason)", mask & ~kept
            group, lowest = self.reasons.get(code, (None, None))
            if group is not None:
                group.rows += int(mask.sum())
                lowest.offer_batch(mask, (tier, priority), file_index, places)
        if "semantic_cluster" in batch.column_names:
            self.semantic.add(file_index, places, batch["semantic_cluster"])

    def chosen(self) -> list[tuple[SampleGroup, list[tuple[int, int]]]]:
        """The groups and, for each, the (ledger file, row) places of its sampled rows.

        Random draws are shown in ledger order; the pairs above the threshold
        closest to it first.
        """
        groups = [(self.kept, sorted(self.kept_rows.items()))]
        groups.append((self.above, self.above_rows.items()))
        groups += [(group, sorted(lowest.items())) for group, lowest in self.reasons.values()]
        return groups + self.semantic.chosen()


def above_threshold_group(thresholds: Thresholds) -> SampleGroup:
    """Kept pairs with the smallest margin over the threshold each had to clear."""
    if thresholds.any:
        title, text = "Kept pairs just above the threshold", "the kept pairs closest to their"
        text += " CLIP threshold: what the threshold lets through"
    else:
        title, text = "Lowest-scored kept pairs", "no CLIP threshold in force: the kept pairs"
        text += " with the lowest CLIP scores"
    return SampleGroup("above-threshold", title, text, 0)


def read_rows(files: LedgerFiles, places: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The full ledger rows (DETAIL_COLUMNS) at (file, row) ``places``, in the order given.

    Only the row groups that hold a wanted row are read.
    """
    rows: list[dict[str, Any]] = [{} for _ in places]
    by_file: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for slot, (file_index, offset) in enumerate(places):
        by_file[file_index].append((slot, offset))
    for file_index, wanted in by_file.items():
        with files.outputs.filesystem.open_input_file(files.paths[file_index]) as stream:
            parquet = pq.ParquetFile(stream)
            columns = [name for name in DETAIL_COLUMNS if name in parquet.schema_arrow.names]
            sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)])
            groups = sorted({int(np.searchsorted(starts, o, side="right")) - 1 for _, o in wanted})
            table = parquet.read_row_groups(groups, columns=columns)
            read_before = np.cumsum([0] + [sizes[g] for g in groups])
            first_rows = dict(zip(groups, read_before.tolist(), strict=False))
            local = []
            for _, offset in wanted:
                group = int(np.searchsorted(starts, offset, side="right")) - 1
                local.append(first_rows[group] + offset - int(starts[group]))
            taken = table.take(pa.array(local, pa.int64())).to_pylist()
            for (slot, _), row in zip(wanted, taken, strict=True):
                rows[slot] = {name: row.get(name) for name in DETAIL_COLUMNS}
    return rows


# -- thumbnails ---------------------------------------------------------------------------


def thumbnail_uri(data: bytes) -> str | None:
    """A small WebP data: URI of an image, or None when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            image.save(buffer, "WEBP", quality=70)
    except Exception:  # noqa: BLE001 - hostile bytes: any decoder error means no thumbnail
        return None
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class RawTars:
    """The committed raw tar of each chunk of the run's own raw store, looked up once each."""

    def __init__(self, raw: RawStore | None):
        self.raw = raw
        self.found: dict[int, str | None] = {}

    def of(self, chunk: int) -> str | None:
        if self.raw is None:
            return None
        if chunk not in self.found:
            try:
                self.found[chunk] = self.raw.tar_of(chunk)
            except Exception as error:  # noqa: BLE001 - an unreadable marker: no raw image
                log.warning("report: cannot read raw shard %s: %s", self.raw.marker(chunk), error)
                self.found[chunk] = None
        return self.found[chunk]


def image_sources(outputs: Outputs, row: dict[str, Any], raw_tars: RawTars) -> list[str]:
    """Tars that may hold the row's image: its final shard, then its chunk's raw shard."""
    sources = []
    if row.get("shard") and row.get("status") == Status.KEPT.value:
        sources.append(outputs.path("shards", f"{row['shard']}.tar"))
    # A URL repeat with the same caption has its original's uid, and so its image.
    stored = row.get("image_format") or row.get("reason") == "url_duplicate"
    raw_tar = raw_tars.of(int(row["chunk"])) if stored and row.get("chunk") is not None else None
    if raw_tar is not None:
        sources.append(raw_tar)
    return sources


def wanted_stem(name: str, stems: set[str]) -> str | None:
    stem, _, ext = name.rpartition("/")[2].partition(".")
    return stem if stem in stems and ext.lower() in IMAGE_EXTENSIONS else None


def read_images(outputs: Outputs, tar_path: str, stems: set[str]) -> dict[str, bytes]:
    """{stem: image bytes} for the members of the tar named ``stem.<image ext>``, read once."""
    found: dict[str, bytes] = {}
    try:
        with (
            outputs.filesystem.open_input_file(tar_path) as stream,
            tarfile.open(fileobj=stream, mode="r:") as tar,
        ):
            for info in tar:
                stem = wanted_stem(info.name, stems)
                handle = tar.extractfile(info) if stem and stem not in found else None
                if handle is not None:
                    found[stem] = handle.read()
                    if len(found) == len(stems):
                        break
    except (OSError, tarfile.TarError) as error:
        log.warning("report: cannot read images from %s: %s", tar_path, error)
    return found


def add_thumbnails(outputs: Outputs, samples: list[Sample], raw_shards: str | None = None) -> None:
    """Fill each sample's thumbnail from the first tar that holds its image.

    ``raw_shards`` is the run's raw store as stats.json names it (``fetch/<fingerprint>``).
    """
    raw_tars = RawTars(outputs.layout.raw_store_named(raw_shards) if raw_shards else None)
    waiting = {id(sample): sample for sample in samples}
    plan: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        for source in image_sources(outputs, sample.row, raw_tars):
            plan[source].append(sample)
    opened = 0
    for tar_path, wanting in sorted(plan.items(), key=lambda item: -len(item[1])):
        wanting = [sample for sample in wanting if id(sample) in waiting]
        if not wanting or not outputs.is_file(tar_path):
            continue
        if opened == MAX_TARS:
            break
        opened += 1
        keys = {sample_stem(sample.row, tar_path, outputs) for sample in wanting}
        images = read_images(outputs, tar_path, keys)
        for sample in wanting:
            data = images.get(sample_stem(sample.row, tar_path, outputs))
            if data is not None:
                sample.thumbnail = thumbnail_uri(data)
                sample.image_note = "" if sample.thumbnail else "the image cannot be decoded"
                waiting.pop(id(sample), None)
    for sample in waiting.values():
        sample.image_note = missing_image_note(sample.row)


def missing_image_note(row: dict[str, Any]) -> str:
    """Why a pair has no thumbnail, from how far it got."""
    if row.get("image_format"):
        return "image not found in the shards kept on disk"
    if row.get("original_width"):
        return "downloaded, but dropped before it was stored"
    known = REASONS.get(row.get("reason") or "")
    if known is None:
        return "no image stored"
    if known.stage in ("read", "caption") or known.code == "url_duplicate":
        return "not downloaded: dropped before the download"
    return "the download failed" if known.stage == "fetch" else "the image could not be decoded"


def sample_stem(row: dict[str, Any], tar_path: str, outputs: Outputs) -> str:
    """Final shards name members by key, raw shards by uid."""
    in_shards = tar_path.startswith(outputs.path("shards") + "/")
    return str(row.get("key") if in_shards and row.get("key") else row.get("uid"))
