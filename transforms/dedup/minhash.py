"""Vectorised MinHash over caption shingles, for near-duplicate detection.

A caption is folded (lowercased; Unicode punctuation ``P*`` and symbols ``S*``
become spaces; whitespace runs collapse to one space; trimmed; digits are kept),
then cut into character 5-grams. A folded caption shorter than 5 characters is
one shingle (the whole string); an empty one has no shingles, and its signature
is all maximum values (the state of a fresh datasketch ``MinHash``).

:class:`MinHasher` computes the signatures of a whole batch at once with numpy
and is bit-identical to datasketch (2.x) ``MinHash(num_perm, seed=seed,
hashfunc=shingle_hash, scheme=scheme)`` updated with :func:`shingles`, for the
three datasketch schemes. The default scheme is datasketch 2.x's default,
``"affine32"`` (uint32 hash values); ``"legacy"`` is the pre-2.0 scheme
(``(a * h + b) % (2**61 - 1) & (2**32 - 1)`` in wrapping uint64, stored as uint64).

The shingle hash is computed on Unicode code points so that numpy can hash every
5-gram of a batch in a handful of array passes; :func:`shingle_hash` is the same
function for one shingle, to pass to datasketch.

LSH banding: with ``b`` bands of ``r`` rows, two captions whose shingle sets have
Jaccard similarity ``s`` agree on all rows of one band with probability ``s**r``,
so they share at least one band key with probability ``1 - (1 - s**r)**b``
(:func:`lsh_collision_probability`). The default 16 bands x 7 rows (112 of the
128 permutations) gives 0.977 at ``s = 0.8``, 0.99997 at ``s = 0.9`` and 0.12 at
``s = 0.5`` (candidates to verify). 16 x 8 would give only 0.947 at ``s = 0.8``,
and datasketch's optimiser choice for threshold 0.8, 9 x 13, only 0.40.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from dataclasses import dataclass

import numpy as np

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.bits import GOLDEN64, MASK64, equal_runs

SHINGLE_SIZE = 5
SCHEMES = ("affine32", "affine64", "legacy")

_MERSENNE_PRIME = (1 << 61) - 1
_MAX_HASH32 = (1 << 32) - 1
# Shingle hash: FNV-1a style over code points with an odd 64-bit multiplier,
# then the MurmurHash3 64-bit finaliser; the top 32 bits are the hash.
_HASH_OFFSET = 0xCBF29CE484222325
_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)
# Shingles per run of the permutation step: 8,192 x 128 x 4 bytes = 4 MiB (8 MiB in uint64).
_CHUNK_SHINGLES = 1 << 13


@functools.cache
def _fold_table() -> dict[int, int]:
    """Every code point of Unicode category P* or S*, mapped to a space."""
    space = ord(" ")
    return {
        code: space
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code))[0] in "PS"
    }


def fold(caption: str) -> str:
    """Lowercase, punctuation and symbols to spaces, whitespace runs to one space, trimmed."""
    return " ".join(caption.lower().translate(_fold_table()).split())


def _cut(folded: str) -> list[str]:
    if len(folded) < SHINGLE_SIZE:
        return [folded] if folded else []
    return [folded[i : i + SHINGLE_SIZE] for i in range(len(folded) - SHINGLE_SIZE + 1)]


def shingles(caption: str) -> list[bytes]:
    """The caption's distinct character 5-grams, UTF-8 encoded, in order of first occurrence."""
    return [piece.encode("utf-8") for piece in dict.fromkeys(_cut(fold(caption)))]


def _fmix64_int(h: int) -> int:
    s1, m1, s2, m2, s3 = _FMIX64
    h ^= h >> s1
    h = (h * m1) & MASK64
    h ^= h >> s2
    h = (h * m2) & MASK64
    return h ^ (h >> s3)


def _hash_text(text: str) -> int:
    h = ((_HASH_OFFSET ^ len(text)) * GOLDEN64) & MASK64
    for char in text:
        h = ((h ^ ord(char)) * GOLDEN64) & MASK64
    return _fmix64_int(h) >> 32


def shingle_hash(shingle: bytes) -> int:
    """32-bit hash of one shingle (UTF-8 bytes), the one :class:`MinHasher` uses.

    Pass it to datasketch as ``MinHash(num_perm, seed=seed, hashfunc=shingle_hash)``.
    """
    return _hash_text(shingle.decode("utf-8"))


