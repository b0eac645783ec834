"""Matching rows against removal lists and evaluation sets, one key partition at a time.

Both sides become packed numpy records with a 16-byte join key:

- an exact entry (a URL, a domain, a sha256) has the key of its kind and
  normalised value, and matches a probe with the same key;
- a pHash entry with distance ``d`` gets one key per band of ``d + 1`` bands
  (``transforms.dedup.phash.bit_bands``): a pHash within ``d`` bits agrees
  with it on at least one band, so it shares a key; each candidate is then
  checked with its true Hamming distance.

Records are spread over partitions by their key, so a join needs only one
partition's entries and probes in memory at a time, whatever the lists' size:
``join_partition`` sorts a partition's entries by key and looks every probe up
with a binary search.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from paircurate.transforms.compliance.lists import KINDS as LIST_KINDS
from paircurate.transforms.compliance.lists import Entry
from paircurate.transforms.dedup.bits import GOLDEN64, popcount
from paircurate.transforms.dedup.phash import bit_bands

ENTRY = np.dtype([
    ("key", "S16"), ("hash", "<u8"), ("distance", "u1"), ("kind", "u1"), ("source", "<u2"),
    ("item", "<u8"),
])  # fmt: skip
"""A list entry or eval image: ``kind`` indexes KINDS (EVAL_KIND for an eval image),
``source`` the job's sources, ``item`` is its line or image number."""
KINDS = (*LIST_KINDS, "eval")
EVAL_KIND = KINDS.index("eval")
PROBE = np.dtype([("key", "S16"), ("hash", "<u8"), ("ref", "S16"), ("chunk", "<i4")])
"""A row looked up: ``ref`` is its uid as bytes, ``chunk`` its fetch chunk."""


def exact_key(kind: str, value: str) -> bytes:
    """The join key of an exact entry or probe: a digest of its kind and normalised value."""
    if kind == "sha256":
        return b"S" + bytes.fromhex(value)[:15]
    return hashlib.blake2b(f"{kind}\0{value}".encode("utf-8", "surrogatepass"), digest_size=16)\
        .digest()  # fmt: skip


def band_keys(hashes: np.ndarray, distance: int) -> np.ndarray:
    """(n, distance + 1) array of 16-byte keys: "P", the distance, the band, the band's bits."""
    bands = bit_bands(np.asarray(hashes, dtype=np.uint64), distance)
    n, count = bands.shape
    raw = np.zeros((n, count, 16), dtype=np.uint8)
    raw[:, :, 0] = ord("P")
    raw[:, :, 1] = distance
    raw[:, :, 2] = np.arange(count, dtype=np.uint8)
    raw[:, :, 3:11] = bands.astype("<u8")[..., None].view(np.uint8)
    raw[:, :, 11] = 1  # no trailing zero bytes: numpy's S16 would drop them
    return raw.reshape(n, count * 16).view("S16")


def partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each key, spread evenly whatever kind of key it is."""
    words = np.ascontiguousarray(keys, dtype="S16").view("<u8").reshape(-1, 2)
    mixed = (words[:, 0] ^ words[:, 1]) * np.uint64(GOLDEN64)
    return ((mixed >> np.uint64(32)) % np.uint64(max(1, partitions))).astype(np.int64)


def exact_entries(entries: Iterable[Entry], source: int) -> np.ndarray:
    """Packed records of a batch of url, domain and sha256 entries of one source."""
    batch = list(entries)
    packed = np.zeros(len(batch), dtype=ENTRY)
    packed["key"] = [exact_key(entry.kind, entry.value) for entry in batch]
    packed["kind"] = [KINDS.index(entry.kind) for entry in batch]
    packed["source"] = source
    packed["item"] = [entry.line for entry in batch]
    return packed


def phash_entries(
    hashes: np.ndarray, distances: np.ndarray, items: np.ndarray, source: int, kind: int
) -> np.ndarray:
    """Packed records of pHash entries: one per band of each entry's distance."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    distances = np.asarray(distances, dtype=np.int64)
    items = np.asarray(items, dtype=np.uint64)
    parts = []
    for distance in np.unique(distances).tolist():
        chosen = distances == distance
        keys = band_keys(hashes[chosen], distance)
        packed = np.zeros(keys.shape, dtype=ENTRY)
        packed["key"] = keys
        packed["hash"] = hashes[chosen][:, None]
        packed["distance"] = distance
        packed["kind"] = kind
        packed["source"] = source
        packed["item"] = items[chosen][:, None]
        parts.append(packed.reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=ENTRY)


