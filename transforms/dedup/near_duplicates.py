"""Candidate duplicate edges between pairs: bucket keys, local buckets, global buckets.

Each row that survived the earlier stages becomes a node ``(uid, chunk, area,
phash)``; nodes compare by uid, which is unique, so the smallest node of a
cluster is well defined. Three kinds of bucket key find candidates:

- ``caption``: LSH band keys of the caption's MinHash signature;
- ``image_exact``: the sha256 of the original bytes and of the pixels as resized for the shard;
- ``image_phash``: pigeonhole bands of the 64-bit pHash (only when every
  repeat of an image is dropped; the pair rule compares pHashes inside caption
  clusters instead, see ``transforms.decide``).

Work happens in two places, so that a key shared by 100,000 rows never meets in
one list: inside a chunk, rows sharing a key are verified against a few
leaders and joined to them by local edges, and only the leaders go on as
entries; across chunks, the entries of one key partition meet in one worker,
which links each bucket member to the bucket's smallest node (a star, never
all pairs). Caption candidates from that global step are verified afterwards
against the chunks' captions (``verify_caption_pairs``); image candidates are
verified on the spot, since an entry carries the pHash.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paircurate.schemas.config import DedupConfig
from paircurate.schemas.records import working_caption
from paircurate.transforms.dedup.bits import GOLDEN64, MASK64, equal_runs, hamming
from paircurate.transforms.dedup.clusters import Node  # (uid, chunk, original area, pHash or 0)
from paircurate.transforms.dedup.minhash import MinHasher, band_keys, jaccard, shingles
from paircurate.transforms.dedup.phash import bit_bands, near_duplicate_pairs

Edge = tuple[str, Node, Node]  # (graph kind, node, node)

CAPTION, IMAGE = "caption", "image"
KEY_KINDS = {"caption": CAPTION, "image_exact": IMAGE, "image_phash": IMAGE}
# Leaders a bucket member is compared with inside a chunk before it is passed on as is.
MAX_LEADERS = 32

ENTRY = np.dtype(
    [("key", "<u8"), ("uid", "S16"), ("chunk", "<i4"), ("area", "<u8"), ("phash", "<u8")]
)


def signed64(value: int) -> int:
    """A 64-bit hash as a signed int: Beam's integer coder takes nothing wider."""
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_distance(first: Node, second: Node) -> int:
    """Hamming distance of two nodes' pHashes."""
    return hamming(first[3], second[3])