def _fmix(values: np.ndarray, constants: tuple[int, ...]) -> np.ndarray:
    """MurmurHash3 finaliser, element-wise, wrapping in the array's unsigned dtype."""
    dtype = values.dtype.type
    s1, m1, s2, m2, s3 = (dtype(c) for c in constants)
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s3)


def _hash_windows(code_points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Hashes (uint32) of the 5-grams beginning at ``starts`` in ``code_points``."""
    multiplier = np.uint64(GOLDEN64)
    h = np.full(len(starts), ((_HASH_OFFSET ^ SHINGLE_SIZE) * GOLDEN64) & MASK64, np.uint64)
    for k in range(SHINGLE_SIZE):
        h = (h ^ code_points[starts + k]) * multiplier
    return (_fmix(h, _FMIX64) >> np.uint64(32)).astype(np.uint32)


@dataclass(frozen=True)
class BatchShingles:
    """Shingle hashes of a batch: caption ``i`` owns ``hashes[offsets[i]:offsets[i] + counts[i]]``.

    Repeated shingles of one caption are not removed: they cannot change a minimum.
    """

    hashes: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray


def batch_shingle_hashes(captions: list[str]) -> BatchShingles:
    """Hash every shingle of every caption, in one set of numpy passes."""
    folded = [fold(caption) for caption in captions]
    lengths = np.fromiter(map(len, folded), np.int64, len(folded))
    long = lengths >= SHINGLE_SIZE
    counts = np.where(long, lengths - (SHINGLE_SIZE - 1), (lengths > 0).astype(np.int64))
    offsets = np.zeros(len(folded), np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    hashes = np.empty(int(counts.sum()), np.uint32)

    text_starts = np.zeros(len(folded), np.int64)
    np.cumsum(lengths[:-1], out=text_starts[1:])
    windows = counts[long]
    # Start of every window of every long caption, in caption order.
    window_starts = np.arange(int(windows.sum()), dtype=np.int64) + np.repeat(
        text_starts[long] - (np.cumsum(windows) - windows), windows
    )
    joined = "".join(folded).encode("utf-32-le")
    code_points = np.frombuffer(joined, np.uint32).astype(np.uint64)
    long_slots = np.repeat(long, counts)
    hashes[long_slots] = _hash_windows(code_points, window_starts)
    short = np.flatnonzero(~long & (lengths > 0))
    hashes[offsets[short]] = np.fromiter(
        (_hash_text(folded[i]) for i in short), np.uint32, len(short)
    )
    return BatchShingles(hashes, offsets, counts)


@dataclass(frozen=True)
class MinHasher:
    """MinHash signatures of captions, identical to datasketch's for the same settings.

    ``scheme`` is datasketch's permutation scheme: ``"affine32"`` (its default
    since 2.0; uint32 signatures), ``"affine64"`` or ``"legacy"`` (uint64).
    """

    num_perm: int = DedupConfig.minhash_perm
    seed: int = DedupConfig.minhash_seed
    scheme: str = "affine32"

    def __post_init__(self) -> None:
        if not 1 <= self.num_perm <= 1 << 32:
            raise ValueError(f"num_perm must be between 1 and 2**32, got {self.num_perm}")
        if not 0 <= self.seed < 1 << 32:
            raise ValueError(
                f"seed must be between 0 and 2**32 - 1 (numpy RandomState), got {self.seed}"
            )
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return np.uint32 if self.scheme == "affine32" else np.uint64

    @property
    def empty_value(self) -> int:
        """The value of every slot of an empty caption's signature."""
        return (1 << 64) - 1 if self.scheme == "affine64" else _MAX_HASH32

    @functools.cached_property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), drawn exactly as datasketch's ``MinHash._init_permutations``."""
        generator = np.random.RandomState(self.seed)
        if self.scheme == "legacy":
            pairs = [
                (
                    generator.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
                    generator.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
                )
                for _ in range(self.num_perm)
            ]
            a, b = np.array(pairs, dtype=np.uint64).T
            return np.ascontiguousarray(a), np.ascontiguousarray(b)
        width = 32 if self.scheme == "affine32" else 64
        dtype = self.dtype
        a = generator.randint(0, 1 << (width - 1), self.num_perm, dtype=dtype) * dtype(2) + dtype(1)
        b = generator.randint(0, 1 << width, self.num_perm, dtype=dtype)
        return a, b

    def signatures(self, captions: list[str]) -> np.ndarray:
        """(len(captions), num_perm) signatures, the values of datasketch's ``hashvalues``."""
        return self.signatures_of(batch_shingle_hashes(captions))

    def signatures_of(self, batch: BatchShingles) -> np.ndarray:
        """Signatures from precomputed shingle hashes, a run of whole captions at a time.

        The permuted values lie permutation-major (``num_perm`` rows, one column
        per shingle), so that each caption's minimum is a reduction over
        contiguous memory, in a buffer of about ``_CHUNK_SHINGLES`` columns
        reused from run to run.
        """
        hashes = self._premix(batch.hashes)
        rows = np.flatnonzero(batch.counts > 0)
        starts = batch.offsets[rows]
        ends = starts + batch.counts[rows]
        compact = np.empty((self.num_perm, len(rows)), self.dtype)
        width = max(_CHUNK_SHINGLES, int(batch.counts.max(initial=0)))
        buffer = np.empty((self.num_perm, min(width, len(hashes))), self.dtype)
        first = 0
        while first < len(rows):
            # Whole captions only, so that no caption's minimum spans two runs.
            last = max(int(np.searchsorted(ends, starts[first] + width, "right")), first + 1)
            begin, end = int(starts[first]), int(ends[last - 1])
            values = self._permute(hashes[begin:end], buffer[:, : end - begin])
            np.minimum.reduceat(
                values, starts[first:last] - begin, axis=1, out=compact[:, first:last]
            )
            first = last
        out = np.full((len(batch.counts), self.num_perm), self.empty_value, self.dtype)
        out[rows] = compact.T
        return out

    def _premix(self, hashes: np.ndarray) -> np.ndarray:
        if self.scheme == "affine32":
            return _fmix(hashes.astype(np.uint32), _FMIX32)
        if self.scheme == "affine64":
            return _fmix(hashes.astype(np.uint64), _FMIX64)
        return hashes.astype(np.uint64)

    def _permute(self, hashes: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out[k, i]``: permutation ``k`` of ``hashes[i]``, computed in place in ``out``."""
        a, b = self.permutations
        np.multiply(hashes[None, :], a[:, None], out=out)  # wraps modulo 2**32 or 2**64,
        out += b[:, None]  # as datasketch's does
        if self.scheme != "legacy":
            return out
        # out % (2**61 - 1) without division: 2**61 = 1 (mod p), and the
        # folded sum is below 2p, so one conditional subtraction finishes it.
        prime = np.uint64(_MERSENNE_PRIME)
        folded = (out & prime) + (out >> np.uint64(61))
        folded -= prime * (folded >= prime)
        np.bitwise_and(folded, np.uint64(_MAX_HASH32), out=out)
        return out


def lsh_collision_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that two sets of Jaccard ``similarity`` share a band key: 1 - (1 - s**r)**b."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: a 64-bit hash of each band's ``rows`` signature values.

    The band index is mixed in, so keys of different bands never need telling apart.
    """
    n, num_perm = signatures.shape
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(
            f"bands x rows must be between 1 and num_perm ({num_perm}), got {bands} x {rows}"
        )
    values = signatures[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    multiplier = np.uint64(GOLDEN64)
    keys = np.broadcast_to(np.arange(bands, dtype=np.uint64) + np.uint64(_HASH_OFFSET), (n, bands))
    for row in range(rows):
        keys = _fmix((keys ^ values[:, :, row]) * multiplier, _FMIX64)
    return np.ascontiguousarray(keys)


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """(m, 2) distinct index pairs ``i < j`` that share the key of at least one band.

    A bucket of k members gives k * (k - 1) / 2 pairs; keep huge buckets
    (e.g. many empty captions) out before calling this.
    """
    pairs = []
    for band in keys.T:
        order = np.argsort(band, kind="stable")
        for start, stop in equal_runs(band[order]):
            group = order[start:stop]
            first, second = np.triu_indices(len(group), 1)
            pairs.append(np.stack([group[first], group[second]], axis=1))
    if not pairs:
        return np.empty((0, 2), np.int64)
    found = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(found, axis=0).astype(np.int64)


def estimated_jaccard(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Share of equal signature slots, row by row: the MinHash estimate of Jaccard."""
    return np.mean(first == second, axis=-1)


def jaccard(first: set, second: set) -> float:
    """Exact Jaccard similarity; two empty sets count as identical (1.0), as their signatures do."""
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)
