"""Mergeable aggregates of the ledger, filled batch by batch so memory does not grow with it.

The ledger is read file by file with ``ParquetFile.iter_batches``: memory is
bounded by one batch (and one row group), whatever the number of rows. Every
aggregate here merges batches exactly, so the numbers equal those of a direct
computation over the whole ledger and do not depend on the batch size:

- ``Counter``-like counts by key (funnel, languages);
- ``ValueCounts`` of whole-number columns (caption lengths, image sides), from
  which quantiles are exact, computed as ``numpy.quantile`` does;
- ``HistogramSum``: counts per fixed bin and series, summed over batches;
- ``Lowest``: the few rows with the smallest keys (samples), a bounded heap.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from paircurate.report.data import Histogram, Outputs, ReportInputError

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class LedgerFiles:
    """The ledger's Parquet files, read in a stable order, one batch at a time."""

    outputs: Outputs
    paths: tuple[str, ...]
    batch_rows: int = BATCH_ROWS

    def batches(self, columns: Sequence[str]) -> Iterator[tuple[int, int, pa.Table]]:
        """(file index, offset of the first row in its file, batch) with exactly ``columns``.

        A column a file lacks (an older run) comes as nulls; ``caption_chars``
        is the caption's length, computed per batch so captions are never held.
        """
        for index, path in enumerate(self.paths):
            with self.outputs.filesystem.open_input_file(path) as stream:
                parquet = pq.ParquetFile(stream)
                present = set(parquet.schema_arrow.names)
                wanted = [c for c in columns if c in present]
                if "caption_chars" in columns and "caption" in present:
                    wanted.append("caption")
                offset = 0
                if not wanted:  # nothing to read but the row count
                    rows = parquet.metadata.num_rows
                    for start in range(0, rows, self.batch_rows):
                        n = min(self.batch_rows, rows - start)
                        yield index, start, _shape(pa.table({}), columns, n)
                    continue
                for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=wanted):
                    table = pa.Table.from_batches([batch])
                    yield index, offset, _shape(table, columns, table.num_rows)
                    offset += table.num_rows


def _shape(table: pa.Table, columns: Sequence[str], n: int) -> pa.Table:
    arrays = {}
    for name in columns:
        if name == "caption_chars" and "caption" in table.column_names:
            arrays[name] = pc.utf8_length(table["caption"])
        elif name in table.column_names:
            arrays[name] = table[name]
        else:
            arrays[name] = pa.nulls(n)
    return pa.table(arrays) if arrays else pa.table({"_": pa.nulls(n)})


def ledger_files(outputs: Outputs, batch_rows: int = BATCH_ROWS) -> LedgerFiles:
    """The ledger parts that open as Parquet; raises ReportInputError when none does."""
    paths = []
    for info in outputs.listing("ledger"):
        if not info.path.endswith(".parquet"):
            continue
        try:
            with outputs.filesystem.open_input_file(info.path) as stream:
                pq.ParquetFile(stream)
        except (OSError, pa.ArrowException):
            continue  # a partial or foreign file: the report reads what it can
        paths.append(info.path)
    if not paths:
        raise ReportInputError("no ledger file can be read as Parquet: the run did not finish")
    return LedgerFiles(outputs, tuple(paths), batch_rows)


# -- counts ---------------------------------------------------------------------------------


def group_counts(table: pa.Table, keys: Sequence[str]) -> Iterator[tuple[tuple, int]]:
    """(key values, rows) of one batch, grouped by ``keys`` (nulls are a group)."""
    if table.num_rows == 0:
        return
    counted = table.select(list(keys)).append_column("_n", pa.nulls(table.num_rows, pa.int8()))
    grouped = counted.group_by(list(keys)).aggregate([("_n", "count", pc.CountOptions("all"))])
    columns = [grouped[key].to_pylist() for key in keys]
    yield from zip(zip(*columns, strict=True), grouped["_n_count"].to_pylist(), strict=True)


def add_counts(counts: dict, table: pa.Table, keys: Sequence[str]) -> None:
    for key, n in group_counts(table, keys):
        counts[key] = counts.get(key, 0) + n


