"""Ledger uids as 64-bit integers, so that joins and hash partitions run in numpy.

A uid is 32 hex digits (128 bits of a sha256); both halves, mixed, make a
key of 8 bytes where the string costs about 80 as a Python object. Two
distinct uids share a key with a probability of n^2 / 2^65 over n rows: about
3e-6 over ten million, 3e-2 over a billion; what shares a key is then counted
as one row in a comparison.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEX_DIGITS = 32
_NIBBLES = np.full(256, 255, dtype=np.uint8)
for _value, _digit in enumerate(b"0123456789abcdef"):
    _NIBBLES[_digit] = _value
for _value, _digit in enumerate(b"ABCDEF", start=10):
    _NIBBLES[_digit] = _value


class UidError(ValueError):
    """A uid that is not hex: the ledger was not written by paircurate."""


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the input moves every bit of the output."""
    with np.errstate(over="ignore"):
        z = values ^ (values >> np.uint64(30))
        z = z * np.uint64(0xBF58476D1CE4E5B9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uid_keys(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 64-bit key of each uid: both halves of its 32 hex digits, mixed (0 where null).

    Every digit counts, so ids that share a prefix (or are small numbers
    written as hex) still get keys spread over the whole range.
    """
    if pa.types.is_null(column.type) or len(column) == 0:
        return np.zeros(len(column), dtype=np.uint64)
    text = pc.utf8_lpad(pc.fill_null(column, ""), HEX_DIGITS, "0")
    text = pc.utf8_slice_codeunits(text, 0, HEX_DIGITS)
    raw = np.asarray(text.to_numpy(zero_copy_only=False), dtype=f"S{HEX_DIGITS}")
    digits = _NIBBLES[raw.view(np.uint8).reshape(len(raw), HEX_DIGITS)]
    if (digits == 255).any():
        raise UidError("a uid is not a hex string; is this a paircurate ledger?")
    halves = []
    for half in (digits[:, :16], digits[:, 16:]):
        value = np.zeros(len(raw), dtype=np.uint64)
        for place in range(16):
            value = (value << np.uint64(4)) | half[:, place].astype(np.uint64)
        halves.append(value)
    keys = _mix(_mix(halves[0]) ^ halves[1])
    keys[np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return keys


def partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
    """The hash partition of each key, for passes that hold one partition at a time."""
    return (keys % np.uint64(max(1, partitions))).astype(np.int64)
