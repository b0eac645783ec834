"""Each ``<img>`` of a page judged: its source as a browser picks it, and usable or why not.

The rules follow what LAION (WAT ``IMG@/src`` links with non-empty ``alt``),
DataComp and cc2dataset (absolute http(s) URLs only, ``<base href>``
honoured) did, plus what they left to later stages or did not catch:
lazy-loading attributes and ``srcset`` resolved the way a browser loads
them, 1x1 spacers and tracking pixels by declared size and by file name,
and repeats of a (url, alt) within one page. The first rule a candidate
fails gives its reason, in this order: no source, a data: URI, another
scheme, an unusable URL, no alt, a spacer by size, by name, a repeat.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from ada_url import join_url

from paircurate.schemas.config import ExtractConfig
from paircurate.transforms.extract.html import ImageTag, PageFacts, collapse
from paircurate.transforms.extract.srcset import media_matches, parse_srcset, pick

HTTP_SCHEMES = ("http", "https")
INT32_MAX = 2**31 - 1
# <source type> values every current browser decodes.
SUPPORTED_TYPES = frozenset({
    "image/jpeg", "image/jpg", "image/png", "image/gif", "image/webp", "image/avif",
    "image/svg+xml", "image/bmp", "image/x-icon", "image/vnd.microsoft.icon", "image/apng",
})  # fmt: skip
_DIMENSION = re.compile(r"^\s*(\d{1,10})(?:\.\d*)?\s*(%?)")
_NAME_SPLIT = re.compile(r"[-_.\s]+")


@dataclass(frozen=True)
class Judged:
    """One candidate ``<img>``: what it names, and its reason where it is not usable."""

    index: int
    url: str | None
    caption: str | None
    source_attribute: str | None
    width: int | None
    height: int | None
    img_title: str | None
    reason: str | None = None
    detail: str | None = None


def declared_size(value: str | None) -> int | None:
    """A width or height attribute as pixels ("300", "300px"); None for "100%" or garbage."""
    match = _DIMENSION.match(value or "")
    if match is None or match.group(2):
        return None
    return min(int(match.group(1)), INT32_MAX)


def _effective(
    attributes: dict[str, str | None], lazy: tuple[str, ...], name: str
) -> tuple[str | None, str | None]:
    """(value, attribute) of the first non-empty lazy attribute, else of ``name``."""
    for attribute in (*lazy, name):
        value = attributes.get(attribute)
        if value and value.strip():
            return value, attribute
    return None, None


def _supported(mime: str | None) -> bool:
    return not mime or mime.split(";")[0].strip().lower() in SUPPORTED_TYPES


def choose_source(image: ImageTag, config: ExtractConfig) -> tuple[str | None, str | None]:
    """(the source a browser loads for ``image``, the attribute it came from), or (None, None).

    Lazy-loading attributes stand in for ``src`` and ``srcset`` as the script
    that reads them would set them; a ``<picture>``'s first ``<source>`` whose
    media matches and whose type the browser decodes wins over the ``<img>``.
    """
    viewport, ratio = config.viewport_width, config.pixel_ratio
    width = declared_size(image.attributes.get("width"))
    for source in image.sources:
        if not (media_matches(source.get("media"), viewport) and _supported(source.get("type"))):
            continue
        srcset, attribute = _effective(source, config.lazy_srcset_attributes, "srcset")
        candidates = parse_srcset(srcset) if srcset else []
        if candidates:
            sizes = source.get("data-sizes") or source.get("sizes")
            picked = pick(candidates, None, sizes, viewport, ratio, width)
            if picked is not None:
                return picked[0], f"source {attribute}"
    attributes = image.attributes
    srcset, srcset_attribute = _effective(attributes, config.lazy_srcset_attributes, "srcset")
    src, src_attribute = _effective(attributes, config.lazy_src_attributes, "src")
    sizes = attributes.get("data-sizes") or attributes.get("sizes")
    candidates = parse_srcset(srcset) if srcset else []
    picked = pick(candidates, src.strip() if src else None, sizes, viewport, ratio, width)
    if picked is None:
        return None, None
    url, from_srcset = picked
    return url, srcset_attribute if from_srcset else src_attribute


def page_base(page_url: str, base_href: str | None) -> str:
    """The URL relative sources resolve against: the first ``<base href>``, itself resolved."""
    if base_href and base_href.strip():
        try:
            return join_url(page_url, base_href)
        except ValueError:
            return page_url
    return page_url


def resolve(raw: str, base: str) -> tuple[str | None, tuple[str, str] | None]:
    """(absolute http(s) URL without fragment, None) or (None, (reason, detail)).

    Resolution is the WHATWG URL standard's, as browsers do it (Ada): tabs
    and newlines dropped, spaces percent-encoded, ``http:///x`` read as host x.
    """
    cleaned = raw.strip()
    if cleaned[:5].lower() == "data:":
        return None, ("extract_data_uri", cleaned[:60])
    try:
        href = join_url(base, cleaned)
    except ValueError:
        return None, ("extract_invalid_url", f"{cleaned[:200]!r} is not a URL here")
    scheme = href.split(":", 1)[0]
    if scheme not in HTTP_SCHEMES:
        if scheme == "data":
            return None, ("extract_data_uri", cleaned[:60])
        return None, ("extract_unsupported_scheme", f"scheme {scheme!r}")
    return href.split("#", 1)[0], None


def is_spacer_name(url: str, words: frozenset[str]) -> bool:
    """Whether the URL's file name, extension aside, is made only of ``words`` and numbers."""
    if not words:
        return False
    name = url.split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1].lower()
    if "%" in name:
        name = unquote(name)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if not stem:
        return False
    if stem in words:
        return True
    tokens = [token for token in _NAME_SPLIT.split(stem) if token]
    return (
        bool(tokens)
        and all(t in words or t.isdigit() for t in tokens)
        and not all(t.isdigit() for t in tokens)
    )


