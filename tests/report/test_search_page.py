"""The search results page and table: what they show, escaped, with nothing fetched."""

from __future__ import annotations

import io
import re

from PIL import Image

from paircurate.pipeline.search_command import table
from paircurate.report.search_page import render, thumbnail_uri
from paircurate.transforms.embeddings.search import Query, SearchHit


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def hit(rank: int, caption: str, thumbnail: str | None) -> SearchHit:
    return SearchHit(
        rank=rank, score=1 - rank / 10, shard="00002", row=rank, uid=f"{rank:032x}",
        caption=caption, key=f"{rank:032x}", image_format="jpg", clip_score=0.31,
        url="http://example.com/a.jpg", thumbnail=thumbnail,
    )  # fmt: skip


def test_the_page_shows_each_hit_escaped_and_requests_nothing():
    hostile = '<img src="http://evil.example/x.png"> red & "blue"'
    hits = [hit(1, hostile, thumbnail_uri(png())), hit(2, "two green circles", None)]
    page = render("RUN", Query(text="red <b>"), hits, {"vectors": 1234, "index": "IVF"}, None)
    figures = re.findall(r'data-uid="([0-9a-f]{32})"', page)
    assert figures == [hits[0].uid, hits[1].uid]
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;&gt; red &amp; &#34;blue&#34;" in page
    assert page.count('<img src="data:image/webp;base64,') == 1
    assert "no thumbnail" in page and "similarity 0.9000" in page and "1,234 indexed" in page
    assert "Text-to-image: red &lt;b&gt;" in page
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page, re.I)
    assert not re.search(r"<script|<link[^>]+stylesheet|@import|url\(\s*['\"]?https?:", page, re.I)


def test_an_image_query_shows_the_query_image():
    page = render("RUN", Query(image=png(), image_name="q.png"), [], {}, None)
    assert "Image-to-image: q.png" in page and 'alt="query image"' in page
    assert "The index returned no result." in page


def test_the_table_has_one_line_a_hit_with_rank_score_uid_place_and_caption():
    lines = table(
        [hit(1, "a  long\ncaption " + "x" * 80, None), hit(2, "short", None)]
    ).splitlines()
    assert lines[0].split() == ["rank", "score", "uid", "shard/row", "caption"]
    assert lines[1].split()[:4] == ["1", "0.9000", f"{1:032x}", "00002/1"]
    assert lines[1].endswith("…") and "a long caption x" in lines[1]
    assert lines[2].split() == ["2", "0.8000", f"{2:032x}", "00002/2", "short"]
