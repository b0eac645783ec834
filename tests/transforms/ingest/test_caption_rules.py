"""normalize_caption, CaptionRules and caption_problem."""

from __future__ import annotations

import time

import pytest

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import CaptionConfig
from paircurate.transforms.ingest.caption_rules import (
    CaptionRules,
    count_words,
    is_bare_url,
    is_filename,
    nonletter_share,
    normalize_caption,
)


def caption_problem(normalized: str, config: CaptionConfig) -> tuple[str, str] | None:
    """What the caption stage asks of each row: ``CaptionRules(config).problem``."""
    return CaptionRules(config).problem(normalized)


DEFAULTS = CaptionConfig()


def reason_of(caption: object, config: CaptionConfig = DEFAULTS) -> str | None:
    problem = caption_problem(normalize_caption(caption), config)
    return problem[0] if problem else None


# normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a red cat", "a red cat"),
        ("cafÃ© au lait", "café au lait"),
        ("salt &amp; pepper", "salt & pepper"),
        ("it&#39;s a dog", "it's a dog"),
        ("a\x00red\x00 cat", "ared cat"),
        ("a\x01b\x07c\x1bd\x7fe", "abcde"),
        ("a\tred\ncat\r\non a mat", "a red cat on a mat"),
        ("a\x0bred\x0ccat", "a red cat"),
        ("  a \u00a0 red\u3000\u2003cat  ", "a red cat"),
        ("a\ud800 red cat\udfff", "a\ufffd red cat\ufffd"),
        ("smile \ud83d\ude00 please", "smile \U0001f600 please"),
        ("\ufeffa red cat", "a red cat"),
        ("\x1b[31mred\x1b[0m cat", "red cat"),
        ("", ""),
        (" \t\n ", ""),
    ],
)
def test_normalize_caption(raw: str, expected: str) -> None:
    assert normalize_caption(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        (float("nan"), ""),
        (42, "42"),
        (3.5, "3.5"),
        (b"caf\xc3\xa9 au lait", "café au lait"),
        (b"bad \xff\xfe bytes", "bad \ufffd\ufffd bytes"),
        (bytearray(b"a red cat"), "a red cat"),
    ],
)
def test_normalize_non_strings(raw: object, expected: str) -> None:
    assert normalize_caption(raw) == expected


def test_normalize_never_raises_on_a_broken_str() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert normalize_caption(Broken()) == ""


def test_c1_controls_do_not_survive() -> None:
    # ftfy reads C1 characters as the Windows-1252 text they almost always are;
    # the ones with no Windows-1252 meaning are removed.
    assert normalize_caption("\x93quoted\x94 and \x81gone\x8d") == '"quoted" and gone'
    assert not any("\x80" <= ch <= "\x9f" for ch in normalize_caption("a\x85b \x9f c"))


@pytest.mark.parametrize(
    "raw",
    [
        "مرحبا بكم في موقعنا الجديد",  # Arabic
        "שלום עולם וכל הטוב",  # Hebrew
        "नमस्ते दुनिया यह एक बिल्ली है",  # Devanagari
        "🐱🐶 emoji 👍🏽 👨‍👩‍👧",
    ],
)
def test_other_scripts_are_kept_intact(raw: str) -> None:
    assert normalize_caption(raw) == raw


@pytest.mark.parametrize("char", ["a", "é", "東", "😀"])
def test_huge_caption_is_fast_and_too_long(char: str) -> None:
    start = time.perf_counter()
    assert reason_of(char * 100_000) == "caption_too_long"
    assert time.perf_counter() - start < 1.0


# rules: order and reason codes


def test_reason_codes_exist() -> None:
    captions = [None, "IMG_1234.jpg", "https://x.com", "image", "abc", "😀 😀 😀"]
    for caption in captions:
        code = reason_of(caption)
        assert code in REASONS and REASONS[code].stage == "caption"


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", "\x00\x01"])
def test_missing(raw: object) -> None:
    assert caption_problem(normalize_caption(raw), DEFAULTS) == (
        "caption_missing",
        "the caption is empty",
    )


def test_datacomp_defaults() -> None:
    # DataComp keeps captions with more than 5 characters and more than 2 words.
    assert reason_of("a cat") == "caption_too_short"
    assert reason_of("a cat!") == "caption_too_few_words"
    assert reason_of("a red cat") is None


def test_chars_at_thresholds() -> None:
    config = CaptionConfig(min_caption_chars=6, max_caption_chars=10, min_caption_words=0)
    assert caption_problem("abcde", config) == (
        "caption_too_short",
        "5 characters, fewer than --min-caption-chars 6",
    )
    assert caption_problem("abcdef", config) is None
    assert caption_problem("abcdefghij", config) is None
    assert caption_problem("abcdefghijk", config) == (
        "caption_too_long",
        "11 characters, more than --max-caption-chars 10",
    )


