"""A page's bytes as text, the way a browser settles its encoding.

The declared charset wins (a byte order mark, then the HTTP header, then a
``<meta charset>`` in the first 1024 bytes), with labels mapped as the
WHATWG Encoding standard maps them (``iso-8859-1`` is windows-1252).
Pages lie: where the declared encoding cannot decode the bytes, or none is
declared and the bytes are not UTF-8, uchardet (through Resiliparse)
guesses, and undecodable bytes become U+FFFD. What happened is returned,
so that the extract step can count it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5

_META_CHARSET = re.compile(rb"""(?i)<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-z0-9_.:-]{1,40})""")
# Encodings other than the one-byte ones (windows-125x, iso-8859-x, koi8, ...).
_MULTI_BYTE = frozenset({
    "utf-8", "utf-16-le", "utf-16-be", "shift_jis", "euc_jp", "iso2022_jp", "gbk", "gb18030",
    "big5", "euc_kr",
})  # fmt: skip
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Decoded:
    """The page as text and how its encoding was settled.

    ``how`` is "declared" (the declared or default encoding decoded it),
    "mismatch" (the declared one could not, or the bytes are UTF-8 under a
    one-byte label: another was used) or
    "undeclared" (nothing declared, not UTF-8: detected).
    """

    text: str
    encoding: str
    how: str


def declared_encoding(body: bytes, http_charset: str | None) -> str | None:
    """The encoding a page declares (BOM, HTTP charset, ``<meta>``), as a Python codec name."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    for label in (http_charset, _meta_charset(body)):
        if label:
            name = map_encoding_to_html5(label.strip().lower(), False)
            if name:
                return name
    return None


def _meta_charset(body: bytes) -> str | None:
    """The charset a ``<meta>`` in the first 1024 bytes names (HTML's prescan, in short)."""
    match = _META_CHARSET.search(body, 0, 1024)
    return match.group(1).decode("ascii") if match else None


def decode_page(body: bytes, http_charset: str | None) -> Decoded:
    """``body`` as text; see the module for the order of the rules."""
    declared = declared_encoding(body, http_charset)
    if declared is not None and declared not in _MULTI_BYTE and not body.isascii():
        # UTF-8 labelled as a one-byte charset: valid UTF-8 of non-ASCII text by chance is rare.
        try:
            return Decoded(body.decode("utf-8"), "utf-8", "mismatch")
        except UnicodeDecodeError:
            pass
    if declared is not None:
        try:
            return Decoded(body.decode(declared).lstrip("\ufeff"), declared, "declared")
        except (UnicodeDecodeError, LookupError):
            return _guessed(body, "mismatch")
    try:
        return Decoded(body.decode("utf-8"), "utf-8", "declared")
    except UnicodeDecodeError:
        return _guessed(body, "undeclared")


def _guessed(body: bytes, how: str) -> Decoded:
    encoding = detect_encoding(body)
    text = bytes_to_str(body, encoding, errors="replace", fallback_encodings=("utf-8", "cp1252"))
    return Decoded(text, encoding, how)
