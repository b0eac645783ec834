"""URL checks and normalisation, before anything is downloaded."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# \s on str patterns is str.isspace(); one scan in C instead of a Python loop per character.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


def url_problem(url: str | None) -> tuple[str, str] | None:
    """Why a URL cannot be fetched, as (reason code, detail), or None when it can."""
    if url is None or not url.strip():
        return "missing_url", "the URL is empty"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return "invalid_url", f"cannot parse URL: {error}"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "unsupported_scheme", f"scheme {parts.scheme or '(none)'!r} is not http(s)"
    if not parts.hostname:
        return "invalid_url", "the URL has no host"
    if _SPACE_OR_CONTROL.search(url.strip()):
        return "invalid_url", "the URL contains whitespace or control characters"
    return None


def normalize_url(url: str) -> str:
    """The form two URLs share when they name the same resource.

    Lowercases scheme and host, drops a default port and the fragment; the path
    and query are kept as they are (they are case-sensitive on most servers).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username or parts.password:
        userinfo = parts.username or ""
        if parts.password:
            userinfo += f":{parts.password}"
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
