"""Each <img> judged: the source a browser loads, and the first rule it fails."""

from __future__ import annotations

import pytest

from paircurate.schemas.config import ExtractConfig
from paircurate.transforms.extract.html import ImageTag, read_page
from paircurate.transforms.extract.rules import (
    choose_source,
    declared_size,
    is_spacer_name,
    judge_page,
    page_base,
    resolve,
)

CONFIG = ExtractConfig()
PAGE = "http://site.test/news/story.html"


def image(attributes: dict, sources=()) -> ImageTag:
    return ImageTag(0, attributes, tuple(sources))


def test_lazy_attributes_stand_in_for_src_and_srcset():
    lazy = {"src": "data:image/gif;base64,R0lG", "data-src": "real.jpg", "alt": "x"}
    assert choose_source(image(lazy), CONFIG) == ("real.jpg", "data-src")
    srcset = {"src": "blank.gif", "data-srcset": "a.jpg 1x, b.jpg 2x"}
    assert choose_source(image(srcset), CONFIG) == ("a.jpg", "data-srcset")
    assert choose_source(image({"data-src": "  "}), CONFIG) == (None, None)


def test_picture_takes_the_first_source_that_matches_and_decodes():
    sources = [
        {"type": "image/jxl", "srcset": "a.jxl"},
        {"media": "(max-width: 600px)", "srcset": "small.jpg"},
        {"type": "image/webp", "srcset": "wide.webp"},
    ]
    assert choose_source(image({"src": "fallback.jpg"}, sources), CONFIG) == (
        "wide.webp",
        "source srcset",
    )
    narrow = ExtractConfig(viewport_width=500)
    assert choose_source(image({"src": "fallback.jpg"}, sources), narrow) == (
        "small.jpg",
        "source srcset",
    )


def test_resolve_against_the_base_and_refuse_what_is_no_http_image():
    base = page_base(PAGE, "/static/")
    assert base == "http://site.test/static/"
    assert resolve(" a b.jpg#frag", base) == ("http://site.test/static/a%20b.jpg", None)
    assert resolve("//cdn.test/x.png", base) == ("http://cdn.test/x.png", None)
    assert resolve("data:image/png;base64,AAAA", base)[1][0] == "extract_data_uri"
    assert resolve("javascript:void(0)", base)[1][0] == "extract_unsupported_scheme"
    assert resolve("ftp://files.test/a.tif", base)[1][0] == "extract_unsupported_scheme"
    assert resolve("http://[::1", base)[1][0] == "extract_invalid_url"
    assert resolve("https://:443/a.jpg", base)[1][0] == "extract_invalid_url"


@pytest.mark.parametrize(
    ("url", "spacer"),
    [
        ("http://a.test/spacer.gif", True),
        ("http://a.test/img/1x1_blank.png", True),
        ("http://a.test/static/lazy-placeholder.gif", True),
        ("https://www.facebook.com/tr?id=1&ev=PageView", True),
        ("http://a.test/pixel-art-landscape.jpg", False),
        ("http://a.test/clear-sky.jpg", False),
        ("http://a.test/2048.jpg", False),
        ("http://a.test/", False),
    ],
)
def test_spacer_names(url, spacer):
    assert is_spacer_name(url, CONFIG.spacer_words) is spacer


def test_declared_sizes():
    assert [declared_size(v) for v in ("300", " 1px", "100%", "abc", None, "2.5")] == [
        300,
        1,
        None,
        None,
        None,
        2,
    ]


def judged(html: str, config: ExtractConfig = CONFIG) -> list[tuple]:
    facts = read_page(html)
    return [(j.url, j.caption, j.reason) for j in judge_page(facts, PAGE, config)]


def test_rules_in_order_and_repeats_within_the_page():
    html = """<html><body>
      <img src="a.jpg" alt="  A   cat ">
      <img src="b.jpg">
      <img src="data:image/gif;base64,R0lG" alt="x">
      <img src="c.gif" width="1" height="1" alt="pixel">
      <img src="spacer.gif" alt="spacer">
      <img src="a.jpg" alt="A cat">
      <img src="a.jpg" alt="Another caption">
    </body></html>"""
    assert judged(html) == [
        ("http://site.test/news/a.jpg", "A cat", None),
        ("http://site.test/news/b.jpg", None, "extract_no_alt"),
        (None, "x", "extract_data_uri"),
        ("http://site.test/news/c.gif", "pixel", "extract_spacer"),
        ("http://site.test/news/spacer.gif", "spacer", "extract_spacer_name"),
        ("http://site.test/news/a.jpg", "A cat", "extract_page_repeat"),
        ("http://site.test/news/a.jpg", "Another caption", None),
    ]


def test_rules_follow_their_options():
    html = (
        '<img src="a.jpg" alt="A"><img src="a.jpg" alt="A"><img src="spacer.gif" width=1 alt="s">'
    )
    loose = ExtractConfig(spacer_max_size=0, spacer_names=("none",), drop_page_repeats=False)
    assert [reason for *_, reason in judged(html, loose)] == [None, None, None]


def test_a_page_with_thousands_of_images():
    html = "<html><body>" + "".join(f'<img src="/i/{n}.png" alt="icon {n}">' for n in range(5000))
    found = judged(html)
    assert len(found) == 5000
    assert found[4999] == ("http://site.test/i/4999.png", "icon 4999", None)


def test_first_base_counts_and_page_facts():
    facts = read_page(
        '<html lang="de-AT"><head><title> Ein  Titel </title><base href="/one/"><base href="/two/">'
        "</head><body><script>var s = '<img src=x.jpg alt=no>';</script>"
        "<!-- <img src=c.jpg alt=no> -->"
        '<noscript><img src="n.jpg" alt="Tom &amp; Jerry"></noscript></body></html>'
    )
    assert (facts.base_href, facts.language, facts.title) == ("/one/", "de", "Ein Titel")
    assert [image.attributes["alt"] for image in facts.images] == ["Tom & Jerry"]