def test_max_chars_zero_is_no_limit() -> None:
    config = CaptionConfig(max_caption_chars=0)
    assert caption_problem("a red cat " * 10_000, config) is None


def test_words_at_thresholds() -> None:
    config = CaptionConfig(min_caption_chars=0, min_caption_words=3, max_caption_words=5)
    assert caption_problem("a b", config) == (
        "caption_too_few_words",
        "2 words, fewer than --min-caption-words 3",
    )
    assert caption_problem("a b c", config) is None
    assert caption_problem("a b c d e", config) is None
    assert caption_problem("a b c d e f", config) == (
        "caption_too_many_words",
        "6 words, more than --max-caption-words 5",
    )
    assert caption_problem("abcdefg", config) == (
        "caption_too_few_words",
        "1 word, fewer than --min-caption-words 3",
    )


def test_max_words_zero_is_no_limit() -> None:
    assert reason_of("word " * 1000, CaptionConfig(max_caption_chars=0)) is None


def test_nonletter_share_at_threshold() -> None:
    config = CaptionConfig(min_caption_chars=0, min_caption_words=0, max_nonletter_share=0.5)
    assert caption_problem("ab 12", config) is None  # exactly 0.5
    assert caption_problem("ab 123", config) == (
        "caption_nonletter",
        "60% non-letters, more than --max-nonletter-share 0.5",
    )
    assert caption_problem("a red cat!!!", config) is None


def test_nonletter_share_one_turns_the_rule_off() -> None:
    config = CaptionConfig(max_nonletter_share=1.0)
    assert caption_problem("123 456 789", config) is None


@pytest.mark.parametrize(
    ("caption", "share"),
    [
        ("abc", 0.0),
        ("a b 1 2", 0.5),
        ("नमस्ते दुनिया", 0.0),  # vowel signs and virama are marks, so letters
        ("สวัสดีครับ", 0.0),  # Thai
        ("😀😀", 1.0),
        ("", 0.0),
    ],
)
def test_nonletter_share(caption: str, share: float) -> None:
    assert nonletter_share(caption) == share


@pytest.mark.parametrize(
    "raw",
    ["😀 😀 😀 🎉 🎉 🎉", "12345 67890 11111", "$$$ ??? !!! ###", "2019 - 2020 - 2021"],
)
def test_nonletter_captions(raw: str) -> None:
    assert reason_of(raw) == "caption_nonletter"


def test_emoji_only_without_spaces_fails_on_words_first() -> None:
    assert reason_of("😀😀😀😀😀😀") == "caption_too_few_words"
    no_words = CaptionConfig(min_caption_words=0)
    assert reason_of("😀😀😀😀😀😀", no_words) == "caption_nonletter"


def test_int_caption_goes_through_the_rules() -> None:
    assert reason_of(42) == "caption_too_short"
    assert reason_of(42, CaptionConfig(min_caption_chars=0)) == "caption_too_few_words"
    no_words = CaptionConfig(min_caption_chars=0, min_caption_words=0)
    assert reason_of(42, no_words) == "caption_nonletter"


@pytest.mark.parametrize(
    "raw",
    [
        "مرحبا بكم في موقعنا الجديد",
        "שלום עולם וכל הטוב",
        "नमस्ते दुनिया यह एक बिल्ली है",
        "une tasse de café",
    ],
)
def test_right_to_left_and_other_scripts_pass(raw: str) -> None:
    assert reason_of(raw) is None


def test_right_to_left_with_too_few_words() -> None:
    assert reason_of("مرحبا بكم") == "caption_too_few_words"


# words in scripts without spaces


@pytest.mark.parametrize(
    ("caption", "words"),
    [
        ("", 0),
        ("a red cat", 3),
        ("東京タワーの夜景", 4),  # 8 characters: one word per two
        ("东京塔的夜景很美丽", 5),  # 9 characters: rounded up
        ("猫", 1),
        ("iPhone 12 の写真", 4),  # iPhone, 12, and 3 kana/kanji -> 2
        ("แมวสีแดงบนเสื่อ", 8),  # Thai, 15 characters
        ("빨간 고양이 사진", 3),  # Korean uses spaces
    ],
)
def test_count_words(caption: str, words: int) -> None:
    assert count_words(caption) == words


def test_chinese_caption_passes_defaults() -> None:
    assert reason_of("一只红色的猫坐在垫子上") is None
    assert reason_of("红猫") == "caption_too_short"


