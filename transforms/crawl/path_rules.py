"""robots.txt-style path patterns, shared by robots.txt, tdmrep.json and AI-preference rules.

A pattern comes from the site, so it is matched in time linear in the path and
the pattern, never by backtracking: a regular expression made of ``.*`` pieces
(``/a*a*a*a*b``) takes exponential time on a long path that almost matches,
and one such rule could hold a download thread for ever.

The only operators are '*' (any characters) and a final '$' (the end of the
path), so the literal pieces between the stars can be placed greedily: each at
its leftmost occurrence after the one before. If any placement matches, this
one does, since an earlier end leaves the rest more room. Each piece is looked
for once, from where the one before ended (``str.find``, itself linear), so
no character of the path is scanned twice by the same piece and the pieces
scan the path left to right.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


def url_path(url: str) -> str:
    """The part of a URL that path patterns are matched against: path and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class PathPattern:
    """A path pattern as RFC 9309 writes them ('*': any characters; a final '$': the end).

    It matches from the start of the path: "/images/" matches "/images/a.jpg".
    """

    text: str
    pieces: tuple[str, ...]  # the literal parts between the stars
    anchored: bool

    def match(self, path: str) -> bool:
        pieces = self.pieces
        first = pieces[0]
        if len(pieces) == 1:
            return path == first if self.anchored else path.startswith(first)
        if not path.startswith(first):
            return False
        position = len(first)
        for piece in pieces[1:-1]:
            found = path.find(piece, position)
            if found < 0:
                return False
            position = found + len(piece)
        last = pieces[-1]
        if self.anchored:
            return len(path) - len(last) >= position and path.endswith(last)
        return path.find(last, position) >= 0


def path_pattern(pattern: str) -> PathPattern:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    pieces = tuple(body.split("*"))
    return PathPattern(pattern, _without_empty_middles(pieces), anchored)


def _without_empty_middles(pieces: tuple[str, ...]) -> tuple[str, ...]:
    """ "a**b" is "a*b": empty pieces between stars match anywhere and are dropped."""
    if len(pieces) <= 2:
        return pieces
    middles = tuple(piece for piece in pieces[1:-1] if piece)
    return (pieces[0], *middles, pieces[-1])
