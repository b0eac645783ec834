"""Exact order statistics of a float32 column streamed in batches, in fixed memory.

A float32's bits, with the sign folded, sort as the float does. A first pass
counts values by their top 16 bits (65,536 counters); the wanted rank falls in
one such bucket, and a second pass keeps only the values of that bucket, which
are then sorted. The result is the value ``numpy.sort(all)[rank]`` would give,
without ever holding the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

BUCKET_BITS = 16


def sortable_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys that order as the float32 ``values`` do (finite values only)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def buckets_of(values: np.ndarray) -> np.ndarray:
    return (sortable_keys(values) >> np.uint32(32 - BUCKET_BITS)).astype(np.int64)


class BucketCounts:
    """Values counted per bucket of their top bits: the first pass."""

    def __init__(self) -> None:
        self.counts = np.zeros(1 << BUCKET_BITS, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if values.size:
            self.counts += np.bincount(buckets_of(values), minlength=self.counts.size)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def locate(self, rank: int) -> tuple[int, int]:
        """(bucket holding the value of ``rank``, its rank within the bucket)."""
        if not 0 <= rank < self.total:
            raise ValueError(f"rank {rank} is outside the {self.total} values counted")
        cumulative = np.cumsum(self.counts)
        bucket = int(np.searchsorted(cumulative, rank, side="right"))
        before = int(cumulative[bucket - 1]) if bucket else 0
        return bucket, rank - before


def values_at_ranks(
    counts: BucketCounts, ranks: Iterable[int], batches: Iterator[np.ndarray]
) -> dict[int, float]:
    """{rank: value} of the sorted values, reading ``batches`` (the same values again) once."""
    wanted = {rank: counts.locate(rank) for rank in set(ranks)}
    buckets = np.array(sorted({bucket for bucket, _ in wanted.values()}), dtype=np.int64)
    found: dict[int, list[np.ndarray]] = {int(bucket): [] for bucket in buckets}
    for values in batches:
        values = values[np.isfinite(values)]
        if not values.size or not buckets.size:
            continue
        of = buckets_of(values)
        chosen = np.isin(of, buckets)
        for bucket in np.unique(of[chosen]).tolist():
            found[bucket].append(values[of == bucket].astype(np.float32))
    ordered = {bucket: np.sort(np.concatenate(parts)) for bucket, parts in found.items() if parts}
    return {rank: float(ordered[bucket][within]) for rank, (bucket, within) in wanted.items()}
