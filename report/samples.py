"""Sample grids of the report: which rows to show, their full ledger rows and thumbnails.

A reader judges filters by looking at pairs, so the report shows kept pairs,
kept pairs just above the CLIP threshold, and dropped and failed pairs of
every reason. Images of kept pairs come from the final shards; a dropped
pair's image, where one was downloaded, from its chunk's raw shard under
``DIR/fetch/``. Each tar is read up to the last member wanted, and samples are
drawn from a few chunks only, so a report of a thousand shards opens a
handful of tars; rows of other chunks fill in where those chunks have too few.
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
import pyarrow.dataset as ds
from PIL import Image

from paircurate.report.data import (
    Outputs,
    Thresholds,
    as_labels,
    as_numpy,
    row_thresholds,
)
from paircurate.schemas.codes import REASONS, Status
from paircurate.transforms.output.shards import shard_name

log = logging.getLogger(__name__)

KEPT_SAMPLES = 12
REASON_SAMPLES = 6
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


@dataclass
class SampleGroup:
    """One grid: a title, how many rows it stands for, and the pairs drawn from them."""

    id: str
    title: str
    description: str
    rows: int
    samples: list[Sample] = field(default_factory=list)


def pick(
    mask: np.ndarray, count: int, rng: np.random.Generator, *preferences: np.ndarray
) -> np.ndarray:
    """Up to ``count`` random row positions where ``mask`` holds.

    Rows in the first of ``preferences`` come first, then the second's, and so
    on, then any row of ``mask``.
    """
    taken = np.zeros(mask.size, dtype=bool)
    chosen: list[int] = []
    for preferred in (*preferences, mask):
        candidates = np.flatnonzero(mask & preferred & ~taken)
        take = min(count - len(chosen), candidates.size)
        if take > 0:
            picked = rng.choice(candidates, size=take, replace=False)
            taken[picked] = True
            chosen.extend(picked.tolist())
    return np.asarray(sorted(chosen), dtype=np.int64)


def lowest(mask: np.ndarray, key: np.ndarray, count: int, preferred: np.ndarray) -> np.ndarray:
    """Up to ``count`` positions where ``mask`` holds with the smallest ``key``, preferred first."""
    chosen: list[int] = []
    for part in (mask & preferred, mask & ~preferred):
        candidates = np.flatnonzero(part)
        order = candidates[np.argsort(key[candidates], kind="stable")]
        chosen.extend(order[: count - len(chosen)].tolist())
    return np.asarray(chosen, dtype=np.int64)


def sample_pool(chunks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows in a few randomly chosen chunks (and rows with no chunk): where samples come from."""
    present = np.unique(chunks[np.isfinite(chunks)])
    if present.size > POOL_CHUNKS:
        present = rng.choice(present, size=POOL_CHUNKS, replace=False)
    return ~np.isfinite(chunks) | np.isin(chunks, present)


def choose_samples(
    scan: pa.Table, thresholds: Thresholds, reasons: list[tuple[str, str, str]], seed: int = 0
) -> list[tuple[SampleGroup, np.ndarray]]:
    """The groups and, for each, the scan positions of its sampled rows.

    ``reasons`` is (code, status, description) for every reason in the funnel.
    """
    rng = np.random.default_rng(seed)
    status = as_labels(scan["status"], "unknown")
    reason = as_labels(scan["reason"], "")
    scores = as_numpy(scan["clip_score"])
    has_image = ~np.asarray(pc.is_null(scan["image_format"]).to_numpy(zero_copy_only=False))
    preferred = sample_pool(as_numpy(scan["chunk"]), rng)
    kept = status == Status.KEPT.value
    groups = []
    group = SampleGroup("kept", "Kept pairs", "a random sample of the kept pairs", int(kept.sum()))
    groups.append((group, pick(kept, KEPT_SAMPLES, rng, preferred)))
    groups.append(above_threshold(scan, thresholds, kept, scores, preferred))
    for code, code_status, description in reasons:
        mask = reason == code if code != "(no reason)" else (reason == "") & ~kept
        title = f"{code_status.capitalize()}: {code}"
        group = SampleGroup(f"reason-{code}", title, description, int(mask.sum()))
        chosen = pick(mask, REASON_SAMPLES, rng, preferred & has_image, preferred, has_image)
        groups.append((group, chosen))
    return groups


def above_threshold(
    scan: pa.Table,
    thresholds: Thresholds,
    kept: np.ndarray,
    scores: np.ndarray,
    preferred: np.ndarray,
) -> tuple[SampleGroup, np.ndarray]:
    """Kept pairs with the smallest margin over the threshold each had to clear."""
    scored = kept & np.isfinite(scores)
    if thresholds.any:
        margin = scores - row_thresholds(as_labels(scan["language"], ""), thresholds)
        title, text = "Kept pairs just above the threshold", "the kept pairs closest to their"
        text += " CLIP threshold: what the threshold lets through"
    else:
        margin = scores
        title, text = "Lowest-scored kept pairs", "no CLIP threshold in force: the kept pairs"
        text += " with the lowest CLIP scores"
    group = SampleGroup("above-threshold", title, text, int(scored.sum()))
    return group, lowest(scored, margin, KEPT_SAMPLES, preferred)


def read_rows(dataset: ds.Dataset, scan: pa.Table, positions: np.ndarray) -> list[dict[str, Any]]:
    """The full ledger rows (DETAIL_COLUMNS) at scan ``positions``, in the order given."""
    if positions.size == 0:
        return []
    fragments = list(dataset.get_fragments())
    columns = [name for name in DETAIL_COLUMNS if name in dataset.schema.names]
    where = scan.select(["fragment", "offset"]).take(pa.array(positions))
    by_fragment: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for slot, (fragment, offset) in enumerate(
        zip(where["fragment"].to_pylist(), where["offset"].to_pylist(), strict=True)
    ):
        by_fragment[fragment].append((slot, offset))
    rows: list[dict[str, Any]] = [{} for _ in range(positions.size)]
    for fragment, wanted in by_fragment.items():
        scanner = fragments[fragment].scanner(schema=dataset.schema, columns=columns)
        table = scanner.take(pa.array([offset for _, offset in wanted]))
        for (slot, _), row in zip(wanted, table.to_pylist(), strict=True):
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


def raw_shard_folders(outputs: Outputs, current: str | None = None) -> list[str]:
    """The run's raw shard folder, as stats.json's ``raw_shards`` names it (none without)."""
    return [outputs.path(*current.split("/"))] if current else []


def image_sources(outputs: Outputs, row: dict[str, Any], raw_folders: list[str]) -> list[str]:
    """Tars that may hold the row's image: its final shard, then its chunk's raw shards."""
    sources = []
    if row.get("shard") and row.get("status") == Status.KEPT.value:
        sources.append(outputs.path("shards", f"{row['shard']}.tar"))
    # A URL repeat with the same caption has its original's uid, and so its image.
    stored = row.get("image_format") or row.get("reason") == "url_duplicate"
    if stored and row.get("chunk") is not None:
        sources += [f"{folder}/{shard_name(int(row['chunk']))}.tar" for folder in raw_folders]
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
    """Fill each sample's thumbnail from the first tar that holds its image."""
    raw_folders = raw_shard_folders(outputs, raw_shards)
    waiting = {id(sample): sample for sample in samples}
    plan: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        for source in image_sources(outputs, sample.row, raw_folders):
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