# file names and URLs


FILENAMES = [
    "IMG_1234.jpg",
    "DSC_2481",
    "DSCN0042.JPG",
    "image001.png",
    "photo-2021-03-05.jpeg",
    "photo-2021-03-05",
    "Screenshot 2023-01-01 at 10.22.33.png",
    "Screenshot 2023-01-01 at 10.22.33",
    "Screenshot_20230101-102233",
    "WhatsApp Image 2021-03-05 at 10.22.33 PM",
    "P1010234",
    "20190315_123456.jpg",
    "20190315_123456",
    "IMG_20190315_123456_001",
    "PXL_20230101_101010123",
    "untitled-1.gif",
    "untitled-1",
    "0a1b2c3d4e5f.webp",
    "0a1b2c3d4e5f6a7b8c9d",
    "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "IMG_1234 (1)",
    "DSC_2481-edited",
    "my holiday photo.jpg",
]


@pytest.mark.parametrize("caption", FILENAMES)
def test_filenames(caption: str) -> None:
    assert is_filename(caption)
    assert caption_problem(normalize_caption(caption), DEFAULTS) == (
        "caption_filename",
        "the caption is a file name",
    )


NOT_FILENAMES = [
    "a photo of 3 dogs",
    "iPhone 12 review",
    "Model T-1000",
    "the 2021 photo contest",
    "photo of the day",
    "deadbeefcafe",
    "download the logo in .png",
    "a red cat",
    "P1 racing car",
]


@pytest.mark.parametrize("caption", NOT_FILENAMES)
def test_not_filenames(caption: str) -> None:
    assert not is_filename(caption)
    assert not is_bare_url(caption)


@pytest.mark.parametrize(
    "caption",
    [
        "http://example.com/a.jpg",
        "https://example.com/path?x=1",
        "HTTPS://EXAMPLE.COM",
        "www.example.com/x.jpg",
        "example.com/x.jpg",
    ],
)
def test_bare_urls(caption: str) -> None:
    assert caption_problem(caption, DEFAULTS) == ("caption_url", "the caption is a bare URL")


@pytest.mark.parametrize(
    "caption",
    ["a photo from https://example.com/a.jpg", "visit www.example.com for more", "example.com"],
)
def test_not_bare_urls(caption: str) -> None:
    assert not is_bare_url(caption)


def test_filename_rule_can_be_turned_off() -> None:
    config = CaptionConfig(drop_filename_captions=False, min_caption_words=0)
    assert caption_problem("IMG_1234.jpg", config) is None
    assert caption_problem("https://example.com/a.jpg", config) is None


def test_filename_is_found_before_length_and_words() -> None:
    assert reason_of("P1") == "caption_too_short"
    assert reason_of("DSC_2481") == "caption_filename"


def test_filename_regex_does_not_backtrack() -> None:
    start = time.perf_counter()
    assert not is_filename("IMG_" + "1" * 90 + "x")
    assert not is_filename("0a" * 45 + "-" + "1" * 9 + "z")
    assert time.perf_counter() - start < 0.1


# junk


@pytest.mark.parametrize("raw", ["image", "Image", "IMAGE:", "  photo. ", "Click here!", "“logo”"])
def test_default_junk(raw: str) -> None:
    junk = "caption_junk"
    problem = caption_problem(normalize_caption(raw), DEFAULTS)
    assert problem is not None and problem[0] == junk


def test_junk_detail() -> None:
    assert caption_problem("Click Here!", DEFAULTS) == (
        "caption_junk",
        "'click here' is in --junk-captions",
    )


def test_junk_matches_whole_captions_only() -> None:
    assert reason_of("an image of a red cat") is None


def test_custom_junk_list() -> None:
    config = CaptionConfig(junk_captions=("Stock Photo", "  SEE  MORE "), min_caption_words=0)
    assert caption_problem("stock photo", config) == (
        "caption_junk",
        "'stock photo' is in --junk-captions",
    )
    assert caption_problem("See more...", config) == (
        "caption_junk",
        "'see more' is in --junk-captions",
    )
    assert caption_problem("thumbnail", config) is None  # the default list no longer applies


def test_empty_junk_list() -> None:
    config = CaptionConfig(junk_captions=(), min_caption_words=0)
    assert caption_problem("images", config) is None


# the class and the convenience agree


def test_rules_object_matches_caption_problem() -> None:
    rules = CaptionRules(DEFAULTS)
    for caption in ["a red cat", "a cat", "", "IMG_1234.jpg", "image", "1 2 3 4 5 6"]:
        assert rules.problem(caption) == caption_problem(caption, DEFAULTS)
