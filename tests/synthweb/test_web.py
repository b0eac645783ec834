"""SyntheticWeb: determinism, label mix, duplicates and the images themselves."""

from __future__ import annotations

import io
import pickle
from collections import Counter

import pytest
from PIL import Image, ImageOps

from paircurate.synthweb import LABELS, SyntheticWeb, WebMix, label_counts
from paircurate.synthweb.web import DUPLICATE_LABELS, NO_IMAGE_LABELS

N = 400


@pytest.fixture(scope="module")
def web() -> SyntheticWeb:
    return SyntheticWeb(N, seed=7)


def _decode(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return ImageOps.exif_transpose(image)


def test_same_seed_gives_same_entries_and_bytes(web: SyntheticWeb) -> None:
    again = SyntheticWeb(N, seed=7)
    assert list(again) == list(web)
    for index in range(0, 60):
        if web.entry(index).label not in NO_IMAGE_LABELS:
            assert again.image_bytes(index) == web.image_bytes(index)


def test_other_seed_gives_another_web(web: SyntheticWeb) -> None:
    other = SyntheticWeb(N, seed=8)
    same_caption = sum(a.caption == b.caption for a, b in zip(web, other, strict=True))
    same_label = sum(a.label == b.label for a, b in zip(web, other, strict=True))
    assert same_caption < N // 10
    assert same_label < N * 0.8


def test_exactly_n_rows_and_valid_fields(web: SyntheticWeb) -> None:
    entries = list(web)
    assert len(web) == len(entries) == N
    assert [e.index for e in entries] == list(range(N))
    for entry in entries:
        assert entry.label in LABELS
        assert entry.language in ("en", "de", "fr", "es", "")
        assert entry.path.startswith("/img/")
        has_image = entry.label not in NO_IMAGE_LABELS
        assert (entry.width > 0 and entry.height > 0) == has_image
        assert (entry.image_format != "") == has_image
    with pytest.raises(IndexError):
        web.entry(N)


@pytest.mark.parametrize("n", [0, 1, 5, 17, 20, 99, 1000, 12345])
def test_label_counts_sum_to_n(n: int) -> None:
    counts = label_counts(n, WebMix())
    assert sum(counts.values()) == n
    assert len(SyntheticWeb(n, seed=1)) == n


def test_counts_follow_the_mix() -> None:
    mix = WebMix()
    counts = Counter(e.label for e in SyntheticWeb(2000, seed=3, mix=mix))
    for label, fraction in mix.fractions().items():
        assert counts[label] == round(fraction * 2000)
    assert counts["clean"] == 2000 - sum(round(f * 2000) for f in mix.fractions().values())


def test_every_label_appears_for_small_n() -> None:
    counts = Counter(e.label for e in SyntheticWeb(20, seed=5))
    assert set(counts) == set(LABELS) - {"reframed"}  # off in the default mix
    mix = WebMix(reframed=0.05)
    assert set(Counter(e.label for e in SyntheticWeb(22, seed=5, mix=mix))) == set(LABELS)


def test_clean_only_and_validation() -> None:
    assert {e.label for e in SyntheticWeb(50, mix=WebMix.clean_only())} == {"clean"}
    with pytest.raises(ValueError, match="between 0 and 1"):
        WebMix(mismatched=1.5)
    with pytest.raises(ValueError, match="sum"):
        WebMix(mismatched=0.6, non_english=0.6)


def test_duplicates_point_to_lower_clean_originals(web: SyntheticWeb) -> None:
    seen = Counter()
    for entry in web:
        if entry.label not in DUPLICATE_LABELS:
            assert entry.duplicate_of == -1
            assert entry.scene == entry.index
            continue
        seen[entry.label] += 1
        original = web.entry(entry.duplicate_of)
        assert original.index < entry.index
        assert original.label == "clean"
        assert entry.scene == original.scene
    assert set(seen) == DUPLICATE_LABELS - {"reframed"}  # off in the default mix


def test_duplicate_kinds(web: SyntheticWeb) -> None:
    for entry in web:
        original = web.entry(entry.duplicate_of) if entry.duplicate_of >= 0 else None
        if entry.label == "duplicate_url":
            assert (entry.path, entry.caption) == (original.path, original.caption)
        elif entry.label == "duplicate_bytes":
            assert entry.path != original.path
            assert entry.caption == original.caption
            assert web.image_bytes(entry.index) == web.image_bytes(original.index)
        elif entry.label == "near_duplicate":
            assert entry.path != original.path
            assert entry.caption != original.caption
            body = web.image_bytes(entry.index)
            assert body != web.image_bytes(original.index)
            assert _decode(body).size == (entry.width, entry.height)
            assert 0.75 <= entry.width / original.width <= 1.0


def test_paths_unique_except_duplicate_url(web: SyntheticWeb) -> None:
    paths = Counter(e.path for e in web if e.label != "duplicate_url")
    assert max(paths.values()) == 1


def test_images_decode_at_their_displayed_size(web: SyntheticWeb) -> None:
    formats = Counter()
    for entry in web:
        if entry.label in NO_IMAGE_LABELS or entry.label == "truncated":
            continue
        image = _decode(web.image_bytes(entry.index))
        assert image.size == (entry.width, entry.height)
        assert image.format or entry.image_format  # decoded
        formats[entry.image_format] += 1
    assert set(formats) == {"jpeg", "png", "webp"}


def test_exif_rotated_jpegs_display_upright() -> None:
    web = SyntheticWeb(400, seed=11, mix=WebMix.clean_only())
    rotated = 0
    for entry in web:
        if entry.image_format != "jpeg":
            continue
        raw = Image.open(io.BytesIO(web.image_bytes(entry.index)))
        orientation = raw.getexif().get(0x0112, 1)
        if orientation in (6, 8):
            rotated += 1
            assert raw.size == (entry.height, entry.width)
            assert ImageOps.exif_transpose(raw).size == (entry.width, entry.height)
    assert rotated >= 5


def test_tiny_and_extreme_aspect_sizes(web: SyntheticWeb) -> None:
    for entry in web:
        if entry.label == "tiny_image":
            assert 8 <= entry.width <= 40 and 8 <= entry.height <= 40
        if entry.label == "extreme_aspect":
            ratio = max(entry.width, entry.height) / min(entry.width, entry.height)
            assert ratio >= 10


def test_caption_languages(web: SyntheticWeb) -> None:
    languages = Counter(e.language for e in web if e.label == "non_english")
    assert set(languages) <= {"de", "fr", "es"} and len(languages) >= 2
    assert all(e.language == "en" for e in web if e.label == "clean")
    assert all(e.language == "" for e in web if e.label == "junk_caption")


def test_non_english_captions_are_recognised() -> None:
    langdetect = pytest.importorskip("langdetect")
    langdetect.DetectorFactory.seed = 0
    web = SyntheticWeb(1500, seed=2)
    rows = [e for e in web if e.label == "non_english"]
    hits = sum(langdetect.detect(e.caption) == e.language for e in rows)
    assert hits >= 0.9 * len(rows)


def test_response_for_each_label(web: SyntheticWeb) -> None:
    by_label = {e.label: e for e in reversed(list(web))}
    assert web.response(by_label["http_404"].path).status == 404
    assert web.response(by_label["http_500"].path).status == 500
    assert web.response("/img/999999.jpg").status == 404
    assert web.response("/elsewhere").status == 404
    html = web.response(by_label["html"].path)
    assert html.status == 200 and html.body.startswith(b"<!DOCTYPE html>")
    assert dict(html.headers)["Content-Type"] == "image/jpeg"
    slow = web.response(by_label["slow"].path)
    assert slow.stall and slow.status == 200
    clean = by_label["clean"]
    assert web.response(clean.path).body == web.image_bytes(clean.index)
    with pytest.raises(ValueError, match="serves no image"):
        web.image_bytes(by_label["http_404"].index)


def test_captions_describe_the_scene_unless_mismatched(web: SyntheticWeb) -> None:
    for entry in web:
        scene = web.scene(entry.scene)
        caption = entry.caption.lower()
        if entry.label == "clean":
            assert scene.shape in caption and scene.colour in caption
        elif entry.label == "mismatched":
            assert scene.shape not in caption


def test_pickles_as_its_arguments(web: SyntheticWeb) -> None:
    copy = pickle.loads(pickle.dumps(web))
    assert copy.entry(5) == web.entry(5) and len(copy) == len(web)


def test_reframed_copies_crop_five_to_ten_percent() -> None:
    web = SyntheticWeb(300, seed=3, mix=WebMix(reframed=0.05))
    reframed = [e for e in web if e.label == "reframed"]
    assert len(reframed) == 15
    for entry in reframed:
        original = web.entry(entry.duplicate_of)
        assert original.label == "clean" and entry.scene == original.scene
        assert web.edit_kind(entry.index) == "reframe"
        for kept, full in ((entry.width, original.width), (entry.height, original.height)):
            assert 0.90 * full - 2 <= kept <= 0.95 * full + 1
        image = Image.open(io.BytesIO(web.image_bytes(entry.index)))
        assert image.size == (entry.width, entry.height)


@pytest.mark.parametrize("processes", [1, 2])
def test_mirror_serves_the_same_responses_from_memory(processes: int) -> None:
    mirrored = SyntheticWeb(120, seed=3, cache_size=4)
    fresh = SyntheticWeb(120, seed=3)
    served = mirrored.mirror(processes=processes)
    bodies = [
        len(fresh.image_bytes(i)) for i in range(120) if fresh.label(i) not in NO_IMAGE_LABELS
    ]
    assert served == sum(bodies) > 0
    for entry in fresh:
        assert mirrored.response(entry.path) == fresh.response(entry.path), entry.label
    assert mirrored._rendered.cache_info().misses == 0  # every body came from the mirror
