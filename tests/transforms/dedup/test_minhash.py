from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.minhash import (
    MinHasher,
    band_keys,
    candidate_pairs,
    estimated_jaccard,
    fold,
    jaccard,
    lsh_collision_probability,
    shingle_hash,
    shingles,
)

# The job's default banding (--minhash-bands, --minhash-rows).
BANDS, ROWS = DedupConfig().minhash_bands, DedupConfig().minhash_rows

CAPTIONS = [
    "author : a life in photography -- in pictures",
    "an angler fishes river on a snowy day .",
    "photograph of the sign being repaired by brave person",
    "Modern 3 bed apartment with sea view - Stock Photo",
    "Modern 4 bed apartment with sea view - Stock Photo",
    "person walks the red carpet at the premiere of the film",
    "a young girl plays with her dog in the park",
    "vector illustration of a cartoon cat holding a sign",
    "aerial view of the city at night",
    "the bride and groom cut their wedding cake",
    "Close-up of fresh strawberries on a wooden table!!!",
    "sunset over the ocean, with palm trees in the foreground",
    "football player celebrates scoring his side's second goal",
    "christmas tree decorated with lights & ornaments",
    "map showing the location of the town",
    "a woman's hand holding a cup of coffee #morningvibes",
    "portrait of a smiling businessman in a suit",
    "old rusty truck abandoned in a field",
    "Café au lait — Paris, 1920s",
    "ЗИМНИЙ ПЕЙЗАЖ с рекой",
    "東京タワーの夜景",
    "emoji party 🎉🎉 with friends 😀",
    "100% cotton t-shirt, size XL",
    "$19.99 only!!! limited offer",
    "the first day of spring",
    "a living room with a fireplace and a large window",
    "students study in the library",
    "actor attends the annual awards ceremony",
    "a plate of pasta with tomato sauce and basil",
    "white clouds in blue sky",
]
EDGE_CAPTIONS = ["", "   ", "!!!", "a", "ab!", "Cat", "dogs", "hello", "ÉÉÉÉ", "☃", "x y z"]
SETTINGS = [(128, 1), (64, 0), (16, 42), (200, 2024), (1, 7)]
SCHEMES = ["affine32", "affine64", "legacy"]


def random_captions(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz      0123456789.,!?-'\"éüßøДЖя中文日本😀☃\t\n"
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(count)
    ]


def datasketch_values(
    caption: str, num_perm: int, seed: int, scheme: str, batch: bool = True
) -> np.ndarray:
    minhash = MinHash(num_perm, seed=seed, hashfunc=shingle_hash, scheme=scheme)
    if batch:
        minhash.update_batch(shingles(caption))
    else:
        for shingle in shingles(caption):
            minhash.update(shingle)
    return minhash.hashvalues


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("num_perm", "seed"), SETTINGS)
def test_signatures_match_datasketch_update_batch(num_perm: int, seed: int, scheme: str) -> None:
    captions = CAPTIONS + EDGE_CAPTIONS + random_captions(40, seed)
    signatures = MinHasher(num_perm, seed, scheme).signatures(captions)
    assert signatures.shape == (len(captions), num_perm)
    for caption, signature in zip(captions, signatures, strict=True):
        expected = datasketch_values(caption, num_perm, seed, scheme)
        assert signature.dtype == expected.dtype
        np.testing.assert_array_equal(signature, expected, err_msg=repr(caption))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signatures_match_datasketch_update_one_by_one(scheme: str) -> None:
    captions = CAPTIONS[:8] + EDGE_CAPTIONS
    signatures = MinHasher(32, 3, scheme).signatures(captions)
    for caption, signature in zip(captions, signatures, strict=True):
        np.testing.assert_array_equal(
            signature, datasketch_values(caption, 32, 3, scheme, batch=False)
        )


def test_signatures_do_not_depend_on_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    captions = random_captions(300, 5) + ["long caption " * 400]
    whole = MinHasher().signatures(captions)
    monkeypatch.setattr("paircurate.transforms.dedup.minhash._CHUNK_SHINGLES", 37)
    np.testing.assert_array_equal(MinHasher().signatures(captions), whole)
    np.testing.assert_array_equal(MinHasher().signatures(captions[::-1]), whole[::-1])


def test_permutations_match_datasketch() -> None:
    for scheme in SCHEMES:
        a, b = MinHasher(50, 9, scheme).permutations
        expected_a, expected_b = MinHash(50, seed=9, scheme=scheme).permutations
        np.testing.assert_array_equal(a, expected_a)
        np.testing.assert_array_equal(b, expected_b)


def test_empty_caption_signature_is_all_max_values() -> None:
    for scheme, value in [("affine32", 2**32 - 1), ("affine64", 2**64 - 1), ("legacy", 2**32 - 1)]:
        signatures = MinHasher(16, 1, scheme).signatures(["", " .!? ", "a"])
        assert signatures[0].tolist() == [value] * 16
        assert signatures[1].tolist() == [value] * 16
        assert signatures[2].tolist() != [value] * 16
        assert MinHash(16, seed=1, scheme=scheme).is_empty()
    assert MinHasher().signatures([]).shape == (0, 128)


