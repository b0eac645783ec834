"""What a page says about its images, read with lexbor's HTML5 parser (selectolax).

An HTML5 parser sees the page as a browser does: ``<img>`` inside scripts and
comments are text, unclosed and misnested tags are repaired, entities in
attributes are decoded, the first of two equal attributes counts. Content of
``<noscript>`` is parsed as markup, as a crawler without scripts sees it
(its images usually repeat a lazy-loaded one, and the repeat rule drops them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

MAX_TITLE_CHARS = 1000


@dataclass(frozen=True)
class ImageTag:
    """One ``<img>``: its attributes, and those of the ``<source>``s of its ``<picture>``."""

    index: int
    attributes: dict[str, str | None]
    sources: tuple[dict[str, str | None], ...] = ()


@dataclass(frozen=True)
class PageFacts:
    """What the page declares: its ``<base href>``, language and title."""

    base_href: str | None = None
    language: str | None = None
    title: str | None = None
    images: list[ImageTag] = field(default_factory=list)


def collapse(text: str | None) -> str | None:
    """Whitespace runs as single spaces, ends trimmed; None stays None."""
    return None if text is None else " ".join(text.split())


def primary_language(tag: str | None) -> str | None:
    """ "en-US" -> "en": the primary subtag of a language tag, lowercase; None if it is none."""
    if not tag:
        return None
    primary = tag.split(",")[0].strip().split("-")[0].split("_")[0].lower()
    return primary if 2 <= len(primary) <= 3 and primary.isalpha() and primary.isascii() else None


def _first_attribute(tree: LexborHTMLParser, selector: str, name: str) -> str | None:
    node = tree.css_first(selector)
    return None if node is None else node.attributes.get(name)


def _meta_language(tree: LexborHTMLParser) -> str | None:
    for node in tree.css("meta[http-equiv]"):
        if (node.attributes.get("http-equiv") or "").strip().lower() == "content-language":
            return node.attributes.get("content")
    return None


def _picture_sources(image: LexborNode) -> tuple[dict[str, str | None], ...]:
    """The ``<source>`` elements before ``image`` in its ``<picture>``, in order."""
    parent = image.parent
    if parent is None or parent.tag != "picture":
        return ()
    sources = []
    for child in parent.iter():
        if child.mem_id == image.mem_id:
            break
        if child.tag == "source":
            sources.append(child.attributes)
    return tuple(sources)


def _images(tree: LexborHTMLParser) -> Iterator[ImageTag]:
    for index, node in enumerate(tree.css("img")):
        yield ImageTag(index, node.attributes, _picture_sources(node))


def read_page(text: str, content_language: str | None = None) -> PageFacts:
    """Parse a page's text; the page's language falls back on the HTTP Content-Language."""
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    title = collapse(title_node.text()) if title_node is not None else None
    language = (
        primary_language(_first_attribute(tree, "html", "lang"))
        or primary_language(_meta_language(tree))
        or primary_language(content_language)
    )
    return PageFacts(
        base_href=_first_attribute(tree, "base[href]", "href"),
        language=language,
        title=title[:MAX_TITLE_CHARS] if title else None,
        images=list(_images(tree)),
    )
