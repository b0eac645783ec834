"""PDQ, Meta's 256-bit perceptual hash, for ``pdq`` removal lists.

Industry hash lists for child safety and terrorist content carry PDQ hashes
beside MD5 and SHA-1. Hashes come from ``pdqhash``, the Python binding of
Meta's C++ reference implementation; their hex form is the one Meta's hashers
print (bit 255 first), so entries copied from such a list match.

Pool images are hashed as they lie in a run (the raw shard's or the final
shard's re-encoded image): PDQ is made to survive re-encoding and resizing,
so no original is needed. A hash whose quality (0-100, from the hasher) is
under ``MIN_QUALITY`` comes from a nearly featureless image, whose bits say
little; Meta advises against matching such hashes, and they match nothing here.

Matching is a range search in faiss's binary index (``IndexBinaryFlat``:
exact Hamming distances, vectorised), as Meta's ThreatExchange matcher does;
the list's entries are held in one index per worker, 32 bytes each.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np
import pdqhash
from PIL import Image, UnidentifiedImageError

from paircurate.transforms.compliance.lists import Entry

BITS = 256
MIN_QUALITY = 50
PDQ_ENTRY = np.dtype(
    [("hash", "u1", (BITS // 8,)), ("distance", "<u2"), ("source", "<u2"), ("item", "<u8")]
)
"""A pdq list entry: its hash, the distance it matches within, its source and line."""


def pdq_hex(packed: np.ndarray) -> str:
    """64 hex digits of a packed 32-byte hash."""
    return bytes(np.asarray(packed, dtype=np.uint8)).hex()


def pdq_bytes(text: str) -> np.ndarray:
    """A hash's 64 hex digits as 32 packed bytes."""
    return np.frombuffer(bytes.fromhex(text), dtype=np.uint8)


@dataclass(frozen=True)
class PdqHash:
    """A packed hash (32 bytes, bit 255 first) and the hasher's quality (0-100)."""

    packed: np.ndarray
    quality: int

    @property
    def hex(self) -> str:
        return pdq_hex(self.packed)

    @property
    def usable(self) -> bool:
        return self.quality >= MIN_QUALITY


def pdq_of_image(image: Image.Image) -> PdqHash:
    """The PDQ hash of a decoded image (converted to RGB, as the hasher expects)."""
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    bits, quality = pdqhash.compute(pixels)
    return PdqHash(np.packbits(np.asarray(bits, dtype=np.uint8)), int(quality))


def pdq_of_bytes(data: bytes) -> PdqHash | None:
    """The PDQ hash of an encoded image, or None where Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return pdq_of_image(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def pdq_entries(entries: Iterable[Entry], source: int) -> np.ndarray:
    """Packed records of the pdq entries of one source."""
    batch = [entry for entry in entries if entry.kind == "pdq"]
    packed = np.zeros(len(batch), dtype=PDQ_ENTRY)
    for record, entry in zip(packed, batch, strict=True):
        record["hash"] = pdq_bytes(entry.value)
    packed["distance"] = [entry.distance for entry in batch]
    packed["source"] = source
    packed["item"] = [entry.line for entry in batch]
    return packed


@dataclass(frozen=True)
class PdqMatch:
    """Probe ``probe`` lies within ``distance`` bits of entry ``entry`` (an index into the
    matcher's entries), whose own distance admits it."""

    probe: int
    entry: int
    distance: int


class PdqMatcher:
    """All entries of the run's pdq lists in one binary index; finds every entry near a probe."""

    def __init__(self, entries: np.ndarray):
        self.entries = entries
        self.index = faiss.IndexBinaryFlat(BITS)
        if len(entries):
            self.index.add(np.ascontiguousarray(entries["hash"]))
        self.radius = int(entries["distance"].max()) + 1 if len(entries) else 0

    def match(self, probes: np.ndarray) -> list[PdqMatch]:
        """Matches of ``probes`` ((n, 32) packed hashes), in probe order, nearest first."""
        if not len(self.entries) or not len(probes):
            return []
        queries = np.ascontiguousarray(probes, dtype=np.uint8).reshape(-1, BITS // 8)
        limits, distances, found = self.index.range_search(queries, self.radius)
        matches = []
        for probe in range(len(queries)):
            span = slice(limits[probe], limits[probe + 1])
            pairs = sorted(zip(distances[span].tolist(), found[span].tolist(), strict=True))
            matches += [
                PdqMatch(probe, int(entry), int(distance))
                for distance, entry in pairs
                if distance <= self.entries["distance"][entry]
            ]
        return matches


def match_images(
    matcher: PdqMatcher, images: Iterable[tuple[str, bytes]]
) -> list[tuple[str, PdqMatch]]:
    """(uid, match) of every usable image near an entry; ``images`` are (uid, encoded bytes)."""
    uids, hashes = [], []
    for uid, data in images:
        found = pdq_of_bytes(data)
        if found is not None and found.usable:
            uids.append(uid)
            hashes.append(found.packed)
    if not hashes:
        return []
    return [(uids[m.probe], m) for m in matcher.match(np.stack(hashes))]