def _source_problem(
    image: ImageTag, base: str, config: ExtractConfig
) -> tuple[str | None, str | None, tuple[str, str] | None]:
    raw, attribute = choose_source(image, config)
    if raw is None:
        return None, None, ("extract_no_src", "no src, srcset or lazy-loading attribute")
    url, problem = resolve(raw, base)
    return url, attribute, problem


def _size_problem(width: int | None, height: int | None, limit: int) -> tuple[str, str] | None:
    small = [size for size in (width, height) if size is not None and size <= limit]
    if limit and small:
        return "extract_spacer", f"declared {width}x{height}"
    return None


def judge_page(facts: PageFacts, page_url: str, config: ExtractConfig) -> Iterator[Judged]:
    """Every ``<img>`` of the page in order, judged by the rules of the module."""
    base = page_base(page_url, facts.base_href)
    words = config.spacer_words
    seen: dict[tuple[str, str], int] = {}
    for image in facts.images:
        attributes = image.attributes
        width = declared_size(attributes.get("width"))
        height = declared_size(attributes.get("height"))
        caption = collapse(attributes.get("alt"))
        url, attribute, problem = _source_problem(image, base, config)
        if problem is None and not caption:
            detail = "no alt attribute" if caption is None else "the alt text is empty"
            problem = ("extract_no_alt", detail)
        if problem is None:
            problem = _size_problem(width, height, config.spacer_max_size)
        if problem is None and is_spacer_name(url, words):
            problem = ("extract_spacer_name", url.rsplit("/", 1)[-1][:100])
        if problem is None and config.drop_page_repeats:
            first = seen.setdefault((url, caption), image.index)
            if first != image.index:
                problem = ("extract_page_repeat", f"same url and alt as image {first}")
        reason, detail = problem if problem else (None, None)
        title = collapse(attributes.get("title")) or None
        yield Judged(
            image.index, url, caption or None, attribute, width, height, title, reason, detail
        )
