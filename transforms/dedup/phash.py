"""Perceptual hashing (64-bit pHash) and near-duplicate candidate search.

The hash is the one the ``imagehash`` package computes with ``imagehash.phash``
(hash_size=8, highfreq_factor=4):

1. convert to grayscale with ``Image.convert("L")`` (alpha is ignored, not
   composited; palette and CMYK images go through Pillow's own conversion);
2. resize to 32x32 with ``Image.Resampling.LANCZOS``, ignoring aspect ratio;
3. take the unnormalised 2-D DCT-II (``scipy.fftpack.dct`` along both axes;
   here one product with a precomputed 32x32 cosine matrix on each side);
4. keep the top-left 8x8 low-frequency block, DC coefficient included;
5. a bit is 1 where a coefficient is strictly greater than the median of those
   64 values (``numpy.median``: the mean of the 32nd and 33rd values).

Bit order: the 8x8 block is read row-major (row = vertical frequency), and the
coefficient at row-major position ``i`` is bit ``63 - i`` of the integer, so the
first coefficient is the most significant bit. This is the order of imagehash's
hex string: ``phash(image) == int(str(imagehash.phash(image)), 16)``.

EXIF orientation is the caller's job: a rotated copy of an image has an
unrelated hash, so apply ``PIL.ImageOps.exif_transpose`` before hashing when the
decoded pixels have not been transposed yet.

A flat (single-colour) image has AC coefficients that are zero up to rounding,
so its bits are decided by floating-point noise; such images are better caught
by a separate "blank image" filter than by their hashes.

Near-duplicate search (``near_duplicate_pairs``) buckets hashes by bands of bits
rather than comparing all pairs. With ``k = max_distance``, the 64 bits are cut
into ``k + 1`` disjoint bands; two hashes that differ in at most ``k`` bits
differ in at most ``k`` bands, so they agree exactly on at least one: every pair
within the threshold shares a bucket (exact recall), and each candidate is then
checked with its true Hamming distance. Cost: for ``n`` roughly uniform hashes
the expected number of candidate pairs is about ``n**2 / 2 * (k + 1) * 2**-(64 /
(k + 1))``; at ``k = 6`` (bands of 9-10 bits) that is about n**2 / 200, so the
search belongs inside groups of up to a few hundred thousand hashes, not across
a whole billion-row corpus at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
from PIL import Image

from paircurate.transforms.dedup.bits import equal_runs, popcount

HASH_BITS = 64
HASH_SIZE = 8  # side of the low-frequency block kept: 8x8 = 64 bits
IMAGE_SIZE = 32  # side of the grayscale image the DCT is taken of
RESAMPLE = Image.Resampling.LANCZOS

# Why --phash-max-distance (DedupConfig.phash_max_distance) defaults to 6.
#
# Distances between these hashes are always even: the median split sets exactly
# 32 bits. Measured (tests/transforms/dedup/test_phash.py; SyntheticWeb(2000, seed=3)):
#
# - JPEG re-encoded at another quality, or resized to 80-95 %: 0-2 bits, always;
# - cropped: 1 % per side 0-6, 2 % 0-8, 3 % 4-14 on drawn images; on the
#   synthetic web (1-5 % per side) 22 of 39 crops within 6, the rest 8-16 and one
#   at 24. pHash is not crop-invariant and larger crops need another signal;
# - exact byte duplicates: 0;
# - unrelated drawn (textured) images: mean ~32, 1st percentile > 12, none <= 6;
# - unrelated synthetic-web scenes (mostly flat backgrounds with a few shapes):
#   80 of 593,505 clean pairs (1.3e-4) within 6; 156 within 8, 306 within 10.
#
# 6 keeps every re-encode and resize with room to spare and the false-pair rate
# near 1e-4 even on these low-texture scenes; raising it to 10 would recover most
# crops (35 of 39) at about 4x the false pairs and many more band candidates.


def _dct_matrix(size: int) -> np.ndarray:
    """Unnormalised DCT-II matrix: ``(C @ x)[k] = sum_n x[n] cos(pi k (2n + 1) / 2N)``.

    scipy.fftpack's type-II DCT is twice this; a uniform scale changes no bit.
    """
    k = np.arange(size, dtype=np.float64)[:, None]
    n = np.arange(size, dtype=np.float64)[None, :]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * size))


# Only the first HASH_SIZE frequencies are kept, so only those rows are needed.
_DCT_ROWS = _dct_matrix(IMAGE_SIZE)[:HASH_SIZE]
_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(HASH_BITS - 1, -1, -1, dtype=np.uint64))


def _grayscale_pixels(image: Image.Image, reducing_gap: float | None) -> np.ndarray:
    grey = image.convert("L")
    small = grey.resize((IMAGE_SIZE, IMAGE_SIZE), RESAMPLE, reducing_gap=reducing_gap)
    return np.asarray(small, dtype=np.float64)


def _hashes_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """(n, 32, 32) grayscale arrays -> (n,) uint64 hashes."""
    low = _DCT_ROWS @ pixels @ _DCT_ROWS.T  # (n, 8, 8): the low-frequency block only
    flat = low.reshape(len(pixels), HASH_BITS)
    # numpy.median's own value (the mean of the two middle ones), from one partial
    # sort: numpy.median's argument checks cost more than the hash's matrix products.
    middle = HASH_BITS // 2
    ordered = np.partition(flat, (middle - 1, middle), axis=1)
    median = (ordered[:, middle - 1 : middle] + ordered[:, middle : middle + 1]) / 2
    bits = flat > median
    return (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


def phash(image: Image.Image, reducing_gap: float | None = None) -> int:
    """The 64-bit perceptual hash of an image, as an unsigned int (see module docstring).

    ``reducing_gap`` is Pillow's: the grey image is first box-reduced by a whole
    factor to no less than that many times 32 x 32, and LANCZOS goes from there.
    None (imagehash's hash) runs LANCZOS over every pixel.
    """
    return int(_hashes_from_pixels(_grayscale_pixels(image, reducing_gap)[None])[0])


def phash_hex(value: int) -> str:
    """A hash as the 16 hex digits the ledger stores (text, so every tool reads it alike)."""
    return f"{value:016x}"


def band_bounds(max_distance: int) -> list[tuple[int, int]]:
    """(first bit, width) of the ``max_distance + 1`` bands, widths differing by at most 1."""
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must be in 0..{HASH_BITS - 1}, got {max_distance}")
    n_bands = max_distance + 1
    edges = [band * HASH_BITS // n_bands for band in range(n_bands + 1)]
    return [(start, stop - start) for start, stop in zip(edges[:-1], edges[1:], strict=True)]


def bit_bands(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """(n, max_distance + 1) uint64 array: column b holds the bits of band b, shifted down.

    Two hashes within ``max_distance`` of each other have an equal value in at
    least one column (pigeonhole), so bucketing on (column, value) finds them all.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    columns = []
    for start, width in band_bounds(max_distance):
        mask = np.uint64((1 << width) - 1)
        columns.append((hashes >> np.uint64(start)) & mask)
    return np.stack(columns, axis=1) if len(hashes) else np.zeros((0, len(columns)), np.uint64)


def _bucket_pairs(keys: np.ndarray) -> Iterable[np.ndarray]:
    """For one band column: (m, 2) arrays of index pairs (i < j) sharing a key, one per bucket."""
    order = np.argsort(keys, kind="stable")
    for start, stop in equal_runs(keys[order]):
        members = np.sort(order[start:stop])
        first, second = np.triu_indices(len(members), k=1)
        yield np.stack([members[first], members[second]], axis=1)


# Up to this many hashes, every pair is compared at once: a caption cluster's handful of
# images costs three array operations instead of a bucketing pass per band.
ALL_PAIRS_UP_TO = 64


@functools.lru_cache(maxsize=ALL_PAIRS_UP_TO + 1)
def _all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j), i < j, of n items, in sorted order (read-only: cached for each n)."""
    first, second = np.triu_indices(n, k=1)
    first.flags.writeable = second.flags.writeable = False
    return first, second


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
    """Sorted (i, j), i < j, of every pair of hashes within ``max_distance`` bits.

    Candidates come from band buckets (see ``bit_bands``) and are verified one
    bucket at a time, so memory is bounded by the largest bucket, not by n**2;
    a few hashes are compared all against all.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    if len(hashes) <= ALL_PAIRS_UP_TO:
        first, second = _all_pairs(len(hashes))
        close = popcount(hashes[first] ^ hashes[second]) <= max_distance
        return list(zip(first[close].tolist(), second[close].tolist(), strict=True))
    keys = bit_bands(hashes, max_distance)
    found: list[np.ndarray] = []
    for band in range(keys.shape[1]):
        for pairs in _bucket_pairs(keys[:, band]):
            distances = popcount(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]])
            found.append(pairs[distances <= max_distance])
    if not found:
        return []
    verified = np.unique(np.concatenate(found), axis=0)  # rows sorted lexicographically
    return [(int(i), int(j)) for i, j in verified]