@dataclass
class ValueCounts:
    """How often each finite value occurs: exact quantiles in memory bounded by distinct values.

    Meant for whole numbers (caption lengths, image sides) and ratios of them,
    whose distinct values do not grow with the number of rows.
    """

    counts: dict[float, int] = field(default_factory=dict)

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if values.size:
            unique, counts = np.unique(values, return_counts=True)
            for value, n in zip(unique.tolist(), counts.tolist(), strict=True):
                self.counts[value] = self.counts.get(value, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        values = np.array(sorted(self.counts), dtype=np.float64)
        return values, np.array([self.counts[v] for v in values.tolist()], dtype=np.int64)

    def quantile(self, q: float) -> float | None:
        values, counts = self.sorted()
        return quantile_of_counts(values, counts, q)

    def max(self) -> float | None:
        return max(self.counts) if self.counts else None


def quantile_of_counts(values: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """``numpy.quantile(data, q)`` (linear method) of data given as sorted values and counts.

    The same float operations as numpy's, so the result is equal to the bit.
    """
    n = int(counts.sum())
    if n == 0:
        return None
    quantile = np.float64(q)
    virtual = (n - 1) * quantile
    if virtual >= n - 1:
        below = above = n - 1
        gamma = virtual - (-1)
    elif virtual < 0:
        below = above = 0
        gamma = virtual
    else:
        below = int(math.floor(virtual))
        above = below + 1
        gamma = virtual - np.float64(below)
    cumulative = np.cumsum(counts)
    a, b = values[np.searchsorted(cumulative, [below, above], side="right")]
    difference = b - a
    if gamma >= 0.5:
        return float(b - difference * (1 - gamma))
    return float(a + difference * gamma)


# -- labels -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """A string column of one batch as integer codes and the names they stand for."""

    codes: np.ndarray
    names: list[str]

    def equal(self, name: str) -> np.ndarray:
        found = [code for code, value in enumerate(self.names) if value == name]
        return np.isin(self.codes, found)

    def renamed(self, rename) -> Labels:
        return Labels(self.codes, [rename(name) for name in self.names])

    def __getitem__(self, mask: np.ndarray) -> Labels:
        return Labels(self.codes[mask], self.names)


def encode(column: pa.ChunkedArray | pa.Array, missing: str) -> Labels:
    """Labels of a string column, nulls as ``missing``, through Arrow's dictionary encoding."""
    if pa.types.is_null(column.type):
        return Labels(np.zeros(len(column), dtype=np.int32), [missing])
    encoded = pc.dictionary_encode(pc.fill_null(column, missing))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks else pa.array([], pa.string())
        if not pa.types.is_dictionary(encoded.type):
            return Labels(np.zeros(0, dtype=np.int32), [])
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return Labels(codes, [str(name) for name in encoded.dictionary.to_pylist()])


# -- histograms -----------------------------------------------------------------------------


class HistogramSum:
    """``data.Histogram`` over fixed edges, summed over batches.

    Values above the last edge are counted in the last bin and in ``clipped``,
    as ``data.histogram`` does; a series with no value is left out.
    """

    def __init__(self, low: float, high: float, bins: int, order: Sequence[str]):
        if high <= low:
            high = low + 1.0
        self.low, self.high = low, high
        self.edges = np.linspace(low, high, bins + 1)
        self.counts = {str(name): np.zeros(bins, dtype=np.int64) for name in order}
        self.seen = dict.fromkeys(self.counts, 0)
        self.clipped = 0

    def add(self, values: np.ndarray, groups: Labels) -> None:
        finite = np.isfinite(values)
        values, codes = values[finite], groups.codes[finite]
        self.clipped += int((values > self.high).sum())
        clamped = np.clip(values, self.low, self.high)
        for code, name in enumerate(groups.names):
            if name not in self.counts:
                continue
            chosen = clamped[codes == code]
            if chosen.size:
                self.counts[name] += np.histogram(chosen, bins=self.edges)[0]
                self.seen[name] += chosen.size

    def result(self) -> Histogram | None:
        series = {name: counts for name, counts in self.counts.items() if self.seen[name]}
        return Histogram(self.edges, series, self.clipped) if series else None


# -- samples --------------------------------------------------------------------------------


def row_priority(file_index: int, offsets: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number per ledger row (splitmix64 of its place): the sample order."""
    with np.errstate(over="ignore"):
        x = (np.uint64(file_index) << np.uint64(40)) + offsets.astype(np.uint64)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class Lowest:
    """The ``count`` items with the smallest keys seen so far (ties: the first seen)."""

    def __init__(self, count: int):
        self.count = count
        self.heap: list[tuple[Any, int, Any]] = []  # (negated key, -arrival, item): a max-heap
        self.arrivals = 0

    def offer(self, keys: Sequence[Any], items: Sequence[Any]) -> None:
        for key, item in zip(keys, items, strict=True):
            self.arrivals += 1
            entry = (_Reversed(key), -self.arrivals, item)
            if len(self.heap) < self.count:
                heapq.heappush(self.heap, entry)
            elif entry[:2] > self.heap[0][:2]:
                heapq.heapreplace(self.heap, entry)

    def offer_batch(
        self, mask: np.ndarray, keys: tuple[np.ndarray, ...], file_index: int, places: np.ndarray
    ) -> None:
        """Offer the rows of a batch where ``mask`` holds, keyed by the tuple of ``keys``.

        Ties go to the earlier row. Only the batch's own ``count`` best rows reach Python.
        """
        chosen = np.flatnonzero(mask)
        if chosen.size == 0:
            return
        order = np.lexsort(tuple(key[chosen] for key in reversed(keys)))[: self.count]
        rows = chosen[order]
        key_rows = zip(*(key[rows].tolist() for key in keys), strict=True)
        self.offer(list(key_rows), [(file_index, place) for place in places[rows].tolist()])

    def items(self) -> list[Any]:
        """Smallest key first."""
        return [item for _, _, item in sorted(self.heap, reverse=True)]


class _Reversed:
    __slots__ = ("key",)

    def __init__(self, key: Any):
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.key == self.key

    def __gt__(self, other: _Reversed) -> bool:
        return self.key < other.key
