from __future__ import annotations

import pytest

from paircurate.transforms.ingest.language_rules import (
    FOLDED_CODES,
    SCRIPT_LANGUAGES,
    decide,
    fold_code,
    fold_ranking,
    script_counts,
    script_of,
)


@pytest.mark.parametrize(
    ("char", "script"),
    [
        ("a", "latin"),
        ("Ａ", "latin"),  # fullwidth
        ("钓", "han"),
        ("々", "han"),
        ("の", "kana"),
        ("カ", "kana"),
        ("ｶ", "kana"),  # halfwidth
        ("ー", "kana"),
        ("한", "hangul"),
        ("ก", "thai"),
        ("λ", "greek"),
        ("ש", "hebrew"),
        ("ა", "georgian"),
        ("Ա", "armenian"),
        ("ж", "cyrillic"),
        ("ع", "arabic"),
        ("ह", "devanagari"),
    ],
)
def test_script_of_a_letter(char: str, script: str) -> None:
    assert script_of(char) == script


def test_script_counts_count_letters_only() -> None:
    assert script_counts("两名男子在冰面上钓鱼。") == {"han": 10}
    assert script_counts("A dog, 3 cats!") == {"latin": 8}
    assert script_counts("iPhone手机壳") == {"latin": 6, "han": 3}


def test_han_counts_as_kana_in_text_with_kana() -> None:
    assert script_counts("東京の駅") == {"kana": 4}


@pytest.mark.parametrize(
    ("code", "folded"),
    [("wuu", "zh"), ("yue", "zh"), ("cmn", "zh"), ("gan", "zh"), ("hak", "zh"), ("nan", "zh")]
    + [("arz", "ar"), ("pes", "fa"), ("azb", "az"), ("ckb", "ku"), ("zh", "zh"), ("en", "en")],
)
def test_macrolanguage_members_fold_to_iso_639_1(code: str, folded: str) -> None:
    assert fold_code(code) == folded


def test_folded_codes_are_three_letters_and_targets_two() -> None:
    assert all(len(member) == 3 and len(target) == 2 for member, target in FOLDED_CODES.items())


def test_folding_adds_up_probabilities_of_one_macrolanguage() -> None:
    ranking = [("ja", 0.45), ("zh", 0.3), ("wuu", 0.15), ("yue", 0.1)]
    folded = fold_ranking(ranking)
    assert [code for code, _ in folded] == ["zh", "ja"]
    assert folded[0][1] == pytest.approx(0.55)


def test_han_without_kana_is_chinese_not_japanese() -> None:
    # lid.176's own answer for this caption: ja 0.636.
    assert decide("两名男子在冰面上钓鱼。", [("ja", 0.636), ("zh", 0.3)]) == ("zh", 1.0)
    assert decide("两名男子在冰面上钓鱼。", [("ja", 0.9)]) == ("zh", 1.0)
    assert decide("小女孩在公园里荡秋千", [("wuu", 0.7), ("ja", 0.2)]) == ("zh", 1.0)


def test_kana_is_japanese_and_hangul_korean() -> None:
    assert decide("公園のベンチに座っている老人", [("zh", 0.8)]) == ("ja", 1.0)
    assert decide("공원 벤치에 앉아 있는 노인", [("ja", 0.6)]) == ("ko", 1.0)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ชายชรานั่งอยู่บนม้านั่ง", "th"),
        ("Ένας σκύλος τρέχει", "el"),
        ("כלב רץ על הדשא", "he"),
        ("ძაღლი მირბის", "ka"),
        ("Շունը վազում է", "hy"),
    ],
)
def test_scripts_one_language_owns_decide_it(text: str, language: str) -> None:
    assert decide(text, [("en", 0.9)]) == (language, 1.0)


def test_the_identifier_chooses_among_the_languages_of_a_shared_owner_script() -> None:
    assert SCRIPT_LANGUAGES["hebrew"] == ("he", "yi")
    assert decide("אַ הונט לויפֿט", [("yi", 0.7), ("he", 0.3)]) == ("yi", 1.0)


def test_score_is_the_share_of_letters_in_the_deciding_script() -> None:
    language, score = decide("两名男子钓鱼 fish", [("ja", 0.6)])
    assert language == "zh"
    assert score == pytest.approx(6 / 10)


def test_latin_text_keeps_the_identifiers_answer_but_not_an_owner_of_another_script() -> None:
    assert decide("A man rides a bike", [("en", 0.7)]) == ("en", 0.7)
    assert decide("Tokyo at night", [("ja", 0.6), ("en", 0.3)]) == ("en", 0.3)
    assert decide("Tokyo", [("ja", 0.6)]) is None


def test_shared_scripts_leave_the_choice_to_the_identifier() -> None:
    assert decide("Бабушка вяжет", [("bg", 0.8), ("ru", 0.1)]) == ("bg", 0.8)
    assert decide("مصر جميلة", [("arz", 0.6), ("ar", 0.3)]) == ("ar", pytest.approx(0.9))
