"""Rules a language identifier's answer must obey: writing scripts and macrolanguages.

Statistical identifiers trained on long web text misread short captions in ways the text
itself rules out: lid.176 calls many short Chinese captions Japanese although they hold no
kana, and answers Wu (``wuu``) or Cantonese (``yue``) for others. Two rules fix that for
every backend:

- **Macrolanguage folding.** A code that names a member of an ISO 639-3 macrolanguage, where
  the macrolanguage has an ISO 639-1 code and the member has none, folds to that code:
  ``wuu``, ``yue``, ``cmn`` ... -> ``zh``; ``arz`` -> ``ar``; ``pes`` -> ``fa``
  (``FOLDED_CODES`` is the table). Probabilities of codes that fold together add up.
- **Scripts.** The letters of a text are counted per Unicode script. When one script holds at
  least half of them and only a few languages write it (``SCRIPT_LANGUAGES``: Han without
  kana is Chinese, kana is Japanese, Hangul is Korean, Thai, Greek, Hebrew, Georgian,
  Armenian ...), the answer is the identifier's best candidate among those languages, or the
  script's first language if it named none; its score is the share of letters in that script,
  because the script, not the model, is the evidence. Otherwise the identifier's best answer
  stands, except that a language which owns a script absent from the text (Japanese without
  kana, Korean without Hangul, Thai without Thai letters ...) is passed over.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

# ISO 639-3 macrolanguage members (and the codes identifiers use for them) -> ISO 639-1.
FOLDED_CODES: dict[str, str] = {
    # Chinese (zho): Mandarin, Wu, Cantonese, Gan, Hakka, Min Nan, Xiang, Jin, Min Dong,
    # Pu-Xian, Min Zhong, Min Bei, Literary Chinese.
    **dict.fromkeys(
        ("cmn", "wuu", "yue", "gan", "hak", "nan", "hsn", "cjy", "cdo", "cpx", "czo", "mnp", "lzh"),
        "zh",
    ),
    # Arabic (ara): Standard, Egyptian, Moroccan, Tunisian, Levantine, Gulf, Mesopotamian ...
    **dict.fromkeys(
        ("arb", "arz", "ary", "aeb", "apc", "ajp", "acm", "acq", "afb", "ars", "apd", "ayl", "ayp"),
        "ar",
    ),
    # Persian (fas): Iranian Persian, Dari.
    "pes": "fa",
    "prs": "fa",
    # Malay (msa): Standard Malay, Minangkabau.
    "zsm": "ms",
    "min": "ms",
    # Azerbaijani (aze): North, South.
    "azj": "az",
    "azb": "az",
    # Kurdish (kur): Northern, Central, Southern.
    "kmr": "ku",
    "ckb": "ku",
    "sdh": "ku",
    # Uzbek (uzb), Pashto (pus), Estonian (est), Latvian (lav), Swahili (swa), Mongolian (mon),
    # Yiddish (yid), Malagasy (mlg), Nepali (nep), Odia (ori), Albanian (sqi, Gheg),
    # Guarani (grn), Quechua (que).
    "uzn": "uz",
    "uzs": "uz",
    "pbu": "ps",
    "pst": "ps",
    "ekk": "et",
    "lvs": "lv",
    "swh": "sw",
    "khk": "mn",
    "ydd": "yi",
    "plt": "mg",
    "npi": "ne",
    "ory": "or",
    "aln": "sq",
    "gug": "gn",
    "quz": "qu",
    "quy": "qu",
}

# A script -> the languages (ISO 639-1) that write it, most common first. Scripts shared by
# many languages (Latin, Cyrillic, Arabic, Devanagari) are not listed: the identifier decides.
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "han": ("zh",),
    "kana": ("ja",),
    "hangul": ("ko",),
    "thai": ("th",),
    "greek": ("el",),
    "hebrew": ("he", "yi"),
    "georgian": ("ka",),
    "armenian": ("hy",),
    "lao": ("lo",),
    "khmer": ("km",),
    "myanmar": ("my",),
    "sinhala": ("si",),
    "tamil": ("ta",),
    "telugu": ("te",),
    "kannada": ("kn",),
    "malayalam": ("ml",),
    "gujarati": ("gu",),
    "gurmukhi": ("pa",),
    "oriya": ("or",),
    "bengali": ("bn", "as"),
    "tibetan": ("bo",),
    "thaana": ("dv",),
    "ethiopic": ("am", "ti"),
}

# Languages written (almost) only in one script: answered only when the text holds it.
_OWN_SCRIPT: dict[str, str] = {
    language: script
    for script, languages in SCRIPT_LANGUAGES.items()
    for language in languages
    if script != "han"  # Japanese and Korean text may hold Han; Chinese owns it below
}
_OWN_SCRIPT["zh"] = "han"

# First word(s) of a Unicode character name -> script, where the two differ.
_NAME_SCRIPTS = {
    "CJK": "han",
    "IDEOGRAPHIC": "han",
    "HIRAGANA": "kana",
    "KATAKANA": "kana",
    "KATAKANA-HIRAGANA": "kana",
    "MYANMAR": "myanmar",
}
_WIDTH_PREFIXES = ("HALFWIDTH", "FULLWIDTH")


@lru_cache(maxsize=8192)
def script_of(char: str) -> str:
    """The Unicode script of one letter, lower case ("latin", "han", "kana", "hangul" ...),
    read from its character name; "" for a character without a name."""
    words = unicodedata.name(char, "").split()
    if words and words[0] in _WIDTH_PREFIXES:
        words = words[1:]
    if not words:
        return ""
    return _NAME_SCRIPTS.get(words[0], words[0].lower())


def script_counts(text: str) -> Counter[str]:
    """Letters per script. Han and kana together count as kana when the text holds kana,
    since Japanese writes its words in both."""
    if text.isascii():
        return Counter(latin=sum(ch.isalpha() for ch in text))
    counts = Counter(script_of(ch) for ch in text if ch.isalpha())
    if counts["kana"]:
        counts["kana"] += counts.pop("han", 0)
    counts.pop("", None)
    return +counts


def fold_code(code: str) -> str:
    """The ISO 639-1 macrolanguage of a member code ("yue" -> "zh"); other codes unchanged."""
    return FOLDED_CODES.get(code, code)


def fold_ranking(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Fold codes and add up the probabilities of those that fold together, best first."""
    totals: dict[str, float] = {}
    for code, probability in ranking:
        folded = fold_code(code)
        totals[folded] = totals.get(folded, 0.0) + probability
    return sorted(totals.items(), key=lambda item: -item[1])


def decide(text: str, ranking: list[tuple[str, float]]) -> tuple[str, float] | None:
    """The language and score of ``text`` given an identifier's ``ranking`` (ISO 639-1 or
    639-3 codes with probabilities, best first; one entry is enough). None when no
    language fits the text's scripts."""
    ranking = fold_ranking(ranking)
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters:
        script, count = counts.most_common(1)[0]
        languages = SCRIPT_LANGUAGES.get(script)
        if languages and count * 2 >= letters:
            best = next((code for code, _ in ranking if code in languages), languages[0])
            return best, count / letters
    for code, probability in ranking:
        owned = _OWN_SCRIPT.get(code)
        if owned is None or counts[owned]:
            return code, probability
    return None