def _mix64(values: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit hash of ``values`` and ``salt`` (splitmix64's finaliser), so kinds never meet."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) ^ np.uint64((salt * GOLDEN64) & MASK64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hex_prefix(values: Sequence[str | None]) -> np.ndarray:
    return np.array([int(v[:16], 16) if v else 0 for v in values], dtype=np.uint64)


@dataclass
class ChunkFeatures:
    """What dedup needs of one chunk's surviving rows, sorted by uid."""

    chunk: int
    uids: list[str]
    captions: list[str]
    areas: list[int]
    sha256: list[str | None]
    image_sha256: list[str | None]
    phash: np.ndarray  # uint64, 0 where there is no image
    has_image: np.ndarray  # bool
    _shingles: dict[int, set] = field(default_factory=dict, repr=False)

    @classmethod
    def from_rows(cls, chunk: int, rows: Sequence[dict[str, Any]]) -> ChunkFeatures:
        """The chunk's rows that are still kept (no reason yet), by uid."""
        alive = sorted((row for row in rows if row.get("reason") is None), key=lambda r: r["uid"])
        widths = [row.get("original_width") or 0 for row in alive]
        heights = [row.get("original_height") or 0 for row in alive]
        phashes = [row.get("phash") for row in alive]
        return cls(
            chunk=chunk,
            uids=[row["uid"] for row in alive],
            captions=[working_caption(row) for row in alive],
            areas=[w * h for w, h in zip(widths, heights, strict=True)],
            sha256=[row.get("sha256") for row in alive],
            image_sha256=[row.get("image_sha256") for row in alive],
            phash=np.array([int(v, 16) if v else 0 for v in phashes], dtype=np.uint64),
            has_image=np.array([bool(v) for v in phashes], dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.uids)

    @functools.cached_property
    def uid_bytes(self) -> np.ndarray:
        """The uids as 16 raw bytes each, the form entries carry."""
        return np.array([bytes.fromhex(uid) for uid in self.uids], dtype="S16")

    def node(self, index: int) -> Node:
        return (self.uids[index], self.chunk, self.areas[index], signed64(int(self.phash[index])))

    def shingle_set(self, index: int) -> set:
        if index not in self._shingles:
            self._shingles[index] = set(shingles(self.captions[index]))
        return self._shingles[index]


def ledger_node(row: dict[str, Any]) -> Node:
    """The node ``ChunkFeatures.node`` makes of a row, from the values the ledger keeps of it.

    Later commands that decide clusters again from a finished run's ledger
    (``paircurate preview``) rank keepers by exactly what Decide ranked them by.
    """
    width, height = row.get("original_width") or 0, row.get("original_height") or 0
    phash = row.get("phash")
    return (row["uid"], row["chunk"], width * height, signed64(int(phash, 16) if phash else 0))


def captions_similar(first: str, second: str, threshold: float) -> bool:
    """Exact Jaccard of the 5-gram shingle sets, the check every LSH candidate passes."""
    return first == second or jaccard(set(shingles(first)), set(shingles(second))) >= threshold


def phash_close(first: int, second: int, max_distance: int) -> bool:
    return hamming(first, second) <= max_distance


@dataclass(frozen=True)
class KeyMaker:
    """Bucket keys of a chunk, by key kind, as (row index, key) arrays."""

    config: DedupConfig
    captions: bool = True
    images: bool = True
    phash_buckets: bool = False

    def keys(self, features: ChunkFeatures) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        n = len(features)
        if n == 0:
            return found
        if self.captions:
            hasher = MinHasher(self.config.minhash_perm, self.config.minhash_seed)
            signatures = hasher.signatures(features.captions)
            keys = band_keys(signatures, self.config.minhash_bands, self.config.minhash_rows)
            found["caption"] = _flatten(np.arange(n), keys)
        rows = np.flatnonzero(features.has_image)
        if self.images and len(rows):
            exact = np.stack(
                [
                    _mix64(_hex_prefix([features.sha256[i] for i in rows]), 1),
                    _mix64(_hex_prefix([features.image_sha256[i] for i in rows]), 2),
                ],
                axis=1,
            )
            found["image_exact"] = _flatten(rows, exact)
        if self.images and self.phash_buckets and len(rows):
            bands = bit_bands(features.phash[rows], self.config.phash_max_distance)
            salted = np.stack([_mix64(bands[:, b], 16 + b) for b in range(bands.shape[1])], axis=1)
            found["image_phash"] = _flatten(rows, salted)
        return found


def _flatten(rows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row index, key) for every cell, unique per row and key, sorted by key then row."""
    pairs = np.unique(
        np.stack([keys.reshape(-1), np.repeat(rows, keys.shape[1]).astype(np.uint64)], axis=1),
        axis=0,
    )
    return pairs[:, 1].astype(np.int64), pairs[:, 0]


def _lead(members: Sequence[int], similar: Callable[[int, int], bool]):
    """Split a bucket into leaders and (member, leader) links, comparing with few leaders.

    Members come in uid order, so the first is the bucket's smallest node and
    the outcome is the same on every run.
    """
    leaders: list[int] = []
    links: list[tuple[int, int]] = []
    for member in members:
        compared = leaders[:MAX_LEADERS]
        leader = next((lead for lead in compared if similar(lead, member)), None)
        if leader is not None:
            links.append((member, leader))
        else:
            leaders.append(member)  # an unmatched member goes on as it is: nothing is lost
    return leaders, links


# Distinct pHashes of one band bucket compared all against all, up to this many.
ALL_PAIRS_LIMIT = 4096


def phash_links(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
    """(member, earlier member) links of one pHash band bucket, in bucket order.

    A band of a 64-bit hash is only 64 / (d + 1) bits wide, so a bucket holds
    many unrelated images: equal hashes are linked to their first copy, and the
    distinct ones are compared all against all (vectorised) up to
    ``ALL_PAIRS_LIMIT``, beyond which each is compared with the bucket's first
    ``MAX_LEADERS`` leaders only.
    """
    first_of: dict[int, int] = {}
    links = []
    for position, value in enumerate(hashes.tolist()):
        first = first_of.setdefault(value, position)
        if first != position:
            links.append((position, first))
    distinct = sorted(first_of.values())
    if len(distinct) <= ALL_PAIRS_LIMIT:
        pairs = near_duplicate_pairs(hashes[distinct], max_distance)
        links.extend((distinct[b], distinct[a]) for a, b in pairs)
    else:
        values = hashes.tolist()
        _, near = _lead(distinct, lambda a, b: phash_close(values[a], values[b], max_distance))
        links.extend(near)
    return links


@dataclass
class LocalResult:
    edges: list[Edge]
    entries: dict[str, np.ndarray]  # key kind -> ENTRY array of the keys' leaders


def local_buckets(features: ChunkFeatures, maker: KeyMaker) -> LocalResult:
    """Verified edges between rows of one chunk, and the entries that go on to global buckets."""
    config = maker.config
    linked: set[tuple[str, int, int]] = set()  # (graph, member, leader): once, not once per band
    similar_by_kind: dict[str, Callable[[int, int], bool]] = {
        "caption": lambda a, b: (
            features.captions[a] == features.captions[b]
            or jaccard(features.shingle_set(a), features.shingle_set(b)) >= config.caption_threshold
        ),
        "image_exact": lambda a, b: True,
    }
    edges: list[Edge] = []
    entries: dict[str, np.ndarray] = {}
    for key_kind, (rows, keys) in maker.keys(features).items():
        graph = KEY_KINDS[key_kind]
        forward = np.ones(len(rows), dtype=bool)  # leaders and rows alone with their key
        row_of = rows.tolist()
        for start, stop in equal_runs(keys):
            if key_kind == "image_phash":
                group = phash_links(features.phash[rows[start:stop]], config.phash_max_distance)
                links = [(start + member, start + first) for member, first in group]
            else:
                similar = similar_by_kind[key_kind]
                _, links = _lead(
                    range(start, stop), lambda a, b, f=similar, r=row_of: f(r[a], r[b])
                )
            for member_at, leader_at in links:
                forward[member_at] = False
                member, leader = row_of[member_at], row_of[leader_at]
                if (graph, member, leader) not in linked:
                    linked.add((graph, member, leader))
                    edges.append((graph, features.node(member), features.node(leader)))
        entries[key_kind] = _entries(features, rows[forward], keys[forward])
    return LocalResult(edges, entries)


def _entries(features: ChunkFeatures, rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    out = np.zeros(len(rows), dtype=ENTRY)
    out["key"] = keys
    out["uid"] = features.uid_bytes[rows]
    out["chunk"] = features.chunk
    out["area"] = np.asarray(features.areas, dtype=np.uint64)[rows] if len(rows) else []
    out["phash"] = features.phash[rows]
    return out


def partition_entries(entries: np.ndarray, partitions: int) -> dict[int, np.ndarray]:
    """Entries split by key into ``partitions`` parts; one worker handles each part."""
    parts = (entries["key"] % np.uint64(partitions)).astype(np.int64)
    return {int(p): entries[parts == p] for p in np.unique(parts)}


def entry_node(entry: np.void) -> Node:
    # numpy drops trailing NUL bytes of an "S16" value; the uid is always 16 bytes
    uid = entry["uid"].ljust(16, b"\0").hex()
    chunk, area = int(entry["chunk"]), int(entry["area"])
    return (uid, chunk, area, signed64(int(entry["phash"])))


def global_buckets(key_kind: str, parts: Sequence[np.ndarray], max_distance: int) -> list[Edge]:
    """Star edges from each member of a bucket to its smallest node, across chunks.

    Image entries are verified here (exact keys by equality, pHash bands by
    distance, each against the first node that matches); caption edges are
    candidates that ``verify_caption_pairs`` still has to confirm.
    """
    entries = np.concatenate(parts) if parts else np.zeros(0, ENTRY)
    entries = entries[np.lexsort((entries["uid"], entries["key"]))]
    graph = KEY_KINDS[key_kind]
    edges: list[Edge] = []
    for start, stop in equal_runs(entries["key"]):
        bucket = entries[start:stop]
        if key_kind == "image_phash":
            links = phash_links(bucket["phash"], max_distance)
        else:
            links = [(m, 0) for m in range(1, len(bucket))]
        edges.extend((graph, entry_node(bucket[m]), entry_node(bucket[lead])) for m, lead in links)
    return edges


def verify_caption_pairs(
    pairs: Sequence[tuple[Node, Node, str]], captions: dict[str, str], threshold: float
) -> list[Edge]:
    """Candidates (node, node, caption of the first) whose captions really are near-duplicates.

    ``captions`` maps the uids of the second nodes' chunk to their captions.
    """
    verified = []
    for first, second, first_caption in pairs:
        second_caption = captions.get(second[0])
        if second_caption is not None and captions_similar(
            first_caption, second_caption, threshold
        ):
            verified.append((CAPTION, first, second))
    return verified
