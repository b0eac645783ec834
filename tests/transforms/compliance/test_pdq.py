"""PDQ hashes from Meta's reference code, in its hex form, and matching within a distance."""

from __future__ import annotations

import io

import numpy as np
import pdqhash
from PIL import Image, ImageDraw

from paircurate.transforms.compliance.lists import KIND_RULES, Entry
from paircurate.transforms.compliance.pdq import (
    PdqMatcher,
    match_images,
    pdq_bytes,
    pdq_entries,
    pdq_hex,
    pdq_of_bytes,
    pdq_of_image,
)

DEFAULT_DISTANCE = KIND_RULES["pdq"].default_distance


def textured(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A photo-like picture: smooth colour fields, grain and a few filled ellipses."""
    rng = np.random.default_rng(seed)
    width, height = size
    coarse = rng.uniform(0, 255, (9, 12, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=float)
    pixels = base + rng.normal(0, 10, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, 2))
        draw.ellipse(
            (x0, y0, x1 + 12, y1 + 12), fill=tuple(int(c) for c in rng.integers(0, 256, 3))
        )
    return image


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def copy_of(image: Image.Image) -> bytes:
    """The image resized to two thirds and re-encoded at JPEG quality 70."""
    return jpeg(image.resize((image.width * 2 // 3, image.height * 2 // 3)), quality=70)


def test_the_hex_form_is_metas_bit_255_first():
    # Meta's Hash256::format prints its sixteen 16-bit words from w[15] down, each as 4 hex
    # digits, where bit k lives in w[k / 16] at k % 16; pdqhash returns bit 255 first.
    image = textured(1)
    bits = pdqhash.compute(np.asarray(image))[0][::-1]  # bits[k] is bit k
    words = [sum(int(bits[16 * w + b]) << b for b in range(16)) for w in range(16)]
    expected = "".join(f"{word:04x}" for word in reversed(words))
    assert pdq_of_image(image).hex == expected
    assert pdq_hex(pdq_bytes(expected)) == expected


def test_a_resized_reencoded_copy_matches_at_the_default_distance_and_others_do_not():
    originals = [textured(seed) for seed in range(12)]
    listed = [pdq_of_bytes(jpeg(image)) for image in originals[:6]]
    assert all(found.usable for found in listed)
    entries = [Entry("pdq", found.hex, line, DEFAULT_DISTANCE) for line, found in
               enumerate(listed, start=1)]  # fmt: skip
    matcher = PdqMatcher(pdq_entries(entries, source=0))
    pool = [(f"copy{i}", copy_of(image)) for i, image in enumerate(originals)]
    matches = match_images(matcher, pool)
    matched = {uid: (matcher.entries[m.entry]["item"], m.distance) for uid, m in matches}
    assert sorted(matched) == [f"copy{i}" for i in range(6)]
    assert all(line == int(uid[4:]) + 1 for uid, (line, _) in matched.items())
    assert all(distance <= DEFAULT_DISTANCE for _, distance in matched.values())


def test_each_entry_matches_within_its_own_distance():
    image = textured(3)
    original = pdq_of_bytes(jpeg(image))
    copy = pdq_of_bytes(copy_of(image))
    distance = int(np.unpackbits(original.packed ^ copy.packed).sum())
    assert 0 < distance <= DEFAULT_DISTANCE
    entries = [Entry("pdq", original.hex, 1, distance - 1), Entry("pdq", original.hex, 2, distance)]
    matcher = PdqMatcher(pdq_entries(entries, source=4))
    (match,) = matcher.match(copy.packed[None, :])
    assert (matcher.entries[match.entry]["item"], match.distance) == (2, distance)
    assert matcher.entries[match.entry]["source"] == 4


def test_featureless_and_unreadable_images_match_nothing():
    flat = Image.new("RGB", (200, 150), (90, 90, 90))
    assert not pdq_of_image(flat).usable
    entries = [Entry("pdq", pdq_of_image(flat).hex, 1, 255)]
    matcher = PdqMatcher(pdq_entries(entries, source=0))
    assert match_images(matcher, [("flat", jpeg(flat)), ("junk", b"<html>")]) == []
    assert pdq_of_bytes(b"<html>") is None


def test_no_entries_no_matches():
    matcher = PdqMatcher(pdq_entries([], source=0))
    assert matcher.match(np.zeros((3, 32), dtype=np.uint8)) == []
    assert match_images(matcher, [("a", jpeg(textured(5)))]) == []
