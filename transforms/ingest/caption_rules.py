"""Caption normalisation and the caption rules, applied before anything is downloaded.

This stage sees every input row (billions of them), so it is written to be cheap:
plain-ASCII captions skip ftfy, regexes are compiled once, and the per-config
setup (junk set, thresholds) lives in a `CaptionRules` object built once per worker.

Rule decisions worth knowing:

- Characters are Unicode code points of the normalised caption.
- Words are space-separated tokens, except that a run of characters from a script
  written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) counts as one word
  per two characters, rounded up: "东京塔的夜景很美" is 4 words, not 1. DataComp
  counts spaces only, which would drop every Chinese or Japanese caption.
- A file name is a caption that ends in an image extension right after a non-space
  character ("IMG_1234.jpg", "Screenshot 2023-01-01 at 10.22.33.png", "my dog.jpg"),
  or that is, as a whole, a camera or app name without extension ("DSC_2481",
  "P1010234", "20190315_123456", "photo-2021-03-05", "untitled-1") or a long hex
  name or UUID.
- A bare URL (the whole caption, no spaces) is reported as `caption_url`, checked
  before file names, so "https://x.com/a.jpg" is a URL rather than a file name.
- Letters are Unicode categories L* and M* (marks, so Devanagari and Thai vowel signs
  count as letters); everything else but spaces, digits and emoji included, is a
  non-letter.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

import ftfy

from paircurate.schemas.config import CaptionConfig
from paircurate.schemas.records import valid_text

# ftfy does everything below except the line-break and control-character work,
# which `normalize_caption` does itself in one pass over all scripts.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    fix_line_breaks=False,
    remove_control_chars=False,
    explain=False,
)

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls except the whitespace ones (\t \n \v \f \r), which become spaces,
# and the format characters ftfy would strip: BOM and deprecated/annotation controls.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u206a-\u206f\ufeff\ufff9-\ufffb]")


def normalize_caption(text: object) -> str:
    """The caption that rules, language id and dedup see; the original stays in the outputs.

    None and NaN become ""; bytes are decoded as UTF-8 with replacement; other
    values go through `str`. Then: surrogate pairs are joined and lone surrogates
    replaced with U+FFFD (``schemas.records.valid_text``), ftfy fixes mojibake and
    HTML entities (only when the text is not plain ASCII or has an "&" or escape
    sequence: otherwise there is nothing to fix),
    control characters are removed, and every run of Unicode whitespace becomes
    one space, trimmed at both ends. Never raises.
    """
    text = _as_str(text)
    if not text:
        return ""
    if _SURROGATE.search(text):
        # As the read step does: joins valid surrogate pairs (from JSON "\ud83d\ude00")
        # and replaces lone ones with U+FFFD.
        text = valid_text(text)
    if not text.isascii() or "&" in text or "\x1b" in text:
        try:
            text = ftfy.fix_text(text, _FTFY_CONFIG)
        except Exception:  # ftfy is best effort; the caption is still usable
            pass
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


def _as_str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float) and math.isnan(value):
        return ""
    try:
        return str(value)
    except Exception:  # a broken __str__ is a missing caption, not a crash
        return ""


# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana,
# Han (BMP, compatibility and supplementary planes) and halfwidth katakana.
UNSPACED_SCRIPTS = (
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
"""A regex character class of those scripts; concept matching uses it for word boundaries."""
_UNSPACED_RUN = re.compile(UNSPACED_SCRIPTS + "+")


def count_words(normalized: str) -> int:
    """Space-separated tokens; a run of unspaced-script characters counts ceil(len / 2)."""
    if not normalized:
        return 0
    if normalized.isascii():
        return normalized.count(" ") + 1
    runs = _UNSPACED_RUN.findall(normalized)
    if not runs:
        return normalized.count(" ") + 1
    rest = _UNSPACED_RUN.sub(" ", normalized).split()
    return len(rest) + sum((len(run) + 1) // 2 for run in runs)


_ASCII_LETTERS_AND_SPACE = (string.ascii_letters + " ").encode("ascii")


def nonletter_share(normalized: str) -> float:
    """Share of the non-space characters that are not letters (L*) or marks (M*)."""
    if normalized.isascii():
        nonletters = len(normalized.encode("ascii").translate(None, _ASCII_LETTERS_AND_SPACE))
        total = len(normalized) - normalized.count(" ")
    else:
        nonletters = 0
        total = 0
        for char in normalized:
            if char == " ":
                continue
            total += 1
            if not char.isalpha() and unicodedata.category(char)[0] != "M":
                nonletters += 1
    return nonletters / total if total else 0.0


_IMAGE_EXTENSIONS = frozenset(
    "jpg jpeg jpe jfif png gif webp bmp tif tiff heic heif avif svg ico psd "
    "raw cr2 nef arw dng".split()
)
_DATE = r"\d{4}[-_.]?\d{2}[-_.]?\d{2}"
_TIME = r"\d{1,2}[-_.:]\d{2}[-_.:]\d{2}(?:[ _]?[ap]\.?m\.?)?"
# Trailing counters and edit marks: "_001", "~2", " (1)", "-edited". Digits need a
# separator, so the pattern cannot backtrack exponentially over a run of digits.
_TAIL = r"(?:[ _.~-]+\d+|[ _.~-]*(?:\(\d+\)|copy|edit(?:ed)?|hdr|pano|bw|large|small|orig))*"
# A whole caption that is a file name without extension (an extension is allowed too).
_FILENAME = re.compile(
    r"(?:"
    # camera and app counters: IMG_1234, DSC_2481, DSCN0042, P1010234, image001, PXL_...
    r"(?:img|image|imag|dsc[nfi]?|dcim|pict?|picture|photo|p|pxl|mvimg|vid|gopr|dji|cimg"
    r"|sam|wp|pano|hpim|sdc|scan|screenshot|snapshot)[ _-]?\d{3,}"
    r"|untitled[ _-]?\d+"
    # date and time stamps: 20190315_123456, IMG_20190315_123456, Screenshot_20230101-102233
    r"|(?:[a-z]{1,10}[ _-]?)?\d{8}[ _-]?\d{6}"
    # a prefix then a date: photo-2021-03-05, WhatsApp Image 2021-03-05 at 10.22.33
    r"|(?:photo|image|img|pic|picture|screenshot|screen shot|snapshot|scan|whatsapp image)"
    rf"[ _-]+{_DATE}(?:(?:[ _-]+|[ _]at[ _]){_TIME})?"
    # hex names (both digits and letters, 12 or more) and UUIDs
    r"|(?=[0-9a-f]*[a-f])(?=[a-f]*\d)[0-9a-f]{12,}"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rf"){_TAIL}(?:\.(?:{'|'.join(sorted(_IMAGE_EXTENSIONS))}))?",
    re.IGNORECASE,
)
_URL = re.compile(
    r"(?:(?:https?|ftp)://|www\.)\S+"  # http://..., https://..., www.example.com/...
    r"|(?:[a-z0-9-]+\.)+[a-z]{2,}/\S*",  # example.com/x.jpg
    re.IGNORECASE,
)
_FILENAME_MAX_CHARS = 100  # longer captions are not names from cameras or apps

# Trimmed from both ends before the junk comparison: ASCII punctuation, spaces, and
# inverted marks, guillemets, curly quotes, ellipsis, dashes and bullets.
_TRIM = (
    string.punctuation
    + " \u00a1\u00bf\u00ab\u00bb\u2018\u2019\u201c\u201d"
    + "\u2026\u2013\u2014\u00b7\u2022"
)


def _junk_key(text: str) -> str:
    return text.lower().strip(_TRIM)


def is_filename(normalized: str) -> bool:
    """Whether the caption is a file name (see the module docstring for what counts)."""
    head, dot, extension = normalized.rpartition(".")
    if dot and head and not head[-1].isspace() and extension.lower() in _IMAGE_EXTENSIONS:
        return True
    return len(normalized) <= _FILENAME_MAX_CHARS and _FILENAME.fullmatch(normalized) is not None


def is_bare_url(normalized: str) -> bool:
    """Whether the whole caption is one URL."""
    return " " not in normalized and _URL.fullmatch(normalized) is not None


class CaptionRules:
    """The caption rules of one `CaptionConfig`, set up once and applied to many captions."""

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config
        self._junk = frozenset(_junk_key(" ".join(item.split())) for item in config.junk_captions)

    def problem(self, normalized: str) -> tuple[str, str] | None:
        """(reason code, detail) of the first rule the normalised caption breaks, or None.

        Order: missing, URL / file name, junk, too short, too long, too few words,
        too many words, non-letter share.
        """
        config = self.config
        if not normalized:
            return "caption_missing", "the caption is empty"
        if config.drop_filename_captions:
            if is_bare_url(normalized):
                return "caption_url", "the caption is a bare URL"
            if is_filename(normalized):
                return "caption_filename", "the caption is a file name"
        if self._junk and _junk_key(normalized) in self._junk:
            return "caption_junk", f"{_junk_key(normalized)!r} is in --junk-captions"
        chars = len(normalized)
        if chars < config.min_caption_chars:
            return "caption_too_short", (
                f"{chars} characters, fewer than --min-caption-chars {config.min_caption_chars}"
            )
        if config.max_caption_chars and chars > config.max_caption_chars:
            return "caption_too_long", (
                f"{chars} characters, more than --max-caption-chars {config.max_caption_chars}"
            )
        if config.min_caption_words or config.max_caption_words:
            words = count_words(normalized)
            if words < config.min_caption_words:
                return "caption_too_few_words", (
                    f"{_words(words)}, fewer than --min-caption-words {config.min_caption_words}"
                )
            if config.max_caption_words and words > config.max_caption_words:
                return "caption_too_many_words", (
                    f"{_words(words)}, more than --max-caption-words {config.max_caption_words}"
                )
        if config.max_nonletter_share < 1:
            share = nonletter_share(normalized)
            if share > config.max_nonletter_share:
                return "caption_nonletter", (
                    f"{share:.0%} non-letters, more than --max-nonletter-share "
                    f"{config.max_nonletter_share:g}"
                )
        return None


def _words(count: int) -> str:
    return "1 word" if count == 1 else f"{count} words"
