"""Grouping rows by a key without paying Beam's per-element cost for each row.

A row dict costs about 2 KB as Python objects, and Beam's local runner keeps
grouped values decoded until a group is read. Rows are therefore packed per key
into one buffer of compact encoded rows (``RowCodec``), in a combiner that Beam
runs in front of the shuffle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from paircurate.schemas.records import RowCodec


class PackRowsFn(beam.CombineFn):
    """Pack the rows of one key into a single buffer of encoded rows.

    Beam lifts the packing in front of the shuffle, so each worker sends one
    buffer per key instead of one element per row; ``None`` inputs only make
    sure a key exists.
    """

    def __init__(self, codec: RowCodec):
        self.codec = codec

    def create_accumulator(self) -> bytearray:
        return bytearray()

    def add_input(self, buffer: bytearray, row: dict[str, Any] | None) -> bytearray:
        return buffer if row is None else self.codec.append(buffer, row)

    def merge_accumulators(self, buffers: Iterable[bytearray]) -> bytearray:
        merged = bytearray()
        for buffer in buffers:
            merged += buffer
        return merged

    def extract_output(self, buffer: bytearray) -> bytearray:
        return buffer


def _unpack(element: tuple[Any, bytearray], codec: RowCodec) -> tuple[Any, list[dict]]:
    key, buffer = element
    return key, codec.decode_all(buffer)


def _empty_groups(_: None, keys: int) -> list[tuple[int, None]]:
    return [(key, None) for key in range(keys)]


class GroupRows(beam.PTransform):
    """Group row dicts into (key, [rows]) by ``key(row, *key_args)``, which returns (key, row).

    The key function returns the row as it should travel (with its key recorded,
    say) rather than changing the row it was given.

    Rows cross the shuffle packed per key (see PackRowsFn). ``every_key`` (a
    side input of the number of keys) gives each key in ``range(n)`` a group,
    empty or not, so that every shard index is written.
    """

    def __init__(self, codec: RowCodec, key, *key_args, every_key=None):
        super().__init__()
        self.codec, self.key, self.key_args, self.every_key = codec, key, key_args, every_key

    def expand(self, rows):
        keyed = rows | "Key" >> beam.Map(self.key, *self.key_args)
        if self.every_key is not None:
            markers = (
                rows.pipeline
                | "Once" >> beam.Create([None])
                | "EveryKey" >> beam.FlatMap(_empty_groups, self.every_key)
            )
            keyed = (keyed, markers) | "WithEveryKey" >> beam.Flatten()
        return (
            keyed
            | "Pack" >> beam.CombinePerKey(PackRowsFn(self.codec))
            | "Unpack" >> beam.Map(_unpack, self.codec)
        )
