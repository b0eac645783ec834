"""robots.txt-style path patterns, shared by robots.txt, tdmrep.json and AI-preference rules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def url_path(url: str) -> str:
    """The part of a URL that path patterns are matched against: path and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def path_pattern(pattern: str) -> re.Pattern[str]:
    """A path pattern as RFC 9309 writes them ('*': any characters; a final '$': the end).

    It matches from the start of the path: "/images/" matches "/images/a.jpg".
    """
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    text = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(text + ("$" if anchored else ""))
