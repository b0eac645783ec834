"""Pages of the synthetic web as a crawler fetches them: real-looking HTML with known images.

Each page shows some of the web's pairs (the caption as ``alt``) in the
ways pages do (relative links, ``<base>``, ``srcset`` with ``sizes``,
``<picture>``, lazy-loading attributes with placeholders, ``<noscript>``
fallbacks, upper-case unquoted markup) among noise (icons, spacers,
tracking pixels, data: URIs, javascript: links, images without alt, and
``<img>`` markup inside scripts and comments that is no image). Every
``<img>`` carries its ground truth twice: what a reader of the HTML (a WARC
file) should find, and what a reader of Common Crawl's WAT metadata, which
records only ``src``, ``alt`` and ``title``, should find.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field

from .web import SyntheticWeb

PLACEHOLDER_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
ENTRY_KINDS = (
    ("plain", 34), ("relative", 8), ("scheme_relative", 4), ("lazy", 10),
    ("lazy_placeholder", 5), ("srcset_w", 10), ("srcset_x", 5), ("picture", 8),
    ("noscript", 6), ("upper", 5), ("spaced_alt", 3), ("repeat", 2),
)  # fmt: skip
NOISE_KINDS = (
    "no_alt", "empty_alt", "data_uri", "javascript", "other_scheme", "spacer_size",
    "tracker", "spacer_name", "icon", "no_src", "invalid_url",
)  # fmt: skip
SITE_LANGUAGES = ("en", "de", "fr", "es")
_FILLER = {
    "en": "Shapes and colours, drawn simply, for everyone who likes a clean picture.",
    "de": "Formen und Farben, schlicht gezeichnet, für alle, die klare Bilder mögen.",
    "fr": "Des formes et des couleurs, dessinées simplement, pour qui aime les images nettes.",
    "es": "Formas y colores, dibujados con sencillez, para quien aprecia una imagen clara.",
}


@dataclass(frozen=True)
class Expected:
    """What a reader should find for one ``<img>`` in one view: the pair, or the reason."""

    index: int
    url: str | None
    caption: str | None
    reason: str | None


@dataclass(frozen=True)
class ImageTruth:
    """One ``<img>`` of a page: the web pair it shows (-1: noise) and both views' expectations.

    ``wat`` is None where the tag has no ``src`` attribute, which WAT files do not list.
    """

    kind: str
    entry: int
    warc: Expected
    wat: Expected | None


@dataclass
class PageDraft:
    """A page under construction: its markup, its WAT metadata and the truth of its images."""

    url: str
    language: str | None
    base_href: str | None = None
    parts: list[str] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)
    images: list[ImageTruth] = field(default_factory=list)
    seen_warc: dict[tuple[str, str], int] = field(default_factory=dict)
    seen_wat: dict[tuple[str, str], int] = field(default_factory=dict)


def _attr(name: str, value: str) -> str:
    return f'{name}="{html.escape(value, quote=True)}"'


def _tag(attributes: list[tuple[str, str]], upper: bool = False) -> str:
    if upper:
        return "<IMG " + " ".join(f"{name.upper()}={value}" for name, value in attributes) + ">"
    return "<img " + " ".join(_attr(name, value) for name, value in attributes) + ">"


def _expect(
    page: PageDraft,
    seen: dict,
    index: int,
    url: str | None,
    caption: str | None,
    reason: str | None,
) -> Expected:
    """The expectation, with the page-repeat rule applied to a usable pair."""
    if reason is None and url is not None and caption:
        first = seen.setdefault((url, caption), index)
        if first != index:
            reason = "extract_page_repeat"
    return Expected(index, url, caption, reason)


def add_image(
    page: PageDraft,
    kind: str,
    entry: int,
    attributes: list[tuple[str, str]],
    warc: tuple[str | None, str | None, str | None],
    wat: tuple[str | None, str | None, str | None],
    markup: str | None = None,
    upper: bool = False,
) -> None:
    """Add one ``<img>`` (``markup`` where it is wrapped, else the tag of ``attributes``)."""
    warc_index = len(page.images)
    expected_warc = _expect(page, page.seen_warc, warc_index, *warc)
    expected_wat = None
    values = dict(attributes)
    if "src" in values:
        wat_index = len(page.links)
        link = {"path": "IMG@/src", "url": _raw(values["src"], upper)}
        for name in ("alt", "title"):
            if name in values:
                link[name] = _raw(values[name], upper)
        page.links.append(link)
        expected_wat = _expect(page, page.seen_wat, wat_index, *wat)
    page.images.append(ImageTruth(kind, entry, expected_warc, expected_wat))
    page.parts.append(markup if markup is not None else _tag(attributes, upper))


def _raw(value: str, upper: bool) -> str:
    """An attribute value as it stands in the markup (what WAT records)."""
    return value if upper else html.escape(value, quote=True)


def collapse(text: str) -> str:
    return " ".join(text.split())


def add_entry(page: PageDraft, web: SyntheticWeb, index: int, base_url: str, kind: str) -> None:
    """One pair of the web shown as ``kind`` (see ENTRY_KINDS)."""
    entry = web.entry(index)
    url = base_url + entry.path
    caption = collapse(entry.caption)
    usable = (url, caption, None)
    alt = ("alt", entry.caption)
    if kind == "plain":
        add_image(page, kind, index, [("src", url), alt], usable, usable)
    elif kind == "relative":
        name = entry.path.rsplit("/", 1)[-1]
        source = name if page.base_href else "../img/" + name  # pages live in /pages/
        add_image(page, kind, index, [("src", source), alt], usable, usable)
    elif kind == "scheme_relative":
        source = "//" + base_url.split("://", 1)[1] + entry.path
        add_image(page, kind, index, [("src", source), alt], usable, usable)
    elif kind == "lazy":
        attributes = [("src", PLACEHOLDER_GIF), ("data-src", url), alt, ("loading", "lazy")]
        add_image(page, kind, index, attributes, usable, (None, caption, "extract_data_uri"))
    elif kind == "lazy_placeholder":
        holder = base_url + "/static/lazy-placeholder.gif"
        attributes = [("src", holder), ("data-srcset", f"{url} 1x, {url}?dpr=2 2x"), alt]
        add_image(page, kind, index, attributes, usable, (holder, caption, "extract_spacer_name"))
    elif kind == "srcset_w":
        small = f"{url}?w=320"
        srcset = f"{small} 320w, {url} 1024w, {url}?w=2048 2048w"
        sizes = "(max-width: 600px) 100vw, 800px"
        attributes = [("src", small), ("srcset", srcset), ("sizes", sizes), alt]
        add_image(page, kind, index, attributes, usable, (small, caption, None))
    elif kind == "srcset_x":
        attributes = [("src", url), ("srcset", f"{url}?dpr=2 2x, {url}?dpr=3 3x"), alt]
        add_image(page, kind, index, attributes, usable, usable)
    elif kind == "picture":
        fallback = f"{url}?fallback=1"
        markup = (
            "<picture>"
            f'<source type="image/jxl" srcset="{url}?f=jxl">'
            f'<source media="(max-width: 600px)" srcset="{url}?w=480">'
            f'<source type="image/jpeg" srcset="{url}">'
            + _tag([("src", fallback), alt])
            + "</picture>"
        )
        attributes = [("src", fallback), alt]
        add_image(page, kind, index, attributes, usable, (fallback, caption, None), markup)
    elif kind == "noscript":
        lazy = [("src", PLACEHOLDER_GIF), ("data-src", url), alt]
        add_image(page, "lazy", index, lazy, usable, (None, caption, "extract_data_uri"))
        page.parts.append("<noscript>")
        add_image(page, kind, index, [("src", url), alt], usable, usable)
        page.parts.append("</noscript>")
    elif kind == "upper":
        words = caption.replace(" ", "&#32;")
        markup = f'<IMG SRC={url} ALT="{words}" BORDER=0>'
        add_image(page, kind, index, [("src", url), ("alt", words)], usable, usable, markup, True)
    elif kind == "spaced_alt":
        spaced = "\n  " + "   ".join(entry.caption.split(" ")) + "\t"
        add_image(page, kind, index, [("src", url), ("alt", spaced)], usable, usable)
    elif kind == "repeat":
        add_image(page, "plain", index, [("src", url), alt], usable, usable)
        page.parts.append("<p>Same picture again:</p>")
        add_image(page, kind, index, [("src", url), alt], usable, usable)
    else:
        raise ValueError(f"unknown entry kind {kind!r}")


def add_noise(page: PageDraft, kind: str, base_url: str, rng: random.Random) -> None:
    """One ``<img>`` that is no usable pair, or is one only by the WAT view (see NOISE_KINDS)."""
    n = rng.randrange(1000)
    if kind == "no_alt":
        url = f"{base_url}/static/logo-{n}.png"
        expected = (url, None, "extract_no_alt")
        add_image(
            page, kind, -1, [("src", url), ("width", "120"), ("height", "40")], expected, expected
        )
    elif kind == "empty_alt":
        url = f"{base_url}/static/divider-{n}.png"
        expected = (url, None, "extract_no_alt")
        add_image(page, kind, -1, [("src", url), ("alt", "  ")], expected, expected)
    elif kind == "data_uri":
        expected = (None, "inline chart", "extract_data_uri")
        source = (
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        )
        add_image(page, kind, -1, [("src", source), ("alt", "inline chart")], expected, expected)
    elif kind == "javascript":
        expected = (None, "open gallery", "extract_unsupported_scheme")
        attributes = [("src", "javascript:void(0)"), ("alt", "open gallery")]
        add_image(page, kind, -1, attributes, expected, expected)
    elif kind == "other_scheme":
        expected = (None, "archive scan", "extract_unsupported_scheme")
        attributes = [("src", f"ftp://files.example.org/scan-{n}.tif"), ("alt", "archive scan")]
        add_image(page, kind, -1, attributes, expected, expected)
    elif kind == "spacer_size":
        url = f"{base_url}/static/s/a{n}.gif"
        attributes = [("src", url), ("width", "1"), ("height", "1"), ("alt", "divider line")]
        warc = (url, "divider line", "extract_spacer")
        add_image(page, kind, -1, attributes, warc, (url, "divider line", None))
    elif kind == "tracker":
        url = f"https://www.facebook.com/tr?id={n}&ev=PageView&noscript=1"
        attributes = [("height", "1"), ("width", "1"), ("style", "display:none"), ("src", url)]
        attributes.append(("alt", "fb"))
        page.parts.append("<noscript>")
        add_image(
            page,
            kind,
            -1,
            attributes,
            (url, "fb", "extract_spacer"),
            (url, "fb", "extract_spacer_name"),
        )
        page.parts.append("</noscript>")
    elif kind == "spacer_name":
        url = f"{base_url}/images/spacer_{n}.gif"
        expected = (url, "spacer", "extract_spacer_name")
        add_image(page, kind, -1, [("src", url), ("alt", "spacer")], expected, expected)
    elif kind == "icon":
        url = f"{base_url}/static/icons/share-{n}-{len(page.images)}.png"
        expected = (url, "Share on social media", None)
        attributes = [
            ("src", url),
            ("width", "24"),
            ("height", "24"),
            ("alt", "Share on social media"),
        ]
        add_image(page, kind, -1, attributes, expected, expected)
    elif kind == "no_src":
        expected = (None, "missing picture", "extract_no_src")
        add_image(
            page, kind, -1, [("alt", "missing picture"), ("data-id", str(n))], expected, expected
        )
    elif kind == "invalid_url":
        expected = (None, "broken link", "extract_invalid_url")
        add_image(
            page, kind, -1, [("src", "http://[::1"), ("alt", "broken link")], expected, expected
        )
    else:
        raise ValueError(f"unknown noise kind {kind!r}")


def no_images(page: PageDraft) -> None:
    """Markup that holds ``<img>`` text but no image: a script string and a comment."""
    page.parts.append('<script>var tpl = \'<img src="/x.jpg" alt="not an image">\';</script>')
    page.parts.append('<!-- <img src="/old.jpg" alt="commented out"> -->')


def filler(language: str | None, words: int = 1) -> str:
    return "<p>" + " ".join([_FILLER[language or "en"]] * words) + "</p>"


def render(page: PageDraft, title: str, charset: str) -> str:
    """The whole document's text (its bytes are the caller's: ``charset`` is what it declares)."""
    lang = f' lang="{page.language}"' if page.language else ""
    base = f"<base href={html.escape(page.base_href, quote=True)!r}>" if page.base_href else ""
    head = (
        f'<!DOCTYPE html>\n<html{lang}><head><meta charset="{charset}">'
        f"<title>{html.escape(title)}</title>{base}"
        '<link rel="stylesheet" href="/s.css"></head>\n<body><div class="nav"><a href="/">Home</a>'
    )
    # An unclosed <div> and a stray </span>: the parser repairs both, as browsers do.
    return head + "<div class=content>\n" + "\n".join(page.parts) + "\n</span></body></html>"
