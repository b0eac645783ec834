"""Whole-word, case-insensitive entry matching, across scripts, at MetaCLIP's list size."""

from __future__ import annotations

import random
import string

import pytest

from paircurate.transforms.balance.matching import EntryMatcher, is_word_char, sample_key


@pytest.fixture(scope="module")
def matcher() -> EntryMatcher:
    return EntryMatcher(
        ["cat", "hot dog", "dog", "猫", "大学", "c++", "Straße", "नमस्ते", "new york", "แมว"]
    )


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("A cat.", ["cat"]),
        ("CAT", ["cat"]),
        ("catalog of a bobcat", []),
        ("cats", []),
        ("black-cat, cat's toy", ["cat"]),
        ("cat_2", []),
        ("a Hot Dog!", ["dog", "hot dog"]),
        ("hotdog", []),
        ("dog dog dog", ["dog"]),
        ("new  york", []),
        ("New York 2019", ["new york"]),
        ("I like C++x", ["c++"]),
        ("STRASSE", ["strasse"]),
        ("नमस्ते जी", ["नमस्ते"]),
        ("नमस्तेजी", []),
        ("一只猫在睡觉", ["猫"]),
        ("猫", ["猫"]),
        ("大学生", ["大学"]),
        ("แมวดำ", ["แมว"]),
        ("a猫b", ["猫"]),
        ("", []),
    ],
)
def test_matches_whole_words_only(matcher, caption, expected):
    assert matcher.matches(caption) == expected


def test_word_characters_include_marks_and_digits():
    assert is_word_char("a") and is_word_char("7") and is_word_char("_")
    assert is_word_char("\u094d")  # Devanagari virama, a combining mark
    assert not is_word_char("-") and not is_word_char(" ") and not is_word_char("'")


def test_entries_repeated_or_empty_count_once():
    assert len(EntryMatcher(["Dog", "dog", "", "cat"])) == 2
    with pytest.raises(ValueError, match="at least one entry"):
        EntryMatcher(["", ""])


def test_sample_keys_are_stable_and_differ_per_entry():
    assert sample_key("u1", "cat") == sample_key("u1", "cat")
    assert sample_key("u1", "cat") != sample_key("u1", "dog")
    assert 0 <= sample_key("u2", "cat") < 2**64


def test_half_a_million_entries_build_and_match():
    rng = random.Random(5)
    words = {
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(520_000)
    }
    entries = sorted(words)[:500_000]
    matcher = EntryMatcher(entries)
    assert len(matcher) == 500_000
    picked = [entries[0], entries[250_000], entries[-1]]
    caption = f"{picked[0]} and a {picked[1]}, then {picked[2]}!"
    assert matcher.matches(caption) == sorted(picked)
    assert matcher.matches(f"x{picked[1]}x") == []