def test_lean_minhash_round_trip() -> None:
    hasher = MinHasher(128, 1)
    signatures = hasher.signatures(CAPTIONS)
    for i, j in [(3, 4), (0, 1), (10, 10), (18, 19)]:
        ours = LeanMinHash(seed=1, hashvalues=signatures[i], scheme="affine32")
        other = LeanMinHash(seed=1, hashvalues=signatures[j], scheme="affine32")
        first = MinHash(128, seed=1, hashfunc=shingle_hash)
        first.update_batch(shingles(CAPTIONS[i]))
        second = MinHash(128, seed=1, hashfunc=shingle_hash)
        second.update_batch(shingles(CAPTIONS[j]))
        assert ours == LeanMinHash(first)
        assert ours.jaccard(other) == first.jaccard(second)
        assert ours.jaccard(other) == estimated_jaccard(signatures[i], signatures[j])
        buffer = bytearray(ours.bytesize())
        ours.serialize(buffer)
        restored = LeanMinHash.deserialize(buffer)
        np.testing.assert_array_equal(restored.hashvalues, signatures[i])


def test_fold_rules() -> None:
    assert fold("  Hello,   WORLD!! ") == "hello world"
    assert fold("café—au–lait «bio»") == "café au lait bio"
    assert fold("price: $5 + 3€") == "price 5 3"
    assert fold("tab\tand\nnewline") == "tab and newline"
    assert fold("...") == ""


def test_shingles_case_and_punctuation_fold_digits_kept() -> None:
    assert shingles("Hello World") == shingles("hello, world!!!") == shingles("HELLO -- WORLD")
    assert shingles("3 bed flat") != shingles("4 bed flat")
    assert shingles("hello world") == [
        b"hello",
        b"ello ",
        b"llo w",
        b"lo wo",
        b"o wor",
        b" worl",
        b"world",
    ]


def test_short_and_empty_captions() -> None:
    assert shingles("Cat!") == [b"cat"]
    assert shingles("a") == [b"a"]
    assert shingles("hello") == [b"hello"]
    assert shingles("") == []
    assert shingles(" !? ") == []


def test_shingles_are_deduplicated_utf8() -> None:
    assert shingles("aaaaaaaa") == [b"aaaaa"]
    assert shingles("ÉCOLE") == ["école".encode()]
    assert shingles("日本の夜景です") == [
        s.encode() for s in ("日本の夜景", "本の夜景で", "の夜景です")
    ]


def test_shingle_hash_is_32_bit_and_deterministic() -> None:
    values = [shingle_hash(s) for c in CAPTIONS for s in shingles(c)]
    assert all(0 <= value < 2**32 for value in values)
    assert shingle_hash(b"hello") == shingle_hash(b"hello") != shingle_hash(b"hellp")
    assert len(set(values)) == len({s for c in CAPTIONS for s in shingles(c)})


def test_band_keys_equal_for_equal_signatures_and_differ_otherwise() -> None:
    signatures = MinHasher().signatures(
        CAPTIONS + ["Modern 3 bed apartment, with sea view — stock photo"]
    )
    keys = band_keys(signatures, BANDS, ROWS)
    assert keys.shape == (len(CAPTIONS) + 1, 16) and keys.dtype == np.uint64
    np.testing.assert_array_equal(keys[3], keys[-1])
    distinct = band_keys(MinHasher().signatures(random_captions(200, 1)), BANDS, ROWS)
    assert len(np.unique(distinct)) > 0.99 * distinct.size
    changed = signatures[0].copy()
    changed[0] += 1
    pair = band_keys(np.stack([signatures[0], changed]), BANDS, ROWS)
    assert (pair[0] == pair[1]).tolist() == [False] + [True] * 15


def test_band_keys_rejects_too_many_rows() -> None:
    with pytest.raises(ValueError, match="bands x rows"):
        band_keys(np.zeros((2, 64), np.uint32), bands=16, rows=8)


def test_candidate_pairs_finds_near_duplicates() -> None:
    signatures = MinHasher().signatures(CAPTIONS)
    pairs = candidate_pairs(band_keys(signatures, BANDS, ROWS)).tolist()
    assert [3, 4] in pairs
    assert all(i < j for i, j in pairs)
    assert len(pairs) < 5


def test_lsh_s_curve() -> None:
    # The default banding clears 95 % at the default threshold; 16 x 8 does not.
    assert lsh_collision_probability(0.8, BANDS, ROWS) >= 0.95
    assert lsh_collision_probability(0.5, BANDS, ROWS) < 0.15
    assert lsh_collision_probability(0.8, 16, 8) == pytest.approx(0.947, abs=1e-3)
    assert lsh_collision_probability(0.802, 16, 8) >= 0.95
    assert lsh_collision_probability(0.9, 16, 8) > 0.998
    assert lsh_collision_probability(0.5, 16, 8) < 0.07


def test_jaccard() -> None:
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert jaccard(set(), set()) == 1.0
    assert jaccard({1}, set()) == 0.0


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="scheme must be one of"):
        MinHasher(scheme="affine16")
    with pytest.raises(ValueError, match="num_perm"):
        MinHasher(num_perm=0)
    with pytest.raises(ValueError, match="seed"):
        MinHasher(seed=-1)