def uid_bytes(uid: str) -> bytes:
    return bytes.fromhex(uid)[:16]


def exact_probes(keys: list[bytes], uid: str, chunk: int) -> np.ndarray:
    probes = np.zeros(len(keys), dtype=PROBE)
    probes["key"] = keys
    probes["ref"] = uid_bytes(uid)
    probes["chunk"] = chunk
    return probes


def phash_probes(
    hashes: np.ndarray, refs: list[bytes], chunks: np.ndarray, distances: Iterable[int]
) -> np.ndarray:
    """Probes of pHashes: for every distance some entry has, one per band."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    parts = []
    for distance in sorted(set(distances)):
        keys = band_keys(hashes, distance)
        packed = np.zeros(keys.shape, dtype=PROBE)
        packed["key"] = keys
        packed["hash"] = hashes[:, None]
        packed["ref"] = np.asarray(refs, dtype="S16")[:, None]
        packed["chunk"] = np.asarray(chunks, dtype=np.int32)[:, None]
        parts.append(packed.reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=PROBE)


def split_by_partition(records: np.ndarray, partitions: int) -> dict[int, np.ndarray]:
    """The records of each partition that has some."""
    if len(records) == 0:
        return {}
    where = partition_of(records["key"], partitions)
    order = np.argsort(where, kind="stable")
    where, records = where[order], records[order]
    starts = np.flatnonzero(np.r_[True, where[1:] != where[:-1]])
    stops = np.r_[starts[1:], len(where)]
    return {int(where[a]): records[a:b] for a, b in zip(starts, stops, strict=True)}


MATCH = np.dtype([
    ("ref", "S16"), ("chunk", "<i4"), ("source", "<u2"), ("item", "<u8"), ("distance", "u1"),
    ("kind", "u1"),
])  # fmt: skip
"""A probe that matched an entry, with the Hamming distance (0 for exact entries)."""


def join_partition(entries: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Every (probe, entry) pair with the same key within the entry's distance, as MATCH records.

    Sorting and binary search keep it to O((n + m) log n) and vectorised; only
    pairs that share a key are ever formed.
    """
    if len(entries) == 0 or len(probes) == 0:
        return np.zeros(0, dtype=MATCH)
    entries = entries[np.argsort(entries["key"], kind="stable")]
    low = np.searchsorted(entries["key"], probes["key"], side="left")
    high = np.searchsorted(entries["key"], probes["key"], side="right")
    counts = high - low
    probe_index = np.repeat(np.arange(len(probes)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    entry_index = np.repeat(low, counts) + offsets
    found_entries, found_probes = entries[entry_index], probes[probe_index]
    distance = popcount(found_entries["hash"] ^ found_probes["hash"])
    within = distance <= found_entries["distance"]
    matches = np.zeros(int(within.sum()), dtype=MATCH)
    matches["ref"] = found_probes["ref"][within]
    matches["chunk"] = found_probes["chunk"][within]
    matches["source"] = found_entries["source"][within]
    matches["item"] = found_entries["item"][within]
    matches["distance"] = distance[within]
    matches["kind"] = found_entries["kind"][within]
    return matches


def uid_of(ref: bytes) -> str:
    """A uid back from its ``ref`` bytes (numpy drops trailing zero bytes of S16 values)."""
    return ref.ljust(16, b"\0").hex()


def match_tuples(matches: np.ndarray) -> list[tuple[str, tuple[int, int, int, int, int]]]:
    """(uid, (source, item, distance, kind, chunk)) of each match; the smallest tuple wins."""
    return [
        (uid_of(m["ref"]), (int(m["source"]), int(m["item"]), int(m["distance"]),
                            int(m["kind"]), int(m["chunk"])))
        for m in matches
    ]  # fmt: skip
