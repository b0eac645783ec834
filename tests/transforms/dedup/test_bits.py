from __future__ import annotations

import numpy as np

from paircurate.transforms.dedup.bits import equal_runs, hamming, popcount


def test_equal_runs_are_the_shared_values_only() -> None:
    keys = np.array([1, 2, 2, 3, 5, 5, 5, 9], dtype=np.uint64)
    assert list(equal_runs(keys)) == [(1, 3), (4, 7)]
    assert list(equal_runs(np.zeros(0, np.uint64))) == []
    assert list(equal_runs(np.array([4, 4]))) == [(0, 2)]


def test_hamming_of_signed_and_unsigned_forms_agree() -> None:
    unsigned = (1 << 64) - 1  # all ones
    signed = unsigned - (1 << 64)  # -1, as Beam's coders carry it
    assert hamming(unsigned, 0) == hamming(signed, 0) == 64
    assert hamming(signed, 1 << 63) == 63
    assert hamming(0b1011, 0b0001) == 2


def test_popcount_counts_every_bit_of_uint64() -> None:
    values = np.array([0, 1, (1 << 64) - 1, 0xF0F0], dtype=np.uint64)
    assert popcount(values).tolist() == [0, 1, 64, 8]
