"""A WAT record's JSON (Common Crawl's metadata of one WARC record) read as a page's images.

Common Crawl's WAT extractor lists each ``<img>`` that has a ``src``
attribute as a link with path ``IMG@/src``, its raw ``src`` value as
``url``, and its ``alt`` and ``title`` attributes as they stand in the HTML,
entities included (they are decoded here, as a browser shows them). It does
not record ``srcset``, lazy-loading attributes, ``width``, ``height`` or the
``lang`` attribute: a WAT page offers its ``src`` values and its ``<base>``,
title, ``<meta>`` tags and HTTP headers. JSON is parsed by orjson.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import orjson

from paircurate.transforms.extract.html import ImageTag, PageFacts, collapse, primary_language

IMAGE_PATH = "IMG@/src"


class WatJsonError(ValueError):
    """The record's JSON does not parse: becomes extract_wat_json."""


@dataclass(frozen=True)
class WatPage:
    """The page a WAT record describes, or ``outcome`` where it describes no HTML page."""

    page_url: str = ""
    record_id: str | None = None
    facts: PageFacts | None = None
    outcome: str = "page"


def _unescaped(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return html.unescape(value) if "&" in value else value


def _meta_language(head: dict[str, Any]) -> str | None:
    for meta in head.get("Metas") or ():
        if not isinstance(meta, dict):
            continue
        if (meta.get("http-equiv") or "").strip().lower() == "content-language":
            return meta.get("content")
    return None


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name and isinstance(value, str):
            return value
    return None


def _images(links: list[Any]) -> list[ImageTag]:
    images = []
    for link in links:
        if isinstance(link, dict) and link.get("path") == IMAGE_PATH:
            attributes = {
                "src": _unescaped(link.get("url")),
                "alt": _unescaped(link.get("alt")),
                "title": _unescaped(link.get("title")),
            }
            images.append(ImageTag(len(images), attributes))
    return images


def read_wat(data: bytes) -> WatPage:
    """The page of one WAT record's JSON; raises WatJsonError where the JSON does not parse."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise WatJsonError(f"the JSON does not parse: {error}") from None
    envelope = document.get("Envelope") if isinstance(document, dict) else None
    if not isinstance(envelope, dict):
        raise WatJsonError("the JSON has no Envelope")
    warc = envelope.get("WARC-Header-Metadata") or {}
    if warc.get("WARC-Type") != "response":
        return WatPage(outcome="other_record")
    response = (envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata") or {}
    metadata = response.get("HTML-Metadata")
    if not isinstance(metadata, dict):
        return WatPage(outcome="not_html")
    head = metadata.get("Head") or {}
    headers = response.get("Headers") or {}
    language = primary_language(_meta_language(head)) or primary_language(
        _header(headers, "content-language")
    )
    title = collapse(_unescaped(head.get("Title")))
    facts = PageFacts(
        base_href=_unescaped(head.get("Base")),
        language=language,
        title=title or None,
        images=_images(metadata.get("Links") or []),
    )
    return WatPage(warc.get("WARC-Target-URI") or "", warc.get("WARC-Record-ID"), facts)
