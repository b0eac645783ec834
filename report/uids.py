"""Ledger uids as 64-bit integers, so that joins and hash partitions run in numpy.

A uid is 32 hex digits (128 bits of a sha256); its first 16 digits, read as
an unsigned integer, make a key of 8 bytes where the string costs about 80 as
a Python object. Two distinct uids share a key with a probability of n^2 / 2^65
over n rows: about 3e-6 over ten million, 3e-2 over a billion; what shares a
key is then counted as one row in a comparison.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEX_DIGITS = 16
_NIBBLES = np.full(256, 255, dtype=np.uint8)
for _value, _digit in enumerate(b"0123456789abcdef"):
    _NIBBLES[_digit] = _value
for _value, _digit in enumerate(b"ABCDEF", start=10):
    _NIBBLES[_digit] = _value


class UidError(ValueError):
    """A uid that is not hex: the ledger was not written by paircurate."""


def uid_keys(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 64-bit key of each uid (0 where the value is null)."""
    if pa.types.is_null(column.type) or len(column) == 0:
        return np.zeros(len(column), dtype=np.uint64)
    head = pc.utf8_slice_codeunits(pc.fill_null(column, "0" * HEX_DIGITS), 0, HEX_DIGITS)
    text = np.asarray(head.to_numpy(zero_copy_only=False), dtype=f"S{HEX_DIGITS}")
    digits = _NIBBLES[text.view(np.uint8).reshape(len(text), HEX_DIGITS)]
    if (digits == 255).any():
        raise UidError("a uid is not a hex string; is this a paircurate ledger?")
    keys = np.zeros(len(text), dtype=np.uint64)
    for place in range(HEX_DIGITS):
        keys = (keys << np.uint64(4)) | digits[:, place].astype(np.uint64)
    return keys


def partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
    """The hash partition of each key, for passes that hold one partition at a time."""
    return (keys % np.uint64(max(1, partitions))).astype(np.int64)
