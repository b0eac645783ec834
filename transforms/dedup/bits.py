"""What the dedup modules share about 64-bit hashes and sorted keys.

The mixing constants, the Hamming distance and the runs of equal keys each
had copies in the MinHash, pHash and bucketing modules; they live here once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MASK64 = (1 << 64) - 1
# 2**64 / golden ratio, odd: the multiplier of FNV-style hashing and splitmix64's step.
GOLDEN64 = 0x9E3779B97F4A7C15

_BYTE_POPCOUNT = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.uint8)


def hamming(first: int, second: int) -> int:
    """Number of differing bits between two 64-bit hashes, signed or unsigned."""
    return ((int(first) ^ int(second)) & MASK64).bit_count()


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64, as uint8 (np.bitwise_count on numpy >= 2, else a byte table)."""
    values = np.asarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.uint8, copy=False)
    as_bytes = values.reshape(-1).view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1, dtype=np.uint8).reshape(values.shape)


def equal_runs(keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) of each run of two or more equal values in sorted ``keys``.

    Most keys are unique; skipping them in numpy keeps the Python loop to the
    runs that hold work.
    """
    if len(keys) == 0:
        return
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    stops = np.r_[starts[1:], len(keys)]
    shared = stops - starts > 1
    yield from zip(starts[shared].tolist(), stops[shared].tolist(), strict=True)
