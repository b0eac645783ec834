"""Which entries of the list a caption mentions: whole-word substring matching, as MetaCLIP.

MetaCLIP looks for every entry in every caption, one substring test per
entry; here one Aho-Corasick automaton (``pyahocorasick``) over all entries
finds them in one pass over the caption, whatever the number of entries.

What matches:

- Both sides are case-folded (``str.casefold``): "Dog", "DOG" and "dog" are
  one entry, and "STRASSE" matches "Straße". The caption is the normalised one
  the caption rules saw (``records.working_caption``); entries are normalised
  the same way (``entries.normalize_entry``).
- An entry matches where it stands as whole words: "cat" is in "a cat.",
  "cat's toy" and "black-cat", not in "catalog" or "bobcat". A word character
  is a letter, digit, combining mark or "_"; a match needs a non-word
  character (or the caption's start or end) on each side, except where the
  entry's own first or last character is not a word character itself ("c++").
- Scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar; the
  same set the caption rules count words in) have no word boundaries to
  find: next to or at the edge of such a character any boundary counts, so
  "猫" matches in "一只猫在睡觉". Without a word segmenter an entry can match
  inside a longer word there ("大学" in "大学生"), as it does in MetaCLIP.
- An entry that occurs several times in a caption is one match; entries may
  overlap ("hot dog" and "dog" both match "a hot dog").
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

import ahocorasick

from paircurate.transforms.ingest.caption_rules import UNSPACED_SCRIPTS

_UNSPACED = re.compile(UNSPACED_SCRIPTS)
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def is_word_char(char: str) -> bool:
    """A letter, digit, combining mark or "_": what a word boundary may not split."""
    if char.isascii():
        return char in _ASCII_WORD
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _needs_boundary(inside: str, outside: str) -> bool:
    """Whether the caption character ``outside`` next to the entry's ``inside`` blocks a match."""
    if not is_word_char(outside) or not is_word_char(inside):
        return False
    if inside.isascii() and outside.isascii():
        return True
    return _UNSPACED.match(inside) is None and _UNSPACED.match(outside) is None


class EntryMatcher:
    """Finds the entries of a list in captions; built once per worker, then reused.

    ``entries`` should be normalised as captions are (``entries.normalize_entry``,
    as ``load_entries`` returns them); they are case-folded here in any case.
    """

    def __init__(self, entries: Iterable[str]):
        automaton = ahocorasick.Automaton()
        for entry in entries:
            entry = entry.casefold()
            if entry and entry not in automaton:
                automaton.add_word(entry, (entry, len(entry)))
        if len(automaton) == 0:
            raise ValueError("an entry list needs at least one entry")
        automaton.make_automaton()
        self._automaton = automaton

    def __len__(self) -> int:
        return len(self._automaton)

    def matches(self, caption: str) -> list[str]:
        """The entries found in ``caption`` as whole words, sorted, each once."""
        text = caption.casefold()
        if not text:
            return []
        last = len(text) - 1
        found: set[str] = set()
        for end, (entry, length) in self._automaton.iter(text):
            if entry in found:
                continue
            start = end - length + 1
            if start > 0 and _needs_boundary(text[start], text[start - 1]):
                continue
            if end < last and _needs_boundary(text[end], text[end + 1]):
                continue
            found.add(entry)
        return sorted(found)


def sample_key(uid: str, entry: str) -> int:
    """A pair's place in an entry's random order: 64 bits of a hash of (entry, uid).

    An entry over its cap keeps the pairs with the smallest keys, a uniform
    random sample that every run and every worker draws the same; a pair
    matching several entries is drawn independently for each, as MetaCLIP does.
    """
    digest = hashlib.blake2b(f"{entry}\0{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
