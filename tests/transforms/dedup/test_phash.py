from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from paircurate.schemas.config import DedupConfig
from paircurate.synthweb import SyntheticWeb
from paircurate.transforms.dedup.bits import hamming, popcount
from paircurate.transforms.dedup.phash import (
    ALL_PAIRS_UP_TO,
    band_bounds,
    bit_bands,
    near_duplicate_pairs,
    phash,
)

# The default of --phash-max-distance, whose rationale transforms/dedup/phash.py gives.
MAX_DISTANCE = DedupConfig().phash_max_distance


def drawn_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A textured picture: a gradient, smooth noise and a few filled shapes."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * x + np.sin(angle) * y
    coarse = rng.uniform(0, 1, (6, 8, 3))
    blobs = np.asarray(
        Image.fromarray((coarse * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    )
    pixels = 0.5 * blobs + 100 * gradient[..., None] + rng.normal(0, 8, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x0), int(y0), int(x1) + 10, int(y1) + 10), fill=color)
    return image


def reencoded(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def hamming_matrix(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(len(left), len(right)) uint8 matrix of all pairwise distances: the brute-force oracle."""
    left = np.asarray(left, dtype=np.uint64)
    right = np.asarray(right, dtype=np.uint64)
    return popcount(left[:, None] ^ right[None, :])


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
    distances = hamming_matrix(hashes, hashes)
    rows, cols = np.nonzero(np.triu(distances <= max_distance, k=1))
    return sorted(zip(rows.tolist(), cols.tolist(), strict=True))


# --- the hash itself ---------------------------------------------------------


def test_matches_the_imagehash_reference_algorithm() -> None:
    fftpack = pytest.importorskip("scipy.fftpack")  # what imagehash.phash runs
    for seed in range(20):
        image = drawn_image(seed)
        small = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        dct = fftpack.dct(fftpack.dct(np.asarray(small), axis=0), axis=1)[:8, :8]
        bits = (dct > np.median(dct)).flatten()
        expected = int("".join("1" if bit else "0" for bit in bits), 2)
        assert phash(image) == expected


def test_identical_images_have_distance_zero() -> None:
    image = drawn_image(1)
    assert hamming(phash(image), phash(image.copy())) == 0
    assert hamming(phash(image), phash(image.convert("RGBA"))) == 0


def test_hash_is_an_unsigned_64_bit_int() -> None:
    value = phash(drawn_image(2))
    assert isinstance(value, int)
    assert 0 <= value < 2**64
    assert value.bit_count() == 32  # median split of 64 distinct coefficients


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda im: reencoded(im, 60), id="jpeg-q60"),
        pytest.param(lambda im: im.resize((288, 216), Image.Resampling.BILINEAR), id="resize-90"),
        pytest.param(lambda im: im.resize((256, 192), Image.Resampling.BICUBIC), id="resize-80"),
        pytest.param(lambda im: im.crop((3, 2, 317, 238)), id="crop-1pct"),
    ],
)
def test_near_duplicates_are_within_the_default_threshold(edit) -> None:
    for seed in range(10):
        original = reencoded(drawn_image(seed), 95)
        assert hamming(phash(original), phash(edit(original))) <= MAX_DISTANCE


def test_larger_crops_drift_past_the_threshold_but_stay_below_unrelated() -> None:
    # pHash is not crop-invariant: measured over 30 images, 2 % per side gives
    # 0-8 bits, 3 % gives 4-14. They stay well below unrelated images (~32).
    distances = []
    for seed in range(10):
        original = reencoded(drawn_image(seed), 95)
        distances.append(hamming(phash(original), phash(original.crop((10, 7, 310, 233)))))
    assert max(distances) <= 16
    assert max(distances) > MAX_DISTANCE


def test_rotation_is_not_undone_exif_orientation_is_the_callers_job() -> None:
    image = drawn_image(3)
    assert hamming(phash(image), phash(image.transpose(Image.Transpose.ROTATE_90))) > 10


def test_unrelated_images_are_well_above_the_threshold() -> None:
    hashes = np.array([phash(drawn_image(seed)) for seed in range(100, 300)], dtype=np.uint64)
    distances = hamming_matrix(hashes, hashes)[np.triu_indices(len(hashes), k=1)]
    # Measured: mean ~32, 1st percentile ~20, minimum ~12.
    assert np.percentile(distances, 1) > 2 * MAX_DISTANCE
    assert distances.min() > MAX_DISTANCE


# --- distances ---------------------------------------------------------------


def test_the_brute_force_oracle_agrees_with_the_scalar_distance() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**64, size=50, dtype=np.uint64)
    query = int(hashes[0])
    expected = [hamming(query, int(other)) for other in hashes]
    assert hamming_matrix(hashes, hashes)[0].tolist() == expected
    assert hamming(0, 2**64 - 1) == 64


# --- banded candidate search ---------------------------------------------------


@pytest.mark.parametrize("max_distance", [0, 1, 6, 10, 63])
def test_bands_cover_all_64_bits_once(max_distance: int) -> None:
    bounds = band_bounds(max_distance)
    assert len(bounds) == max_distance + 1
    covered = [bit for start, width in bounds for bit in range(start, start + width)]
    assert covered == list(range(64))
    assert max(w for _, w in bounds) - min(w for _, w in bounds) <= 1


def test_bit_bands_reassemble_the_hash() -> None:
    hashes = np.array([0, 2**64 - 1, 0x0123456789ABCDEF], dtype=np.uint64)
    keys = bit_bands(hashes, 6)
    rebuilt = np.zeros(3, dtype=np.uint64)
    for column, (start, _) in enumerate(band_bounds(6)):
        rebuilt |= keys[:, column] << np.uint64(start)
    assert rebuilt.tolist() == hashes.tolist()


@pytest.mark.parametrize("max_distance", [-1, 64])
def test_out_of_range_threshold_is_refused(max_distance: int) -> None:
    with pytest.raises(ValueError, match="max_distance must be in 0..63"):
        bit_bands(np.zeros(2, dtype=np.uint64), max_distance)


def planted_hashes(seed: int, n: int = 600) -> np.ndarray:
    """Random hashes, plus copies of some of them with 0-14 bits flipped."""
    rng = np.random.default_rng(seed)
    hashes = list(rng.integers(0, 2**64, size=n, dtype=np.uint64))
    for source in rng.choice(n, size=n // 3, replace=False):
        flipped = rng.choice(64, size=int(rng.integers(0, 15)), replace=False)
        mask = sum(1 << int(bit) for bit in flipped)
        hashes.append(np.uint64(int(hashes[source]) ^ mask))
    return np.array(rng.permutation(hashes), dtype=np.uint64)


@pytest.mark.parametrize("max_distance", [0, 2, 6, 10, 16])
def test_near_duplicate_pairs_equal_brute_force(max_distance: int) -> None:
    for seed in range(3):
        hashes = planted_hashes(seed)
        expected = brute_force_pairs(hashes, max_distance)
        assert len(expected) > 0
        assert near_duplicate_pairs(hashes, max_distance) == expected


@pytest.mark.parametrize("n", [2, 5, ALL_PAIRS_UP_TO, ALL_PAIRS_UP_TO + 1])
def test_a_few_hashes_compared_all_against_all_give_the_banded_answer(n: int) -> None:
    hashes = planted_hashes(n, n)
    for max_distance in (0, 6, 12):
        assert near_duplicate_pairs(hashes, max_distance) == brute_force_pairs(hashes, max_distance)


def test_near_duplicate_pairs_with_repeats_and_empty_input() -> None:
    hashes = np.array([7, 7, 7, 2**63], dtype=np.uint64)
    assert near_duplicate_pairs(hashes, 0) == [(0, 1), (0, 2), (1, 2)]
    assert near_duplicate_pairs(hashes, 3) == [(0, 1), (0, 2), (1, 2)]
    assert near_duplicate_pairs(np.zeros(0, dtype=np.uint64), 6) == []


# --- the synthetic web -----------------------------------------------------------


@pytest.fixture(scope="module")
def web_hashes() -> tuple[SyntheticWeb, dict[int, int]]:
    web = SyntheticWeb(400, seed=3)
    hashes = {}
    for entry in web:
        if entry.label in ("clean", "near_duplicate", "duplicate_bytes"):
            image = Image.open(io.BytesIO(web.image_bytes(entry.index)))
            hashes[entry.index] = phash(ImageOps.exif_transpose(image))
    return web, hashes


def edit_kind(web: SyntheticWeb, index: int) -> str:
    """ "bytes", or the near-duplicate edit ("quality", "resize", "crop") from the web's truth."""
    if web.entry(index).label == "duplicate_bytes":
        return "bytes"
    return web.edit_kind(index)


def test_synthetic_web_duplicates_are_found(web_hashes) -> None:
    web, hashes = web_hashes
    distances: dict[str, list[int]] = {"bytes": [], "quality": [], "resize": [], "crop": []}
    for index, value in hashes.items():
        entry = web.entry(index)
        if entry.label != "clean":
            kind = edit_kind(web, index)
            distances[kind].append(hamming(value, hashes[entry.duplicate_of]))
    assert distances["bytes"] and set(distances["bytes"]) == {0}
    assert distances["quality"] and max(distances["quality"]) <= MAX_DISTANCE
    assert distances["resize"] and max(distances["resize"]) <= MAX_DISTANCE
    # The web crops 0.2-1 % per side, which pHash tolerates (measured on two
    # 3000-row webs: at most 6 bits); larger crops drift past it (test above).
    crops = distances["crop"]
    assert crops and max(crops) <= MAX_DISTANCE


def test_synthetic_web_clean_images_rarely_collide(web_hashes) -> None:
    web, hashes = web_hashes
    clean = np.array(
        [value for index, value in hashes.items() if web.entry(index).label == "clean"],
        dtype=np.uint64,
    )
    pairs = near_duplicate_pairs(clean, MAX_DISTANCE)
    n_pairs = len(clean) * (len(clean) - 1) // 2
    # Measured on 2000 rows: 80 of 593,505 clean pairs (1.3e-4) within 6 bits,
    # all near-flat scenes whose bits are decided by one small shape.
    assert len(pairs) <= 5e-4 * n_pairs


def test_all_pairs_search_finds_the_web_duplicates(web_hashes) -> None:
    web, hashes = web_hashes
    indices = sorted(hashes)
    found = near_duplicate_pairs(np.array([hashes[i] for i in indices]), MAX_DISTANCE)
    found_rows = {(indices[i], indices[j]) for i, j in found}
    for index in indices:
        entry = web.entry(index)
        if entry.label == "duplicate_bytes":
            assert (min(index, entry.duplicate_of), max(index, entry.duplicate_of)) in found_rows
    assert all(a < b for a, b in itertools.islice(found_rows, 100))
